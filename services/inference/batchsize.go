package inference

import (
	"context"
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
