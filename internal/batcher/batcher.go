// Package batcher groups concurrent requests into batches for a compute
// function that is cheaper per item on a batch: ONNX Runtime sessions in
// Inference. A batch goes out when it is full or when the oldest queued item
// has waited the maximum delay (a timer armed by that first item, never
// polling), and only when a worker is free to run it, so load beyond what
// the workers absorb turns into larger batches rather than a longer queue.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoalml/shoal/internal/panics"
)

// ErrFull means the queue holds its maximum number of items.
var ErrFull = errors.New("batcher: queue full")

// ErrClosed means the batcher no longer takes work: it was closed for
// draining or its Run has ended.
var ErrClosed = errors.New("batcher: closed")

// Config bounds batches and the queue.
type Config struct {
	// MaxBatch is the most items one batch holds.
	MaxBatch int
	// MaxDelay is the longest the first item of a batch waits for others
	// while a worker is free.
	MaxDelay time.Duration
	// QueueSize is the most items waiting; Do beyond it fails with ErrFull.
	QueueSize int
	// Workers is how many batches run at once (one per ONNX Runtime session).
	Workers int
	// Panics recovers a panic of the RunFunc: it fails that batch's items
	// only, and the worker goes on with the next batch.
	Panics *panics.Guard
}

func (c Config) validate() error {
	if c.MaxBatch < 1 || c.QueueSize < 1 || c.Workers < 1 || c.MaxDelay < 0 {
		return fmt.Errorf("batcher: invalid config %+v", c)
	}
	return nil
}

// RunFunc computes a batch on worker (0 <= worker < Workers; one batch at a
// time per worker) and returns one output per input, in order. ctx is the
// batcher's, not a caller's: one caller giving up does not cancel the
// others' work.
type RunFunc[In, Out any] func(ctx context.Context, worker int, in []In) ([]Out, error)

// Info describes how a Do call was served.
type Info struct {
	// Queue is the time from Do until its last item's batch started.
	Queue time.Duration
	// Compute is the run time of the batch (the longest, if the items were
	// split over several).
	Compute time.Duration
	// BatchSize is the size of the (largest) batch the items ran in.
	BatchSize int
}

// Batcher queues items and runs them in batches. Its Run must be going for
// Do to make progress.
type Batcher[In, Out any] struct {
	cfg Config
	run RunFunc[In, Out]

	mu     sync.Mutex
	queue  []unit[In, Out] // FIFO of single items
	closed bool
	wake   chan struct{} // capacity 1: something was queued or closed
	done   chan struct{} // closed when Run returns
}

// job is one Do call; its items may be spread over several batches.
type job[Out any] struct {
	ctx     context.Context
	out     []Out
	pending int // items not yet computed; guarded by Batcher.mu
	err     error
	info    Info
	start   time.Time
	result  chan struct{} // closed when pending reaches 0 or err is set
}

type unit[In, Out any] struct {
	job *job[Out]
	idx int
	in  In
}

// New returns a batcher that computes batches with run.
func New[In, Out any](cfg Config, run RunFunc[In, Out]) (*Batcher[In, Out], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Batcher[In, Out]{cfg: cfg, run: run, wake: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// Len is the number of items waiting.
func (b *Batcher[In, Out]) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Do queues items, all or none, and waits for their outputs, in order. It
// returns ErrFull when they do not fit in the queue, ErrClosed when the
// batcher is closed, ctx's error when ctx ends first (its items still
// queued are then dropped before compute), or the compute error.
func (b *Batcher[In, Out]) Do(ctx context.Context, items []In) ([]Out, Info, error) {
	if len(items) == 0 {
		return nil, Info{}, nil
	}
	j := &job[Out]{ctx: ctx, out: make([]Out, len(items)), pending: len(items), start: time.Now(), result: make(chan struct{})}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return nil, Info{}, ErrClosed
	case len(b.queue)+len(items) > b.cfg.QueueSize:
		b.mu.Unlock()
		return nil, Info{}, ErrFull
	}
	for i, in := range items {
		b.queue = append(b.queue, unit[In, Out]{job: j, idx: i, in: in})
	}
	b.mu.Unlock()
	b.signal()
	select {
	case <-j.result:
		return j.out, j.info, j.err
	case <-ctx.Done():
		return nil, Info{}, ctx.Err()
	}
}

func (b *Batcher[In, Out]) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Close stops taking work; Run computes what is already queued and then
// returns. It is the drain step of a hot swap.
func (b *Batcher[In, Out]) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
}

