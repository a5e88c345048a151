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
		d, err := fastestRun(ctx, ss, b)
		if err != nil {
			return 0, err
		}
		perImage[i] = d / time.Duration(b)
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

// fastestRun times ss at batch b, at least three times and for minTiming,
// and returns the fastest run: the least disturbed by whatever else the
// machine runs.
func fastestRun(ctx context.Context, ss *onnxrt.Session, b int) (time.Duration, error) {
	var best time.Duration
	began := time.Now()
	for run := 0; run < 3 || time.Since(began) < minTiming; run++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if _, err := ss.Run(b); err != nil {
			return 0, err
		}
		if d := time.Since(t0); run == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// keepWide times m's wide session and a single-threaded one at batch 1 and
// closes the wide session unless it is at least minGain times faster (0:
// always kept). The wide session serves a request that comes alone; where
// a second thread does not make that faster (a small model: a 28x28
// image computes in about 20 µs), it only costs: under load that decodes
// slower than it computes, batches of one reached it all the time, and its
// idle thread spun after each, taking a third of a core from decoding
// (RELIABILITY.md, Overload).
func keepWide(ctx context.Context, m *model, minGain float64) error {
	if !m.wide || minGain <= 0 {
		return nil
	}
	last := len(m.sessions) - 1
	narrow, err := fastestRun(ctx, m.sessions[0], 1)
	if err != nil {
		return err
	}
	wide, err := fastestRun(ctx, m.sessions[last], 1)
	if err != nil {
		return err
	}
	if float64(narrow) >= minGain*float64(wide) {
		return nil
	}
	m.sessions[last].Close()
	m.sessions, m.threads, m.native = m.sessions[:last], m.threads[:last], m.native[:last]
	m.wide = false
	onnxrt.ReleaseFreed()
	return nil
}

// chooseLayout caps m's batches (batchCap on a single-threaded session) and,
// with LayoutWide, keeps m's wide session as its only one: under load it
// then computes one batch at a time with every core, and the others' memory
// (two thirds of the version's, on 2 cores) is given back.
//
// Side by side stays the default, from measurements: on 2 cores the wide
// session alone computed ResNet-18 as fast as two single-threaded sessions
// side by side when timed alone (109–113 against 62–120 images/s at batch 1,
// from run to run), but served 50–59% of bare ONNX Runtime's best under
// load against 60–72% side by side, its two threads taking 24–28 ms of CPU
// an image against 20–21 while requests were decoded beside it
// (BENCHMARKS.md). A choice timed at load, alone, picked it and served less.
func chooseLayout(ctx context.Context, m *model, layout string, wideMinGain float64) error {
	var err error
	if m.batchCap, err = batchCap(ctx, m.sessions[0], m.warm); err != nil {
		return err
	}
	if layout != LayoutWide {
		return keepWide(ctx, m, wideMinGain)
	}
	if !m.wide {
		return nil
	}
	last := len(m.sessions) - 1
	for _, ss := range m.sessions[:last] {
		ss.Close()
	}
	m.sessions, m.threads, m.native = m.sessions[last:], m.threads[last:], m.native[last:]
	m.wide, m.wideOnly = false, true
	onnxrt.ReleaseFreed()
	return nil
}
