package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Timings is how the server says it spent a request's time.
type Timings struct {
	Preprocess, Queue, Compute time.Duration
	BatchSize                  int
}

// CallFunc sends one request with the given number of images and returns
// the server's timings.
type CallFunc func(ctx context.Context) (Timings, error)

// Stats summarises the requests of one load point.
type Stats struct {
	Concurrency int
	Requests    int
	Errors      int
	// FirstError is the first error seen, for the report.
	FirstError error
	Elapsed    time.Duration
	// ImagesPerSecond counts successful requests' images over Elapsed.
	ImagesPerSecond float64
	P50, P99        time.Duration
	// Mean server-side split of a request's time, and the mean batch size
	// its images ran in.
	Preprocess, Queue, Compute time.Duration
	MeanBatch                  float64
	// ServerCPU and ClientCPU are the CPU time per image answered, of the
	// server process and of this load generator, over the measured time
	// (0 when not measured).
	ServerCPU, ClientCPU time.Duration
}

// Load runs a closed loop: concurrency callers each send a request as soon
// as their previous one is answered. Requests that start during warmup are
// not counted; counting stops after d. imagesPerCall is the images each
// request carries. serverCPU, when not nil, reads the server's CPU time, so
// that the CPU each image costs the server is measured apart from the load
// generator's own.
func Load(ctx context.Context, concurrency, imagesPerCall int, warmup, d time.Duration, call CallFunc, serverCPU CPUClock) Stats {
	type sample struct {
		lat time.Duration
		t   Timings
		err error
	}
	var (
		mu      sync.Mutex
		samples []sample
		wg      sync.WaitGroup
	)
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	ctx, cancel := context.WithDeadline(ctx, end.Add(30*time.Second))
	defer cancel()
	// CPU is read from before the first request to after the last, and
	// divided by every answered image, warm-up included: so no request is
	// half in and half out of the reading.
	serverUsed, clientUsed := cpuSince(ctx, serverCPU), cpuSince(ctx, SelfCPU)
	var answered atomic.Int64
	for range concurrency {
		wg.Go(func() {
			var mine []sample
			for {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					break
				}
				tm, err := call(ctx)
				if err == nil {
					answered.Add(int64(imagesPerCall))
				}
				if t0.Before(measureFrom) {
					continue
				}
				mine = append(mine, sample{time.Since(t0), tm, err})
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	serverCPUUsed, clientCPUUsed := serverUsed(), clientUsed()
	s := Stats{Concurrency: concurrency, Elapsed: elapsed}
	var lats []time.Duration
	for _, sm := range samples {
		s.Requests++
		if sm.err != nil {
			s.Errors++
			if s.FirstError == nil {
				s.FirstError = sm.err
			}
			continue
		}
		lats = append(lats, sm.lat)
		s.Preprocess += sm.t.Preprocess
		s.Queue += sm.t.Queue
		s.Compute += sm.t.Compute
		s.MeanBatch += float64(sm.t.BatchSize)
	}
	if ok := len(lats); ok > 0 {
		s.ImagesPerSecond = float64(ok*imagesPerCall) / elapsed.Seconds()
		s.Preprocess /= time.Duration(ok)
		s.Queue /= time.Duration(ok)
		s.Compute /= time.Duration(ok)
		s.MeanBatch /= float64(ok)
		s.P50, s.P99 = Percentile(lats, 0.50), Percentile(lats, 0.99)
		images := float64(answered.Load())
		s.ServerCPU, s.ClientCPU = perImage(serverCPUUsed, images), perImage(clientCPUUsed, images)
	}
	return s
}

// Percentile returns the q-quantile (0 < q <= 1) of ds by the nearest-rank
// method: the smallest value with at least q of the values at or below it.
// ds is sorted in place.
func Percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(0, min(rank, len(ds)-1))]
}
