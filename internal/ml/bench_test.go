package ml

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// fashionDir is where Debian's dataset-fashion-mnist package installs the
// IDX files; SHOAL_FASHION_MNIST overrides it.
func fashionMNIST(b *testing.B) (trainData, testData *Data) {
	dir := os.Getenv("SHOAL_FASHION_MNIST")
	if dir == "" {
		dir = "/usr/share/datasets/fashion-mnist"
	}
	trainData, err := LoadIDX(filepath.Join(dir, "train-images-idx3-ubyte.gz"), filepath.Join(dir, "train-labels-idx1-ubyte.gz"))
	if err != nil {
		b.Skipf("Fashion-MNIST not available (apt-get install dataset-fashion-mnist): %v", err)
	}
	testData, err = LoadIDX(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		b.Skipf("Fashion-MNIST test split not available: %v", err)
	}
	return trainData, testData
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkTrainThroughput measures steady-state training images/s of
// $SHOAL_BENCH_ARCH (default small-cnn) at batch $SHOAL_BENCH_BATCH (64)
// on 28x28 Fashion-MNIST, or on random images of $SHOAL_BENCH_SHAPE
// (CxHxW, e.g. 3x224x224: speed does not depend on the pixels). Each b.N
// iteration is one training step; the first (compiling) step runs before
// the timer starts.
func BenchmarkTrainThroughput(b *testing.B) {
	batch := envInt("SHOAL_BENCH_BATCH", 64)
	arch := os.Getenv("SHOAL_BENCH_ARCH")
	// One epoch over exactly b.N+1 batches: the first step compiles.
	steps := b.N + 1
	var sub *Data
	if v := os.Getenv("SHOAL_BENCH_SHAPE"); v != "" {
		var s InputShape
		if _, err := fmt.Sscanf(v, "%dx%dx%d", &s.Channels, &s.Height, &s.Width); err != nil {
			b.Fatalf("SHOAL_BENCH_SHAPE=%q: want CxHxW", v)
		}
		sub = randomImages(steps*batch, s, 10)
	} else {
		trainData, _ := fashionMNIST(b)
		idx := make([]int, steps*batch)
		for i := range idx {
			idx[i] = i % trainData.Len()
		}
		sub = trainData.Subset(idx)
	}
	var started time.Time
	var cpuStart time.Duration
	cfg := Config{
		Architecture: arch, NumClasses: 10, Epochs: 1, BatchSize: batch, LearningRate: 1e-3, Seed: 1,
		BatchNormImages: batch,
		OnStep: func(p StepProgress) {
			if p.Step == 1 {
				b.ResetTimer()
				started = time.Now()
				cpuStart = cpuTime()
			}
			if p.Step == steps {
				b.StopTimer()
			}
		},
	}
	res, err := Train(context.Background(), cfg, sub, nil)
	if err != nil {
		b.Fatal(err)
	}
	res.Model.Close()
	if b.N > 0 {
		b.ReportMetric(float64(b.N*batch)/time.Since(started).Seconds(), "images/s")
		// The machine is shared: images per CPU-second is the figure that
		// survives other load (x cores = the ceiling on an idle machine).
		b.ReportMetric(float64(b.N*batch)/(cpuTime()-cpuStart).Seconds(), "images/cpu-s")
	}
}

// BenchmarkFashionMNIST trains with Defaults() on all 60,000 training
// images, validating on the 10,000 test images after every epoch (the
// benchmark's point is test accuracy against time), and reports the final
// epoch's test accuracy and the wall time. $SHOAL_BENCH_* override the
// defaults for experiments: ARCH, EPOCHS, BATCH, LR, OPTIMIZER (adam, adamw,
// sgd), SCHEDULE (constant, cosine, step), WEIGHT_DECAY and AUGMENT
// ("none" or a comma-separated list of hflip, vflip, crop=S, jitter=J).
// Run it with -benchtime=1x.
func BenchmarkFashionMNIST(b *testing.B) {
	trainData, testData := fashionMNIST(b)
	cfg, err := benchConfig()
	if err != nil {
		b.Fatal(err)
	}
	cfg.NumClasses, cfg.Seed = 10, 1
	b.Logf("config: %s, %d epochs, batch %d, %s %g, schedule %s, weight decay %g, augmentation %+v",
		cfg.Architecture, cfg.Epochs, cfg.BatchSize, cfg.Optimizer, cfg.LearningRate, cfg.Schedule, cfg.WeightDecay, cfg.Augment)
	for range b.N {
		start, cpuStart := time.Now(), cpuTime()
		cfg.OnEpoch = func(m EpochMetrics) {
			b.Logf("epoch %d: %.0fs elapsed (%.0f CPU-s), rate %.2g, train loss %.4f acc %.4f, test loss %.4f acc %.4f, %.0f images/s, load %s",
				m.Epoch, time.Since(start).Seconds(), (cpuTime() - cpuStart).Seconds(), m.LearningRate,
				m.TrainLoss, m.TrainAcc, m.ValLoss, m.ValAcc, m.ImagesPerSecond, loadAverage())
		}
		res, err := Train(context.Background(), cfg, trainData, testData)
		if err != nil {
			b.Fatal(err)
		}
		last := res.Epochs[len(res.Epochs)-1]
		b.ReportMetric(last.ValAcc*100, "test-acc-%")
		b.ReportMetric(time.Since(start).Seconds(), "wall-s")
		cpu := (cpuTime() - cpuStart).Seconds()
		b.ReportMetric(float64(len(res.Epochs)*trainData.Len())/cpu, "train-images/cpu-s")
		checkExport(b, res.Model, testData)
		res.Model.Close()
	}
}

// benchConfig is Defaults() with the $SHOAL_BENCH_* overrides.
func benchConfig() (Config, error) {
	cfg := Defaults()
	if v := os.Getenv("SHOAL_BENCH_ARCH"); v != "" {
		cfg.Architecture = v
	}
	cfg.Epochs = envInt("SHOAL_BENCH_EPOCHS", cfg.Epochs)
	cfg.BatchSize = envInt("SHOAL_BENCH_BATCH", cfg.BatchSize)
	for name, dst := range map[string]*float64{"SHOAL_BENCH_LR": &cfg.LearningRate, "SHOAL_BENCH_WEIGHT_DECAY": &cfg.WeightDecay} {
		if v := os.Getenv(name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return cfg, fmt.Errorf("%s: %w", name, err)
			}
			*dst = f
		}
	}
	if v := os.Getenv("SHOAL_BENCH_OPTIMIZER"); v != "" {
		cfg.Optimizer = Optimizer(v)
	}
	if v := os.Getenv("SHOAL_BENCH_SCHEDULE"); v != "" {
		cfg.Schedule = Schedule(v)
	}
	if v := os.Getenv("SHOAL_BENCH_AUGMENT"); v != "" {
		a, err := ParseAugmentation(v)
		if err == nil {
			err = a.Validate()
		}
		if err != nil {
			return cfg, fmt.Errorf("SHOAL_BENCH_AUGMENT: %w", err)
		}
		cfg.Augment = a
	}
	return cfg, nil
}

