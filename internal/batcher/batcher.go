// Package batcher groups concurrent requests into batches for a compute
// function that is cheaper per item on a batch: ONNX Runtime sessions in
// Inference. A batch goes out when it is full or when the oldest queued item
// has waited the maximum delay (a timer armed by that first item, never
// polling), and only when a worker is free to run it, so load beyond what
// the workers absorb turns into larger batches rather than a longer queue.
//
// Items leave the queue in the order they came (FIFO across batches), so
// no item is overtaken by one queued after it, and a batch never waits for
// padding: with no delay set, whatever is queued goes as soon as a worker
// is free. Queued items are spread evenly over the free workers, so that
// batches computing side by side end at about the same time.
//
// With Config.Wide, an item that finds every worker idle and the queue too
// short to give each worker an item runs on one more worker that uses all
// the cores (an ONNX Runtime session with every intra-op thread), alone:
// a lone request gets all the cores, and under load the cores are shared
// by one batch per worker.
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
	// Wide adds worker number Workers, which runs a batch only alone: when
	// every other worker is idle and fewer items are queued than there are
	// workers, and nothing else starts until it is done.
	Wide bool
	// Pending, when set, counts the items on their way to the batcher as
	// well as those queued (the images a server admitted and is still
	// decoding): the wide worker then runs a batch only when nothing more
	// is on its way, i.e. for a request that really came alone. An item
	// that finds the workers idle while another is being decoded goes to
	// a single-threaded worker, leaving the other for the next one,
	// instead of holding every worker until it is done.
	Pending func() int64
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

// RunFunc computes a batch on worker (0 <= worker < Workers, or Workers for
// the wide worker; one batch at a time per worker) and returns one output
// per input, in order. ctx is the batcher's, not a caller's: one caller
// giving up does not cancel the others' work.
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
	// Wide is true when (some of) the items ran on the wide worker.
	Wide bool
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
	d := &dispatch{finished: make(chan int, b.cfg.Workers+1)}
	for w := b.cfg.Workers - 1; w >= 0; w-- {
		d.free = append(d.free, w)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	armed := false
	for {
		select {
		case <-ctx.Done():
			b.failAll(ErrClosed)
			return nil
		default:
		}
		// Start every batch the workers can take now.
		batches, wait, done := b.next(d)
		if done {
			return nil
		}
		if wait > 0 && !armed {
			timer.Reset(wait)
			armed = true
		}
		for _, a := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { d.finished <- a.worker }()
				b.compute(ctx, a.worker, a.batch)
			}()
		}
		select {
		case w := <-d.finished:
			d.running--
			if w == b.cfg.Workers {
				d.wide = false
			} else {
				d.free = append(d.free, w)
			}
		case <-b.wake:
		case <-timer.C:
			armed = false
		case <-ctx.Done():
			b.failAll(ErrClosed)
			return nil
		}
	}
}

// dispatch is Run's view of its workers; only Run's goroutine uses it.
type dispatch struct {
	free     []int // idle workers, not counting the wide one
	running  int   // batches computing
	wide     bool  // the wide worker is computing
	finished chan int
}

// assignment is a batch and the worker to compute it.
type assignment[In, Out any] struct {
	worker int
	batch  []unit[In, Out]
}

// next takes batches off the queue for the workers that may take one now.
// When none may, wait > 0 is how long until the oldest item has waited
// MaxDelay; done is true once the batcher is closed, drained and idle.
func (b *Batcher[In, Out]) next(d *dispatch) (batches []assignment[In, Out], wait time.Duration, done bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d.wide || len(d.free) == 0 {
		return nil, 0, false
	}
	b.dropExpired()
	n := len(b.queue)
	if n == 0 {
		return nil, 0, b.closed && d.running == 0
	}
	if n < b.cfg.MaxBatch && !b.closed {
		if waited := time.Since(b.queue[0].job.start); waited < b.cfg.MaxDelay {
			return nil, b.cfg.MaxDelay - waited, false
		}
	}
	if b.cfg.Wide && d.running == 0 && n < b.cfg.Workers && (b.cfg.Pending == nil || b.cfg.Pending() <= int64(n)) {
		d.running++
		d.wide = true
		return []assignment[In, Out]{{b.cfg.Workers, b.take(n)}}, 0, false
	}
	// What is queued goes now, spread evenly over the free workers: batches
	// started together end together, so no caller waits behind a larger
	// batch than another's.
	for len(b.queue) > 0 && len(d.free) > 0 {
		size := min(b.cfg.MaxBatch, (len(b.queue)+len(d.free)-1)/len(d.free))
		w := d.free[len(d.free)-1]
		d.free = d.free[:len(d.free)-1]
		d.running++
		batches = append(batches, assignment[In, Out]{w, b.take(size)})
	}
	return batches, 0, false
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

// take removes n items (at most MaxBatch) from the head of the queue; b.mu
// is held.
func (b *Batcher[In, Out]) take(n int) []unit[In, Out] {
	n = min(n, len(b.queue), b.cfg.MaxBatch)
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
		j.info.Wide = j.info.Wide || w == b.cfg.Workers
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
