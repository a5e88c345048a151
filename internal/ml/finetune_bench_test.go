package ml

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// BenchmarkFineTuneModes fine-tunes the ResNet-18 export named by
// $SHOAL_BENCH_BASE_ONNX (input "input" [N, 3, 224, 224], output "output",
// 5 classes: scripts/bench-train-torch.py writes it) three ways at batch
// $SHOAL_BENCH_BATCH (16), $SHOAL_BENCH_STEPS (4) training steps each, and
// reports images/s, on ONNX Runtime's GoMLX backend (the Trainer's where
// it is installed; SHOAL_BENCH_BACKEND=go for the pure-Go one): every
// layer; the last stage and the head on the frozen part's outputs; the
// head alone on the backbone's features. For the last two it reports the frozen part's
// pass in ONNX Runtime (once per image, then cached) apart from the
// training steps. Steady state: the first (compiling) step is not counted.
func BenchmarkFineTuneModes(b *testing.B) {
	path := os.Getenv("SHOAL_BENCH_BASE_ONNX")
	if path == "" {
		b.Skip("SHOAL_BENCH_BASE_ONNX names the ResNet-18 export (scripts/bench-train.sh finetune)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	rt := onnxrt.Config{}
	batch, steps := envInt("SHOAL_BENCH_BATCH", 16), envInt("SHOAL_BENCH_STEPS", 4)
	spec := ImportSpec{Shape: InputShape{Channels: 3, Height: 224, Width: 224}, Mean: []float32{0.485, 0.456, 0.406},
		Std: []float32{0.229, 0.224, 0.225}, InputName: "input", OutputName: "output", Classes: 5}
	images := stripes(batch*steps, spec.Shape, 1)
	ctx := context.Background()
	backend := os.Getenv("SHOAL_BENCH_BACKEND")
	if backend == "" || backend == BackendONNX {
		lib, err := rt.LibraryPath()
		if err != nil {
			b.Fatal(err)
		}
		if backend, err = BackendConfig(BackendONNX, lib); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("training on the %s backend", backendName(backend))
	cfg := Config{NumClasses: 5, Epochs: 1, BatchSize: batch, LearningRate: 1e-3, Seed: 1, Backend: backend}
	trained := func(name string, res *Result, err error) {
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		res.Model.Close()
		ips := res.Epochs[0].ImagesPerSecond
		b.ReportMetric(ips, "images/s-"+name)
		b.Logf("%s: %.2f training images/s (batch %d, %d steps after the first)", name, ips, batch, steps-1)
	}
	frozenPass := func(name string, bb *Backbone) *Data {
		ex, err := bb.Extractor(rt, 8, onnxrt.SessionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Close()
		start := time.Now()
		d, err := ex.Extract(ctx, images, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		ips := float64(images.Len()) / time.Since(start).Seconds()
		b.ReportMetric(ips, "frozen-images/s-"+name)
		b.Logf("%s: frozen part in ONNX Runtime %.1f images/s (once per image; %s each)", name, ips, d.Shape)
		return d
	}
	for range b.N {
		imp, err := ImportONNX(data, spec, 5, true, 1)
		if err != nil {
			b.Fatal(err)
		}
		full := cfg
		full.Import = imp
		res, err := Train(ctx, full, images, nil)
		trained("full", res, err)

		p, err := NewPartial(rt, data, spec, 5, true, 1, 1)
		if err != nil {
			b.Fatal(err)
		}
		cut := frozenPass("last-stage", p.Frozen)
		res, err = TrainPartial(ctx, cfg, p, cut, nil, nil)
		trained("last-stage", res, err)

		bb, err := NewBackbone(data, spec)
		if err != nil {
			b.Fatal(err)
		}
		features := frozenPass("head-only", bb)
		res, err = TrainHead(ctx, cfg, features, nil, nil)
		trained("head-only", res, err)
	}
}
