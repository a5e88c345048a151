package batcher_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/batcher"
)

// stepper is a RunFunc whose batches each wait for the test to release
// them, and which reports every batch as it starts.
type stepper struct{ started chan step }

type step struct {
	worker  int
	items   []int
	release chan struct{}
}

func newStepper() *stepper { return &stepper{started: make(chan step, 64)} }

func (s *stepper) run(ctx context.Context, w int, in []int) ([]int, error) {
	st := step{worker: w, items: slices.Clone(in), release: make(chan struct{})}
	s.started <- st
	<-st.release
	return double(ctx, w, in)
}

func (s *stepper) next(t *testing.T) step {
	t.Helper()
	select {
	case st := <-s.started:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a batch to start")
	}
	return step{}
}

// queue sends items as one Do call, waits until they are queued, and
// returns where the outputs will arrive.
func queue(t *testing.T, b *batcher.Batcher[int, int], items ...int) <-chan []int {
	t.Helper()
	before := b.Len()
	out := make(chan []int, 1)
	go func() {
		got, _, err := b.Do(context.Background(), items)
		if err != nil {
			t.Errorf("Do(%v) = %v", items, err)
		}
		out <- got
	}()
	waitFor(t, fmt.Sprintf("%v queued", items), func() bool { return b.Len() == before+len(items) })
	return out
}

// TestFIFOUnderContinuousArrivals keeps the queue long while single items
// keep arriving, with a request of 10 items among them: batches take the
// queue in arrival order, so the large request is never overtaken by an
// item that came after it, and its answer comes once its last batch is
// done.
func TestFIFOUnderContinuousArrivals(t *testing.T) {
	s := newStepper()
	b, _ := batcher.New(batcher.Config{MaxBatch: 4, QueueSize: 100, Workers: 2}, s.run)
	start(t, b)
	var running []step // both workers busy
	for i := range 2 {
		go b.Do(context.Background(), []int{i})
		running = append(running, s.next(t))
	}
	next := 2
	for range 8 {
		queue(t, b, next)
		next++
	}
	big := make([]int, 10)
	for i := range big {
		big[i] = next + i
	}
	bigDone := queue(t, b, big...)
	next += len(big)
	var order []int
	for _, st := range running {
		order = append(order, st.items...)
	}
	for len(order) < next {
		// One more arrival, then the oldest batch ends and its worker
		// takes the head of the queue.
		queue(t, b, next)
		next++
		close(running[0].release)
		running = append(running[1:], s.next(t))
		order = append(order, running[1].items...)
		if len(running[1].items) != 4 && b.Len() > 0 {
			t.Fatalf("batch %v with %d more queued; want full batches of 4", running[1].items, b.Len())
		}
	}
	for _, st := range running {
		close(st.release)
	}
	for i, v := range order[:next] {
		if v != i {
			t.Fatalf("items started in the order %v; want arrival order", order)
		}
	}
	if got := <-bigDone; len(got) != len(big) || got[9] != 2*big[9] {
		t.Fatalf("Do(10 items) = %v", got)
	}
}

// TestQueueSpreadsEvenlyOverFreeWorkers: what is queued when workers come
// free goes at once, in equal shares, not one full batch and a remainder.
func TestQueueSpreadsEvenlyOverFreeWorkers(t *testing.T) {
	s := newStepper()
	// An hour's delay: nothing goes until 8 items fill a batch.
	b, _ := batcher.New(batcher.Config{MaxBatch: 8, MaxDelay: time.Hour, QueueSize: 100, Workers: 2}, s.run)
	start(t, b)
	go b.Do(context.Background(), []int{0, 1, 2, 3, 4, 5, 6, 7})
	first, second := s.next(t), s.next(t)
	if len(first.items) != 4 || len(second.items) != 4 || first.worker == second.worker {
		t.Fatalf("batches %v on worker %d and %v on worker %d; want 4 and 4 on both workers",
			first.items, first.worker, second.items, second.worker)
	}
	close(first.release)
	close(second.release)
}

