package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// SessionSettings are the ONNX Runtime settings Inference runs a version
// with; the bare measurement uses the same so that the ratios are fair.
type SessionSettings struct {
	Sessions       int
	IntraOpThreads int
}

// ORTPoint is bare ONNX Runtime throughput at one batch size.
type ORTPoint struct {
	Batch           int
	ImagesPerSecond float64
	// BatchLatency is the mean time of one Run at this batch size.
	BatchLatency time.Duration
	// CPU is this process's CPU time per image (ONNX Runtime's threads).
	CPU time.Duration
}

// Graph is what the bare measurement needs to know about a model.
type Graph struct {
	ONNX           []byte
	Input, Output  string
	ImageShape     []int64 // one image: [C,H,W] or [H,W,C]
	Classes        int
	ImageSizeFloat int // values per image
}

// MeasureORT runs g in set.Sessions ONNX Runtime sessions, as Inference
// does (intra-op threads as set, one inter-op thread), each in its own
// goroutine, for d at every batch size, and reports images per second.
// ONNX Runtime must be loaded (onnxrt.Load).
func MeasureORT(ctx context.Context, g Graph, set SessionSettings, batches []int, warmup, d time.Duration) ([]ORTPoint, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(set.IntraOpThreads); err != nil {
		return nil, err
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	sessions := make([]*ort.DynamicAdvancedSession, set.Sessions)
	for i := range sessions {
		s, err := ort.NewDynamicAdvancedSessionWithONNXData(g.ONNX, []string{g.Input}, []string{g.Output}, opts)
		if err != nil {
			return nil, fmt.Errorf("onnxruntime: %w", err)
		}
		defer s.Destroy()
		sessions[i] = s
	}
	var points []ORTPoint
	for _, b := range batches {
		p, err := measureBatch(ctx, g, sessions, b, warmup, d)
		if err != nil {
			return nil, err
		}
		points = append(points, p)
	}
	return points, nil
}

func measureBatch(ctx context.Context, g Graph, sessions []*ort.DynamicAdvancedSession, b int, warmup, d time.Duration) (ORTPoint, error) {
	type worker struct {
		in, out *ort.Tensor[float32]
		runs    int
		all     int // warm-up runs included
		busy    time.Duration
		err     error
	}
	ws := make([]*worker, len(sessions))
	for i := range ws {
		vals := make([]float32, b*g.ImageSizeFloat)
		for j := range vals {
			vals[j] = float32((j*7919)%256) / 255 // pixel-like values in [0, 1]
		}
		in, err := ort.NewTensor(append(ort.Shape{int64(b)}, g.ImageShape...), vals)
		if err != nil {
			return ORTPoint{}, err
		}
		defer in.Destroy()
		out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(b), int64(g.Classes)))
		if err != nil {
			return ORTPoint{}, err
		}
		defer out.Destroy()
		ws[i] = &worker{in: in, out: out}
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
				if err := sessions[i].Run([]ort.Value{w.in}, []ort.Value{w.out}); err != nil {
					w.err = fmt.Errorf("onnxruntime run at batch %d: %w", b, err)
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
	p := ORTPoint{Batch: b}
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