// Done is closed when Run has returned.
func (b *Batcher[In, Out]) Done() <-chan struct{} { return b.done }

// Run forms and dispatches batches until Close has been called and the
// queue is empty, or until ctx ends (then queued items fail with
// ErrClosed). Either way it returns only after every batch it started has
// finished. If it panics, the batcher is closed and queued items fail with
// ErrClosed first.
func (b *Batcher[In, Out]) Run(ctx context.Context) error {
	defer close(b.done)
	// A panic in this loop (batches have their own guard) must not leave
	// callers waiting on a queue nothing serves: close, fail what waits,
	// and let the panic go on to the caller's guard.
	defer func() {
		if r := recover(); r != nil {
			b.failAll(ErrClosed)
			panic(r)
		}
	}()
	free := make(chan int, b.cfg.Workers)
	for w := range b.cfg.Workers {
		free <- w
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	for {
		// A free worker first: while all are busy, arrivals gather into
		// the next batch.
		var w int
		select {
		case w = <-free:
		case <-ctx.Done():
			b.failAll(ErrClosed)
			return nil
		}
		batch, ok := b.gather(ctx, timer)
		if !ok {
			free <- w
			b.failAll(ErrClosed)
			return nil
		}
		if len(batch) == 0 { // closed and drained
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { free <- w }()
			b.compute(ctx, w, batch)
		}()
	}
}

// gather waits for the first item, then until the batch is full, the first
// item has waited MaxDelay, or the batcher is closed; it returns the batch,
// empty when closed with nothing queued, and false when ctx ended.
func (b *Batcher[In, Out]) gather(ctx context.Context, timer *time.Timer) ([]unit[In, Out], bool) {
	armed := false
	defer func() {
		if armed && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}()
	for {
		b.mu.Lock()
		b.dropExpired()
		n, closed := len(b.queue), b.closed
		var first time.Time
		if n > 0 {
			first = b.queue[0].job.start
		}
		if n >= b.cfg.MaxBatch || (n > 0 && (closed || time.Since(first) >= b.cfg.MaxDelay)) {
			batch := b.take()
			b.mu.Unlock()
			return batch, true
		}
		b.mu.Unlock()
		if n == 0 && closed {
			return nil, true
		}
		if n > 0 && !armed {
			timer.Reset(b.cfg.MaxDelay - time.Since(first))
			armed = true
		}
		select {
		case <-b.wake:
		case <-timer.C:
			armed = false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// dropExpired removes items whose caller has gone; b.mu is held.
func (b *Batcher[In, Out]) dropExpired() {
	kept := b.queue[:0]
	for _, u := range b.queue {
		if u.job.ctx.Err() == nil {
			kept = append(kept, u)
		}
	}
	clear(b.queue[len(kept):])
	b.queue = kept
}

// take removes up to MaxBatch items from the head of the queue; b.mu is held.
func (b *Batcher[In, Out]) take() []unit[In, Out] {
	n := min(len(b.queue), b.cfg.MaxBatch)
	batch := make([]unit[In, Out], n)
	copy(batch, b.queue)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

func (b *Batcher[In, Out]) compute(ctx context.Context, w int, batch []unit[In, Out]) {
	started := time.Now()
	in := make([]In, len(batch))
	for i, u := range batch {
		in[i] = u.in
	}
	var out []Out
	err := b.cfg.Panics.Call("batcher", func() (err error) {
		out, err = b.run(ctx, w, in)
		return err
	})
	if err == nil && len(out) != len(in) {
		err = fmt.Errorf("batcher: run returned %d outputs for %d inputs", len(out), len(in))
	}
	elapsed := time.Since(started)
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, u := range batch {
		j := u.job
		if j.pending == 0 {
			continue // already failed
		}
		if err != nil {
			j.err, j.pending = err, 0
			close(j.result)
			continue
		}
		j.out[u.idx] = out[i]
		j.info.Queue = max(j.info.Queue, started.Sub(j.start))
		j.info.Compute = max(j.info.Compute, elapsed)
		j.info.BatchSize = max(j.info.BatchSize, len(batch))
		if j.pending--; j.pending == 0 {
			close(j.result)
		}
	}
}

// failAll fails every queued job with err.
func (b *Batcher[In, Out]) failAll(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, u := range b.queue {
		if u.job.pending > 0 {
			u.job.err, u.job.pending = err, 0
			close(u.job.result)
		}
	}
	clear(b.queue)
	b.queue = nil
}