// TestWideWorkerTakesALoneItem: with every worker idle, a lone item runs
// on the wide worker, and nothing starts beside it; once it is done, what
// queued meanwhile is spread over the narrow workers.
func TestWideWorkerTakesALoneItem(t *testing.T) {
	s := newStepper()
	b, _ := batcher.New(batcher.Config{MaxBatch: 8, QueueSize: 100, Workers: 2, Wide: true}, s.run)
	start(t, b)
	lone := make(chan []int, 1)
	go func() { out, _, _ := b.Do(context.Background(), []int{1}); lone <- out }()
	wide := s.next(t)
	if wide.worker != 2 || !slices.Equal(wide.items, []int{1}) {
		t.Fatalf("lone item ran as %v on worker %d; want [1] on the wide worker 2", wide.items, wide.worker)
	}
	// Arrivals while the wide batch computes wait for it.
	queue(t, b, 2)
	queue(t, b, 3, 4, 5)
	select {
	case st := <-s.started:
		t.Fatalf("batch %v started on worker %d beside the wide one", st.items, st.worker)
	default:
	}
	close(wide.release)
	if got := <-lone; got[0] != 2 {
		t.Fatalf("Do([1]) = %v", got)
	}
	a, c := s.next(t), s.next(t)
	if a.worker == 2 || c.worker == 2 || len(a.items) != 2 || len(c.items) != 2 {
		t.Fatalf("after the wide batch: %v on worker %d, %v on worker %d; want 2 and 2 on the narrow workers", a.items, a.worker, c.items, c.worker)
	}
	// A lone arrival while a narrow worker computes takes the free narrow
	// one: the wide worker runs only alone.
	close(a.release)
	go b.Do(context.Background(), []int{6})
	if st := s.next(t); st.worker == 2 {
		t.Fatalf("[6] ran on the wide worker while worker %d computed", c.worker)
	} else {
		close(st.release)
	}
	close(c.release)
	// All idle again: the next lone item is the wide worker's.
	waitFor(t, "the workers idle", func() bool { return b.Len() == 0 })
	out, info, err := doAfterIdle(t, b, s)
	if err != nil || out[0] != 14 || !info.Wide {
		t.Fatalf("Do([7]) when idle = %v, %+v, %v; want [14] on the wide worker", out, info, err)
	}
}

// doAfterIdle sends [7] once the earlier batches have returned (their
// goroutines hand the workers back before Do's callers see the results
// only in order), releasing its batch.
func doAfterIdle(t *testing.T, b *batcher.Batcher[int, int], s *stepper) ([]int, batcher.Info, error) {
	t.Helper()
	for {
		type result struct {
			out  []int
			info batcher.Info
			err  error
		}
		res := make(chan result, 1)
		go func() {
			out, info, err := b.Do(context.Background(), []int{7})
			res <- result{out, info, err}
		}()
		st := s.next(t)
		close(st.release)
		r := <-res
		if st.worker == 2 || r.err != nil {
			return r.out, r.info, r.err
		}
		// A narrow worker was still being handed back: try again.
	}
}

// TestWideWorkerOnlyWhenNothingIsPending: a lone queued item whose
// request is not the only one on its way (Pending counts more) runs on a
// narrow worker; once Pending counts only what is queued, on the wide one.
func TestWideWorkerOnlyWhenNothingIsPending(t *testing.T) {
	s := newStepper()
	var pending atomic.Int64
	b, _ := batcher.New(batcher.Config{MaxBatch: 8, QueueSize: 100, Workers: 2, Wide: true, Pending: pending.Load}, s.run)
	start(t, b)
	pending.Store(5) // four more images are being decoded
	done := make(chan struct{})
	go func() { _, _, _ = b.Do(context.Background(), []int{1}); close(done) }()
	st := s.next(t)
	close(st.release)
	if st.worker == 2 {
		t.Fatalf("[1] ran on the wide worker while 4 more images were pending")
	}
	<-done
	pending.Store(1)
	waitFor(t, "the workers idle", func() bool { return b.Len() == 0 })
	out, info, err := doAfterIdle(t, b, s)
	if err != nil || out[0] != 14 || !info.Wide {
		t.Fatalf("Do([7]) alone = %v, %+v, %v; want [14] on the wide worker", out, info, err)
	}
}
