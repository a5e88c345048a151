package inference

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// batchGain is how much faster per image a larger batch must compute to be
// worth forming: batches are capped at the smallest size within it of the
// best per-image time measured at load.
//
// A batch only pays when it computes faster per image. Where it does not
// (ResNet-18 on a CPU computes an image in the same time at batch 1 as at
// 8), larger batches only make latency uneven: a request that arrives as a
// worker takes a batch waits for a whole batch to compute, one that
// arrives just before it does not, and p99 at 8 concurrent callers was
// twice p50 (BENCHMARKS.md). Small models gain twice the throughput at 8
// (the fixed cost of a run is most of their time) and keep their batches.
const batchGain = 1.15

// minTiming is how long each batch size is timed for at least.
const minTiming = 20 * time.Millisecond

// batchCap times ss, a warm session, at each of the sizes (ascending) and
// returns the smallest whose time per image is within batchGain of the
// best: the largest batch worth forming. Each size runs at least three
// times and for minTiming; the fastest run counts, as the least disturbed
// by whatever else the machine runs.
func batchCap(ctx context.Context, ss *onnxrt.Session, sizes []int) (int, error) {
	perImage := make([]time.Duration, len(sizes))
	for i, b := range sizes {
		began := time.Now()
		for run := 0; run < 3 || time.Since(began) < minTiming; run++ {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			t0 := time.Now()
			if _, err := ss.Run(b); err != nil {
				return 0, err
			}
			if d := time.Since(t0) / time.Duration(b); run == 0 || d < perImage[i] {
				perImage[i] = d
			}
		}
	}
	best := perImage[0]
	for _, d := range perImage {
		best = min(best, d)
	}
	for i, d := range perImage {
		if float64(d) <= batchGain*float64(best) {
			return sizes[i], nil
		}
	}
	return sizes[len(sizes)-1], nil
}

// layoutGain is how many more images a second the wide session alone must
// compute than the single-threaded sessions side by side for a version to
// keep the wide session as its only one.
//
// Which is faster depends on the model and the machine, so each version
// measures it as it loads. On 2 cores (BENCHMARKS.md), ResNet-18 at batch 1
// computed 109 images/s in one session of two threads and 62 in two
// single-threaded sessions side by side (each streams the whole weights
// per image through the shared cache); the small model computes more in
// single-threaded sessions, whose runs are mostly fixed cost.
const layoutGain = 1.05

// sideBySideTiming is how long the sessions are timed together at least.
const sideBySideTiming = 100 * time.Millisecond

// chooseLayout caps m's batches (batchCap on a single-threaded session) and,
// when m has a wide session, times the single-threaded sessions computing
// side by side at that cap against the wide session alone at the same cap
// (timing the wide session at every size too made ResNet-18's start 0.4 s
// longer, for a cap that came out the same).
// When the wide session computes more than layoutGain as many images a
// second, m keeps it as its only session: under load it then computes one
// batch at a time with every core, and the others' memory is given back.
// The layout setting (Config.SessionLayout) skips the measurement.
func chooseLayout(ctx context.Context, m *model, layout string) error {
	var err error
	if m.batchCap, err = batchCap(ctx, m.sessions[0], m.warm); err != nil {
		return err
	}
	if !m.wide || layout == LayoutSideBySide {
		return nil
	}
	last := len(m.sessions) - 1
	if layout == LayoutAuto {
		narrowRate, err := sideBySide(ctx, m.sessions[:last], m.batchCap)
		if err != nil {
			return err
		}
		wideRate, err := sideBySide(ctx, m.sessions[last:], m.batchCap)
		if err != nil {
			return err
		}
		if wideRate <= layoutGain*narrowRate {
			return nil
		}
	}
	for _, ss := range m.sessions[:last] {
		ss.Close()
	}
	m.sessions, m.threads, m.native = m.sessions[last:], m.threads[last:], m.native[last:]
	m.wide, m.wideOnly = false, true
	onnxrt.ReleaseFreed()
	return nil
}

// sideBySide runs each of sessions at batch b in a goroutine of its own,
// all at once, for sideBySideTiming and at least three runs each, and
// returns the images computed a second.
func sideBySide(ctx context.Context, sessions []*onnxrt.Session, b int) (float64, error) {
	var (
		wg     sync.WaitGroup
		images atomic.Int64
		errs   = make([]error, len(sessions))
	)
	began := time.Now()
	for i, ss := range sessions {
		wg.Go(func() {
			for run := 0; run < 3 || time.Since(began) < sideBySideTiming; run++ {
				if errs[i] = ctx.Err(); errs[i] != nil {
					return
				}
				if _, errs[i] = ss.Run(b); errs[i] != nil {
					return
				}
				images.Add(int64(b))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(images.Load()) / time.Since(began).Seconds(), nil
}
