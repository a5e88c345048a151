package ml

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
)

// stripes makes n tiny images of 3 separable classes: a bright row band at
// the top, middle or bottom, plus noise.
func stripes(n int, shape InputShape, seed uint64) *Data {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := &Data{Shape: shape}
	band := shape.Height / 3
	for i := range n {
		label := i % 3
		for c := range shape.Channels {
			for y := range shape.Height {
				for x := range shape.Width {
					_, _ = c, x
					v := rng.Float32() * 0.3
					if y/band == label {
						v += 0.7
					}
					d.Images = append(d.Images, v)
				}
			}
		}
		d.Labels = append(d.Labels, int32(label))
	}
	return d
}

func TestTrainLearnsAndReports(t *testing.T) {
	needsGoMLX(t)
	for _, tc := range []struct {
		arch  string
		shape InputShape
	}{
		{"small-cnn", InputShape{1, 12, 12}},
		{"resnet-small", InputShape{3, 16, 16}},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			trainData := stripes(96, tc.shape, 1)
			valData := stripes(30, tc.shape, 2)
			var steps []StepProgress
			var epochs []EpochMetrics
			cfg := Config{
				Architecture: tc.arch, NumClasses: 3, Epochs: 3, BatchSize: 16, LearningRate: 1e-2, Seed: 7,
				Backend: "go", BatchNormImages: 64,
				OnStep:  func(p StepProgress) { steps = append(steps, p) },
				OnEpoch: func(m EpochMetrics) { epochs = append(epochs, m) },
			}
			res, err := Train(context.Background(), cfg, trainData, valData)
			if err != nil {
				t.Fatalf("Train() = %v", err)
			}
			defer res.Model.Close()
			if got, want := len(steps), 3*6; got != want {
				t.Errorf("OnStep called %d times; want %d", got, want)
			}
			if got := len(epochs); got != 3 {
				t.Fatalf("OnEpoch called %d times; want 3", got)
			}
			if first, last := steps[0].Loss, epochs[2].TrainLoss; !(last < first) {
				t.Errorf("train loss went from %.4f (first step) to %.4f (last epoch); want a decrease", first, last)
			}
			if epochs[0].Best != true || res.BestEpoch < 1 || !epochs[res.BestEpoch-1].Best {
				t.Errorf("best epoch %d inconsistent with epochs %+v", res.BestEpoch, epochs)
			}
			ev, err := Evaluate(res.Model, valData)
			if err != nil {
				t.Fatalf("Evaluate() = %v", err)
			}
			// The restored checkpoint must be the best epoch's weights.
			if got, want := ev.Accuracy, epochs[res.BestEpoch-1].ValAcc; math.Abs(got-want) > 1e-9 {
				t.Errorf("accuracy of restored model = %v; want best epoch's %v", got, want)
			}
			if ev.Accuracy < 0.6 {
				t.Errorf("validation accuracy %.2f on separable stripes; want >= 0.6", ev.Accuracy)
			}
			probs, err := res.Model.Probabilities(valData.Images[:2*tc.shape.Size()])
			if err != nil {
				t.Fatalf("Probabilities() = %v", err)
			}
			if len(probs) != 2*3 {
				t.Fatalf("Probabilities() returned %d values; want 6", len(probs))
			}
			for i := range 2 {
				var s float64
				for _, p := range probs[i*3 : i*3+3] {
					s += float64(p)
				}
				if math.Abs(s-1) > 1e-5 {
					t.Errorf("probabilities of image %d sum to %v; want 1", i, s)
				}
			}
		})
	}
}

