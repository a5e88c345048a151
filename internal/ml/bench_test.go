package ml

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
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
// $SHOAL_BENCH_ARCH (default small-cnn) on 28x28 Fashion-MNIST at batch
// $SHOAL_BENCH_BATCH (64). Each b.N iteration is one training step; the
// first (compiling) step runs before the timer starts.
func BenchmarkTrainThroughput(b *testing.B) {
	trainData, _ := fashionMNIST(b)
	batch := envInt("SHOAL_BENCH_BATCH", 64)
	arch := os.Getenv("SHOAL_BENCH_ARCH")
	// One epoch over exactly b.N+1 batches: the first step compiles.
	steps := b.N + 1
	idx := make([]int, steps*batch)
	for i := range idx {
		idx[i] = i % trainData.Len()
	}
	sub := trainData.Subset(idx)
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

// BenchmarkFashionMNIST trains the default architecture with default-like
// settings on all 60,000 training images for $SHOAL_BENCH_EPOCHS (default 3)
// epochs (validating on the 10,000 test images, as the benchmark's point is
// accuracy against time) and reports test accuracy and wall time. Run it
// with -benchtime=1x.
func BenchmarkFashionMNIST(b *testing.B) {
	trainData, testData := fashionMNIST(b)
	epochs := envInt("SHOAL_BENCH_EPOCHS", 3)
	for range b.N {
		start, cpuStart := time.Now(), cpuTime()
		cfg := Config{
			Architecture: os.Getenv("SHOAL_BENCH_ARCH"), NumClasses: 10, Epochs: epochs,
			BatchSize: envInt("SHOAL_BENCH_BATCH", 64), LearningRate: 1e-3, Seed: 1,
			OnEpoch: func(m EpochMetrics) {
				b.Logf("epoch %d: %.0fs elapsed (%.0f CPU-s), train loss %.4f acc %.4f, test loss %.4f acc %.4f, %.0f images/s",
					m.Epoch, time.Since(start).Seconds(), (cpuTime() - cpuStart).Seconds(),
					m.TrainLoss, m.TrainAcc, m.ValLoss, m.ValAcc, m.ImagesPerSecond)
			},
		}
		res, err := Train(context.Background(), cfg, trainData, testData)
		if err != nil {
			b.Fatal(err)
		}
		ev, err := Evaluate(res.Model, testData)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(ev.Accuracy*100, "test-acc-%")
		b.ReportMetric(time.Since(start).Seconds(), "wall-s")
		checkExport(b, res.Model, testData)
		res.Model.Close()
	}
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

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
