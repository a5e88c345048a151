package bench

import (
	"context"
	"sync"
	"time"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// SessionSettings are how Inference runs a version: its sessions and
// their options. The bare measurement opens the same onnxrt.Sessions with
// the same options, so that the ratios are fair.
type SessionSettings struct {
	Sessions int
	onnxrt.SessionOptions
}

// ORTPoint is bare ONNX Runtime throughput at one batch size.
type ORTPoint struct {
	// Settings are the sessions and threads it ran with.
	Settings        SessionSettings
	Batch           int
	ImagesPerSecond float64
	// BatchLatency is the mean time of one Run at this batch size.
	BatchLatency time.Duration
	// CPU is this process's CPU time per image (ONNX Runtime's threads).
	CPU time.Duration
}

// Graph is what the bare measurement runs: a model's file and its
// classifier, as Inference describes it.
type Graph struct {
	ONNX       []byte
	Classifier onnxrt.Classifier
}

// MeasureORT runs g in set.Sessions ONNX Runtime sessions opened as
// Inference opens them (onnxrt.Session with set's options, a tensor pair
// per batch size), each in its own goroutine, for d at every batch size,
// and reports images per second.
func MeasureORT(ctx context.Context, rt *onnxrt.Runtime, g Graph, set SessionSettings, batches []int, warmup, d time.Duration) ([]ORTPoint, error) {
	sessions := make([]*onnxrt.Session, set.Sessions)
	for i := range sessions {
		s, err := rt.NewSession(g.ONNX, g.Classifier, batches, set.SessionOptions)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		in := s.Input()
		for j := range in {
			in[j] = float32((j*7919)%256) / 255 // pixel-like values in [0, 1]
		}
		sessions[i] = s
	}
	var points []ORTPoint
	for _, b := range batches {
		p, err := measureBatch(ctx, sessions, b, warmup, d)
		if err != nil {
			return nil, err
		}
		p.Settings = set
		points = append(points, p)
	}
	return points, nil
}

func measureBatch(ctx context.Context, sessions []*onnxrt.Session, b int, warmup, d time.Duration) (ORTPoint, error) {
	type worker struct {
		runs int
		all  int // warm-up runs included
		busy time.Duration
		err  error
	}
	ws := make([]*worker, len(sessions))
	for i := range ws {
		ws[i] = &worker{}
	}
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	// As in Load: CPU from the first run to the last, over every image.
	cpuUsed := cpuSince(ctx, SelfCPU)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if _, err := sessions[i].Run(b); err != nil {
					w.err = err
					return
				}
				w.all++
				if !t0.Before(measureFrom) {
					w.runs++
					w.busy += time.Since(t0)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	used := cpuUsed()
	p := ORTPoint{Batch: b, Settings: SessionSettings{Sessions: len(sessions)}}
	runs, all := 0, 0
	var busy time.Duration
	for _, w := range ws {
		if w.err != nil {
			return ORTPoint{}, w.err
		}
		runs += w.runs
		all += w.all
		busy += w.busy
	}
	if err := ctx.Err(); err != nil {
		return ORTPoint{}, err
	}
	if runs > 0 {
		p.ImagesPerSecond = float64(runs*b) / elapsed.Seconds()
		p.BatchLatency = busy / time.Duration(runs)
		p.CPU = perImage(used, float64(all*b))
	}
	return p, nil
}