// loadAverage is the 1-minute load average, for figures measured on a
// shared machine.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// checkExport exports m to ONNX and compares ONNX Runtime's probabilities
// with GoMLX's on every test image, as the Trainer does before registering.
func checkExport(b *testing.B, m *Model, testData *Data) {
	rt := onnxrt.Config{}
	lib, err := rt.LibraryPath()
	if err != nil {
		b.Logf("onnx export check skipped: %v", err)
		return
	}
	const batch = 100
	onnxModel, err := m.ExportONNX(lib)
	if err != nil {
		b.Fatal(err)
	}
	want, err := m.Probabilities(testData.Images)
	if err != nil {
		b.Fatal(err)
	}
	got, err := RunONNX(rt, onnxModel, m.Shape, batch, m.NumClasses, testData.Images)
	if err != nil {
		b.Fatal(err)
	}
	d, err := CompareProbabilities(want, got, m.NumClasses)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("onnx export: %d bytes; ONNX Runtime vs GoMLX on %d test images: %d top-1 differences, max |dp| %.2g",
		len(onnxModel), d.Images, d.Top1Differences, d.MaxAbsDiff)
	if !d.Acceptable(1e-4) {
		b.Errorf("exported model does not reproduce GoMLX: %+v", d)
	}
}

// randomImages makes n images of uniform noise with labels 0..k-1.
func randomImages(n int, s InputShape, k int) *Data {
	rng := rand.New(rand.NewPCG(1, 2))
	d := &Data{Shape: s, Images: make([]float32, n*s.Size()), Labels: make([]int32, n)}
	for i := range d.Images {
		d.Images[i] = rng.Float32()
	}
	for i := range d.Labels {
		d.Labels[i] = int32(i % k)
	}
	return d
}

// BenchmarkAugment measures host-side augmentation with every transform on
// (flips, crop 0.5, jitter 0.2) per image of $SHOAL_BENCH_SHAPE (1x28x28).
func BenchmarkAugment(b *testing.B) {
	s := InputShape{1, 28, 28}
	if v := os.Getenv("SHOAL_BENCH_SHAPE"); v != "" {
		if _, err := fmt.Sscanf(v, "%dx%dx%d", &s.Channels, &s.Height, &s.Width); err != nil {
			b.Fatalf("SHOAL_BENCH_SHAPE=%q: want CxHxW", v)
		}
	}
	const batch = 64
	d := randomImages(batch, s, 10)
	a := Augmentation{HorizontalFlip: true, VerticalFlip: true, CropMinScale: 0.5, ColorJitter: 0.2}
	scratch := make([]float32, s.Size())
	images := make([]float32, len(d.Images))
	b.ResetTimer()
	for i := range b.N {
		copy(images, d.Images)
		a.apply(images, s, augmentRNG(1, 1, i), scratch)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