func TestTrainCancels(t *testing.T) {
	needsGoMLX(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{
		NumClasses: 3, Epochs: 5, BatchSize: 8, LearningRate: 1e-3, Backend: "go",
		OnStep: func(p StepProgress) {
			if p.Step == 2 {
				cancel()
			}
		},
	}
	_, err := Train(ctx, cfg, stripes(48, InputShape{1, 12, 12}, 1), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Train() after cancel = %v; want context.Canceled", err)
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	needsGoMLX(t)
	good := Config{NumClasses: 3, Epochs: 1, BatchSize: 8, LearningRate: 1e-3, Backend: "go"}
	data := stripes(24, InputShape{1, 12, 12}, 1)
	for _, tc := range []struct {
		name   string
		mutate func(*Config, **Data)
		want   string
	}{
		{"unknown architecture", func(c *Config, _ **Data) { c.Architecture = "vgg" }, "unknown architecture"},
		{"zero epochs", func(c *Config, _ **Data) { c.Epochs = 0 }, "epochs must be positive"},
		{"negative batch", func(c *Config, _ **Data) { c.BatchSize = -1 }, "batch size must be positive"},
		{"zero learning rate", func(c *Config, _ **Data) { c.LearningRate = 0 }, "learning rate must be positive"},
		{"one class", func(c *Config, _ **Data) { c.NumClasses = 1 }, "at least 2 classes"},
		{"label out of range", func(c *Config, _ **Data) { c.NumClasses = 2 }, "has label 2"},
		{"too small for the architecture", func(_ *Config, d **Data) { *d = stripes(24, InputShape{1, 4, 4}, 1) }, "takes images from"},
		{"fewer images than a batch", func(c *Config, _ **Data) { c.BatchSize = 100 }, "fewer than one batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, d := good, data
			tc.mutate(&cfg, &d)
			_, err := Train(context.Background(), cfg, d, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Train() = %v; want error containing %q", err, tc.want)
			}
		})
	}
}

func TestEvaluateLogits(t *testing.T) {
	// 4 images, 2 classes: true 0,0,1,1; predicted 0,1,1,1.
	logits := []float32{2, 0, 0, 1, 0, 3, -1, 1}
	ev, err := EvaluateLogits(logits, []int32{0, 0, 1, 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Accuracy != 0.75 {
		t.Errorf("Accuracy = %v; want 0.75", ev.Accuracy)
	}
	wantConf := [][]int{{1, 1}, {0, 2}}
	for i := range wantConf {
		for j := range wantConf[i] {
			if ev.Confusion[i][j] != wantConf[i][j] {
				t.Errorf("Confusion = %v; want %v", ev.Confusion, wantConf)
			}
		}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	c0, c1 := ev.Classes[0], ev.Classes[1]
	if !near(c0.Precision, 1) || !near(c0.Recall, 0.5) || !near(c0.F1, 2.0/3) || c0.Support != 2 {
		t.Errorf("class 0 = %+v; want P=1 R=0.5 F1=0.667 support 2", c0)
	}
	if !near(c1.Precision, 2.0/3) || !near(c1.Recall, 1) || !near(c1.F1, 0.8) || c1.Support != 2 {
		t.Errorf("class 1 = %+v; want P=0.667 R=1 F1=0.8 support 2", c1)
	}
	// Cross-entropy by hand: -log softmax of the true logit.
	ce := func(t, o float64) float64 { return math.Log(math.Exp(t)+math.Exp(o)) - t }
	wantLoss := (ce(2, 0) + ce(0, 1) + ce(3, 0) + ce(1, -1)) / 4
	if !near(ev.Loss, wantLoss) {
		t.Errorf("Loss = %v; want %v", ev.Loss, wantLoss)
	}
	if _, err := EvaluateLogits(logits, []int32{0}, 2); err == nil {
		t.Error("EvaluateLogits with mismatched lengths = nil error; want error")
	}
}

// needsGoMLX skips tests that execute GoMLX graphs in -race builds unless
// SHOAL_ML_RACE=1: -race turns on checkptr, which aborts the process on the
// pure-Go backend's unsafe pointer arithmetic (gomlx/compute v0.1.6 matmul
// kernels), a false alarm that no test can recover from. To run them under
// the race detector: SHOAL_ML_RACE=1 go test -race -gcflags=all=-d=checkptr=0 ./internal/ml
func needsGoMLX(t testing.TB) {
	t.Helper()
	if raceBuild && os.Getenv("SHOAL_ML_RACE") != "1" {
		t.Skip("GoMLX's pure-Go backend trips checkptr under -race; set SHOAL_ML_RACE=1 and -gcflags=all=-d=checkptr=0")
	}
}

func TestBackendConfig(t *testing.T) {
	for _, tc := range []struct {
		name, lib, want string
		wantErr         bool
	}{
		{"go", "", DefaultBackend, false},
		{"onnx", "/x/libonnxruntime.so.1", fmt.Sprintf("onnx:/x/libonnxruntime.so.1,threads=%d", runtime.GOMAXPROCS(0)), false},
		{"onnx", "", "", true},
		{"xla", "", "", true},
	} {
		got, err := BackendConfig(tc.name, tc.lib)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("BackendConfig(%q, %q) = %q, %v; want %q, error %v", tc.name, tc.lib, got, err, tc.want, tc.wantErr)
		}
	}
}

// ONNX Runtime's backend takes the thread count BackendConfig gives it
// (third_party/compute-onnx adds the option) and refuses one that is not a
// count, rather than ignoring it.
func TestONNXBackendThreadsOption(t *testing.T) {
	config := onnxBackendConfig(t)
	if !strings.Contains(config, ",threads=") {
		t.Fatalf("BackendConfig = %q; want a threads option", config)
	}
	b, err := NewBackend(config)
	if err != nil {
		t.Fatalf("NewBackend(%q): %v", config, err)
	}
	b.Finalize()
	lib := strings.TrimPrefix(config[:strings.Index(config, ",")], "onnx:")
	for _, bad := range []string{"two", "-1"} {
		if _, err := NewBackend("onnx:" + lib + ",threads=" + bad); err == nil || !strings.Contains(err.Error(), "threads") {
			t.Errorf("threads=%s: error %v; want one naming the threads option", bad, err)
		}
	}
}

// The bare "go" config (tests, $GOMLX_BACKEND=go) gets the unlimited worker
// setting too: the backend's own default pool deadlocked under nested
// parallel convolutions (seen in TestImportResNet18).
func TestNewBackendGoIsUnlimited(t *testing.T) {
	needsGoMLX(t)
	for _, config := range []string{"go", DefaultBackend} {
		b, err := NewBackend(config)
		if err != nil {
			t.Fatal(err)
		}
		if d := b.Description(); !strings.Contains(d, "parallelism=-1") {
			t.Errorf("NewBackend(%q) = %q; want parallelism=-1", config, d)
		}
		b.Finalize()
	}
}
