package batcher_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalml/shoal/internal/batcher"
	"github.com/shoalml/shoal/internal/panics"
)

// start runs b until the test ends.
func start[In, Out any](t *testing.T, b *batcher.Batcher[In, Out]) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	go b.Run(ctx)
	t.Cleanup(func() { cancel(); <-b.Done() })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func double(_ context.Context, _ int, in []int) ([]int, error) {
	out := make([]int, len(in))
	for i, v := range in {
		out[i] = 2 * v
	}
	return out, nil
}

func TestConcurrentCallersGetTheirOwnResultsInOrder(t *testing.T) {
	var mu sync.Mutex
	sizes := map[int]int{}
	run := func(ctx context.Context, w int, in []int) ([]int, error) {
		mu.Lock()
		sizes[len(in)]++
		mu.Unlock()
		return double(ctx, w, in)
	}
	b, err := batcher.New(batcher.Config{MaxBatch: 8, MaxDelay: time.Millisecond, QueueSize: 200 * 11, Workers: 2}, run)
	if err != nil {
		t.Fatal(err)
	}
	start(t, b)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for c := range 200 {
		wg.Go(func() {
			items := make([]int, 1+c%11) // some calls span several batches
			for i := range items {
				items[i] = c*100 + i
			}
			out, info, err := b.Do(context.Background(), items)
			if err != nil {
				errs <- err
				return
			}
			for i := range items {
				if out[i] != 2*items[i] {
					errs <- fmt.Errorf("caller %d: out[%d] = %d; want %d", c, i, out[i], 2*items[i])
					return
				}
			}
			if info.BatchSize < 1 || info.BatchSize > 8 {
				errs <- fmt.Errorf("caller %d: batch size %d", c, info.BatchSize)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for size := range sizes {
		if size > 8 {
			t.Errorf("ran a batch of %d; MaxBatch is 8", size)
		}
	}
}

// gate is a RunFunc that reports each batch and blocks until released.
type gate struct {
	started chan []int
	release chan struct{}
}

func newGate() *gate { return &gate{started: make(chan []int, 10), release: make(chan struct{})} }

func (g *gate) run(ctx context.Context, w int, in []int) ([]int, error) {
	g.started <- append([]int(nil), in...)
	<-g.release
	return double(ctx, w, in)
}

func TestFullBatchGoesWithoutWaitingForTheDelay(t *testing.T) {
	// An hour's delay: only a full batch can be dispatched.
	b, _ := batcher.New(batcher.Config{MaxBatch: 3, MaxDelay: time.Hour, QueueSize: 10, Workers: 1}, double)
	start(t, b)
	out, info, err := b.Do(context.Background(), []int{1, 2, 3})
	if err != nil || out[2] != 6 || info.BatchSize != 3 {
		t.Fatalf("Do() = %v, %+v, %v; want [2 4 6] in a batch of 3", out, info, err)
	}
}

func TestLoneItemGoesAfterTheDelay(t *testing.T) {
	b, _ := batcher.New(batcher.Config{MaxBatch: 64, MaxDelay: 20 * time.Millisecond, QueueSize: 10, Workers: 1}, double)
	start(t, b)
	began := time.Now()
	out, info, err := b.Do(context.Background(), []int{5})
	if err != nil || out[0] != 10 || info.BatchSize != 1 {
		t.Fatalf("Do() = %v, %+v, %v; want [10] in a batch of 1", out, info, err)
	}
	if waited := time.Since(began); waited < 20*time.Millisecond {
		t.Fatalf("Do() returned after %v; want at least the 20ms delay", waited)
	}
}

func TestQueueFull(t *testing.T) {
	g := newGate()
	b, _ := batcher.New(batcher.Config{MaxBatch: 1, QueueSize: 2, Workers: 1}, g.run)
	start(t, b)
	go b.Do(context.Background(), []int{1})
	<-g.started // the only worker is busy
	done := make(chan error, 1)
	go func() { _, _, err := b.Do(context.Background(), []int{2, 3}); done <- err }()
	waitFor(t, "two queued items", func() bool { return b.Len() == 2 })
	if _, _, err := b.Do(context.Background(), []int{4}); !errors.Is(err, batcher.ErrFull) {
		t.Fatalf("Do() on a full queue = %v; want ErrFull", err)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("queued Do() = %v", err)
	}
}

func TestExpiredRequestsAreDroppedBeforeCompute(t *testing.T) {
	g := newGate()
	b, _ := batcher.New(batcher.Config{MaxBatch: 8, QueueSize: 10, Workers: 1}, g.run)
	start(t, b)
	go b.Do(context.Background(), []int{1})
	<-g.started
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, _, err := b.Do(ctx, []int{2}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do() past its deadline = %v; want DeadlineExceeded", err)
	}
	done := make(chan []int, 1)
	go func() { out, _, _ := b.Do(context.Background(), []int{3}); done <- out }()
	waitFor(t, "the live item queued", func() bool { return b.Len() == 2 })
	close(g.release)
	if batch := <-g.started; len(batch) != 1 || batch[0] != 3 {
		t.Fatalf("second batch = %v; want only [3] (the expired item dropped)", batch)
	}
	if out := <-done; out[0] != 6 {
		t.Fatalf("Do() = %v; want [6]", out)
	}
}

func TestCancelMidBatchLeavesOthersAlone(t *testing.T) {
	g := newGate()
	b, _ := batcher.New(batcher.Config{MaxBatch: 2, MaxDelay: time.Hour, QueueSize: 10, Workers: 1}, g.run)
	start(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() { _, _, err := b.Do(ctx, []int{1}); cancelled <- err }()
	waitFor(t, "the first item queued", func() bool { return b.Len() == 1 })
	other := make(chan []int, 1)
	go func() { out, _, _ := b.Do(context.Background(), []int{2}); other <- out }()
	if batch := <-g.started; len(batch) != 2 {
		t.Fatalf("batch = %v; want both items", batch)
	}
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Do() = %v; want Canceled", err)
	}
	close(g.release)
	if out := <-other; len(out) != 1 || out[0] != 4 {
		t.Fatalf("other Do() = %v; want [4]", out)
	}
}

func TestCloseDrainsTheQueue(t *testing.T) {
	g := newGate()
	b, _ := batcher.New(batcher.Config{MaxBatch: 1, QueueSize: 10, Workers: 1}, g.run)
	start(t, b)
	results := make(chan []int, 2)
	go func() { out, _, _ := b.Do(context.Background(), []int{1}); results <- out }()
	<-g.started
	go func() { out, _, _ := b.Do(context.Background(), []int{2}); results <- out }()
	waitFor(t, "the second item queued", func() bool { return b.Len() == 1 })
	b.Close()
	if _, _, err := b.Do(context.Background(), []int{3}); !errors.Is(err, batcher.ErrClosed) {
		t.Fatalf("Do() after Close = %v; want ErrClosed", err)
	}
	close(g.release)
	got := map[int]bool{}
	for range 2 {
		got[(<-results)[0]] = true
	}
	if !got[2] || !got[4] {
		t.Fatalf("results = %v; want 2 and 4 (queued work finished after Close)", got)
	}
	<-b.Done()
}

func TestComputeErrorReachesEveryCallerInTheBatch(t *testing.T) {
	boom := errors.New("boom")
	b, _ := batcher.New(batcher.Config{MaxBatch: 4, QueueSize: 10, Workers: 1},
		func(context.Context, int, []int) ([]int, error) { return nil, boom })
	start(t, b)
	if _, _, err := b.Do(context.Background(), []int{1, 2}); !errors.Is(err, boom) {
		t.Fatalf("Do() = %v; want the run error", err)
	}
}

// A panic in the compute function fails that batch only: its callers get a
// *panics.Error, the panic is counted, and the worker serves the next batch.
func TestComputePanicFailsOnlyItsBatch(t *testing.T) {
	guard := panics.NewGuard(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	run := func(ctx context.Context, w int, in []int) ([]int, error) {
		if in[0] < 0 {
			var s []int
			_ = s[len(in)] // index out of range
		}
		return double(ctx, w, in)
	}
	b, _ := batcher.New(batcher.Config{MaxBatch: 4, QueueSize: 10, Workers: 1, Panics: guard}, run)
	start(t, b)
	var pe *panics.Error
	if _, _, err := b.Do(context.Background(), []int{-1, 2}); !errors.As(err, &pe) || pe.Component != "batcher" {
		t.Fatalf("Do(panicking batch) = %v; want a *panics.Error from the batcher", err)
	}
	if out, _, err := b.Do(context.Background(), []int{3}); err != nil || out[0] != 6 {
		t.Fatalf("Do(next batch) = %v, %v; want [6]: the worker must survive", out, err)
	}
	if got := guard.Count("batcher"); got != 1 {
		t.Errorf(`shoal_panics_total{component="batcher"} = %v; want 1`, got)
	}
}

// panickyContext panics when Run asks for its Done channel: a panic in
// Run's own loop, outside any batch.
type panickyContext struct{ context.Context }

func (panickyContext) Done() <-chan struct{} { panic("injected: batcher loop") }

// A panic in Run's loop closes the batcher: callers already queued get
// ErrClosed instead of waiting for their deadline, later ones too, and the
// panic reaches Run's caller (the service's guard).
func TestRunPanicClosesTheBatcher(t *testing.T) {
	b, _ := batcher.New(batcher.Config{MaxBatch: 4, QueueSize: 10, Workers: 1}, double)
	queued := make(chan error, 1)
	go func() {
		_, _, err := b.Do(context.Background(), []int{1})
		queued <- err
	}()
	waitFor(t, "the item to queue", func() bool { return b.Len() == 1 })
	guard := panics.NewGuard(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	err := guard.Call("batcher", func() error { return b.Run(panickyContext{context.Background()}) })
	var pe *panics.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Run() with a panic in its loop = %v; want the panic, for the guard", err)
	}
	if err := <-queued; !errors.Is(err, batcher.ErrClosed) {
		t.Errorf("Do(queued before the panic) = %v; want ErrClosed", err)
	}
	if _, _, err := b.Do(context.Background(), []int{2}); !errors.Is(err, batcher.ErrClosed) {
		t.Errorf("Do(after the panic) = %v; want ErrClosed", err)
	}
	select {
	case <-b.Done():
	default:
		t.Error("Done() is not closed after Run panicked")
	}
}

func TestInvalidConfig(t *testing.T) {
	if _, err := batcher.New(batcher.Config{}, double); err == nil {
		t.Fatal("New(zero Config) = nil; want an error")
	}
}
