// Package notify wakes every waiter at once when something changed, for
// services whose streams follow a table (alias changes, job events).
package notify

import "sync"

// Broadcast is a reusable wake-up: Wait returns a channel that the next
// Notify closes. Take the channel before looking for changes, so that a
// change made in between still wakes the waiter.
type Broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// New returns a Broadcast with no pending notification.
func New() *Broadcast { return &Broadcast{ch: make(chan struct{})} }

// Wait returns the channel the next Notify closes.
func (b *Broadcast) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

// Notify wakes every current waiter.
func (b *Broadcast) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}
