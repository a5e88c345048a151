package trainer_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/bench"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// fishPhotos generates a photo-like labelled set the size of the original
// pipeline's: 1,306 JPEGs of 400x300 pixels, 5 classes, 80% in the train
// split (which the job splits 80/20 again: 835 training images). Each
// image is a textured background (two-colour gradient, noise) with a fish
// (an ellipse body and a tail, of its class's hue and shape, randomly
// placed, sized and shaded).
func fishPhotos(seed uint64) []fakeImage {
	labels := []string{"Catfish", "Gold Fish", "Mudfish", "Mullet", "Snakehead"}
	rng := rand.New(rand.NewPCG(seed, 1306))
	const w, h, total = 400, 300, 1306
	var out []fakeImage
	for i := range total {
		li := i % len(labels)
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		bg0 := [3]float64{rng.Float64() * 120, 60 + rng.Float64()*120, 80 + rng.Float64()*150}
		bg1 := [3]float64{rng.Float64() * 200, rng.Float64() * 200, rng.Float64() * 200}
		hue := float64(li)/float64(len(labels)) + (rng.Float64()-0.5)*0.08
		body := hsv(hue, 0.5+rng.Float64()*0.4, 0.45+rng.Float64()*0.5)
		cx, cy := w*(0.3+0.4*rng.Float64()), h*(0.3+0.4*rng.Float64())
		rx := w * (0.15 + 0.15*rng.Float64())
		ry := rx * (0.2 + 0.12*float64(li)) // slender snakeheads to round goldfish, by class
		for y := range h {
			for x := range w {
				t := (float64(x) + float64(y)) / (w + h)
				noise := float64(rng.Uint32()&31) - 16 // sensor noise, luminance only
				var c [3]float64
				for k := range 3 {
					c[k] = bg0[k]*(1-t) + bg1[k]*t + noise
				}
				dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
				tail := float64(x) > cx+rx*0.8 && float64(x) < cx+rx*1.35 && math.Abs(float64(y)-cy) < (float64(x)-cx-rx*0.8)*0.9
				if dx*dx+dy*dy < 1 || tail {
					shade := 0.7 + 0.3*(1-dy)/2
					for k := range 3 {
						c[k] = body[k]*shade + noise/2
					}
				}
				p := img.Pix[y*img.Stride+4*x:]
				p[0], p[1], p[2], p[3] = u8(c[0]), u8(c[1]), u8(c[2]), 255
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
			panic(err)
		}
		split := datasetpb.Split_SPLIT_TRAIN
		if (i/len(labels))%5 == 4 {
			split = datasetpb.Split_SPLIT_TEST
		}
		out = append(out, fakeImage{split: split, label: labels[li], content: buf.Bytes()})
	}
	return out
}

func u8(v float64) uint8 { return uint8(max(0, min(255, v))) }

// hsv converts a hue in [0, 1) (wrapping), saturation and value to RGB in
// [0, 255].
func hsv(h, s, v float64) [3]float64 {
	h = math.Mod(h+1, 1) * 6
	i, f := math.Floor(h), h-math.Floor(h)
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	var rgb [3]float64
	switch int(i) {
	case 0:
		rgb = [3]float64{v, t, p}
	case 1:
		rgb = [3]float64{q, v, p}
	case 2:
		rgb = [3]float64{p, v, t}
	case 3:
		rgb = [3]float64{p, q, v}
	case 4:
		rgb = [3]float64{t, p, v}
	default:
		rgb = [3]float64{v, p, q}
	}
	return [3]float64{rgb[0] * 255, rgb[1] * 255, rgb[2] * 255}
}

// BenchmarkHeadOnlyJob runs a head-only job of the original pipeline's
// size: ResNet-18 at 224x224 (torchvision's, as PyTorch exports it, with
// random weights; or the ONNX file named by SHOAL_BENCH_BASE_ONNX, input
// [N, 3, 224, 224] and 5 classes), 835 training photos, 20 epochs, Adam at
// 0.001, batch 16, on fishPhotos served by a fake Dataset service. It
// reports the wall time from StartTraining to the registered version of
// the first job (the backbone runs on all 1,306 images) and of a second
// one with another seed (its features come from the cache). Run it with
// -benchtime=1x.
func BenchmarkHeadOnlyJob(b *testing.B) {
	needsTraining(b)
	rt := onnxtest.Runtime(b)
	base, err := bench.ResNet18ONNX(5, 1)
	if err != nil {
		b.Fatal(err)
	}
	in := &registrypb.InputSpec{
		Channels: 3, Height: 224, Width: 224, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH,
		Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW,
		InputName: "images", OutputName: "probabilities", OutputIsProbabilities: true,
	}
	if path := os.Getenv("SHOAL_BENCH_BASE_ONNX"); path != "" {
		if base, err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
		info, err := rt.Inspect(base)
		if err != nil {
			b.Fatal(err)
		}
		in.InputName, in.OutputName, in.OutputIsProbabilities = info.Inputs[0].Name, info.Outputs[0].Name, false
	}
	start := time.Now()
	ds := &fakeDataset{name: "fish", images: fishPhotos(1)}
	b.Logf("generated %d photo-like JPEGs in %.1f s", len(ds.images), time.Since(start).Seconds())
	e := newEnv(b, dbtest.Config(b, db.SQLite), envOptions{dataset: ds})
	ref := e.registry.upload("resnet18", []string{"a", "b", "c", "d", "e"}, in, "resnet18", base)
	b.ResetTimer()
	for range b.N {
		for i, what := range []string{"first job (backbone on every image)", "second job (cached features)"} {
			start := time.Now()
			cpuStart, err := bench.SelfCPU(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			job, evs := followJob(b, e, e.start(b, &trainerpb.JobSpec{Dataset: "fish", Epochs: 20, BatchSize: 16, LearningRate: 1e-3,
				Optimizer: trainerpb.Optimizer_OPTIMIZER_ADAM, Seed: int64(i + 1), BaseVersion: ref,
				TrainLayers: trainerpb.TrainLayers_TRAIN_LAYERS_HEAD}))
			wall := time.Since(start).Seconds()
			cpuEnd, err := bench.SelfCPU(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			// The machine may be shared: the job's CPU time (this process's:
			// trainer, fake services and ONNX Runtime) says what an idle
			// 2-core machine would take, about half of it in wall time.
			cpu := (cpuEnd - cpuStart).Seconds()
			b.ReportMetric(wall, fmt.Sprintf("wall-s/job%d", i+1))
			b.ReportMetric(cpu, fmt.Sprintf("cpu-s/job%d", i+1))
			b.Logf("%s: %d epochs, test accuracy %.1f%%, %.1f s wall, %.1f CPU-s, load %s", what, len(job.GetEpochs()),
				job.GetTestMetrics().GetTestAccuracy()*100, wall, cpu, loadAverage())
			for _, ev := range evs {
				if l := ev.GetLog(); l != nil {
					b.Logf("  %s %s", ev.GetTime().AsTime().Sub(start.UTC()).Round(100*time.Millisecond), l.GetMessage())
				}
			}
		}
	}
}

// followJob collects a job's events to its end, however long it takes (a
// loaded machine), and returns the job, which must have succeeded.
func followJob(b *testing.B, e *env, j *trainerpb.Job) (*trainerpb.Job, []*trainerpb.WatchJobResponse) {
	b.Helper()
	stream, err := e.client.WatchJob(b.Context(), &trainerpb.WatchJobRequest{JobId: j.GetId()})
	if err != nil {
		b.Fatal(err)
	}
	var evs []*trainerpb.WatchJobResponse
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatalf("WatchJob() = %v", err)
		}
		evs = append(evs, ev)
	}
	got, err := e.client.GetJob(b.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
	if err != nil {
		b.Fatal(err)
	}
	if st := got.GetJob().GetState(); st != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		b.Fatalf("job ended %s (%s); want SUCCEEDED", st, got.GetJob().GetError())
	}
	return got.GetJob(), evs
}
