package ml

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
)

func TestLearningRateAt(t *testing.T) {
	for _, tc := range []struct {
		s      Schedule
		epochs int
		want   []float64 // per epoch, for base 1.
	}{
		{ScheduleConstant, 4, []float64{1, 1, 1, 1}},
		{"", 3, []float64{1, 1, 1}},
		{ScheduleCosine, 4, []float64{1, (1 + math.Sqrt2/2) / 2, 0.5, (1 - math.Sqrt2/2) / 2}},
		{ScheduleStep, 4, []float64{1, 1, 0.1, 0.01}},
		{ScheduleStep, 8, []float64{1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01}},
		{ScheduleStep, 1, []float64{1}},
	} {
		var got []float64
		for e := 1; e <= tc.epochs; e++ {
			got = append(got, LearningRateAt(tc.s, 1, e, tc.epochs))
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("LearningRateAt(%q, epochs %d) = %v; want %v", tc.s, tc.epochs, got, tc.want)
				break
			}
		}
	}
}

// weightMatrices returns copies of the model's trainable weight matrices.
func weightMatrices(t *testing.T, m *Model) map[string][]float32 {
	t.Helper()
	s, err := takeSnapshot(m)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for path, tensor := range s {
		v := m.store.GetVariable(path)
		if !v.Trainable || !decays(v) {
			continue
		}
		flat, err := tensors.CopyFlatData[float32](tensor)
		if err != nil {
			t.Fatal(err)
		}
		out[path] = flat
	}
	return out
}

func distance(a, b map[string][]float32) float64 {
	var s float64
	for k, va := range a {
		for i, x := range va {
			d := float64(x - b[k][i])
			s += d * d
		}
	}
	return math.Sqrt(s)
}

func norm2(a map[string][]float32) float64 {
	var s float64
	for _, va := range a {
		for _, x := range va {
			s += float64(x) * float64(x)
		}
	}
	return math.Sqrt(s)
}

// TestScheduleDrivesTrainingAndSurvivesResume trains with the step schedule
// in two halves (stopped after epoch 2, then resumed from the checkpoint)
// and checks that every epoch reports its scheduled rate, that the
// optimizer uses it (the weights move ~100x less per epoch at 0.01x), and
// that the resumed run continues the schedule where it was.
func TestScheduleDrivesTrainingAndSurvivesResume(t *testing.T) {
	needsGoMLX(t)
	shape := InputShape{1, 12, 12}
	trainData, valData := stripes(96, shape, 1), stripes(30, shape, 2)
	const base = 1e-2
	for _, opt := range []Optimizer{OptimizerAdam, OptimizerSGD} {
		t.Run(string(opt), func(t *testing.T) {
			dir := t.TempDir()
			var rates []float64
			var moves []float64
			var prev map[string][]float32
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var m *Model
			cfg := Config{
				NumClasses: 3, Epochs: 4, BatchSize: 16, LearningRate: base, Optimizer: opt, Schedule: ScheduleStep,
				Seed: 3, Backend: "go", CheckpointDir: dir,
				OnEpoch: func(e EpochMetrics) {
					rates = append(rates, e.LearningRate)
					if e.Epoch == 2 {
						cancel()
					}
				},
				OnStep: func(p StepProgress) {
					if p.Step == p.StepsPerEpoch && m != nil {
						w := weightMatrices(t, m)
						if prev != nil {
							moves = append(moves, distance(w, prev))
						}
						prev = w
					}
				},
			}
			// First half, on a model we can look into.
			b, err := NewBackend("go")
			if err != nil {
				t.Fatal(err)
			}
			arch, _ := LookupArchitecture("")
			mean, std := ChannelStats(trainData)
			m, err = NewModel(b, arch, shape, 3, mean, std, cfg.Seed)
			if err != nil {
				t.Fatal(err)
			}
			m.ownsBackend = true
			defer m.Close()
			if _, err := fit(ctx, cfg, m, trainData, valData); !errors.Is(err, context.Canceled) {
				t.Fatalf("fit() stopped with %v; want context.Canceled after epoch 2", err)
			}
			// Second half: a new model resumed from the checkpoint.
			m2, err := NewModel(b, arch, shape, 3, mean, std, cfg.Seed)
			if err != nil {
				t.Fatal(err)
			}
			defer m2.store.Finalize()
			m = m2
			prev = nil
			res, err := fit(context.Background(), cfg, m2, trainData, valData)
			if err != nil {
				t.Fatalf("resumed fit() = %v", err)
			}
			if want := []float64{base, base, base * 0.1, base * 0.01}; !floatsNear(rates, want) {
				t.Errorf("rates reported per epoch = %v; want %v", rates, want)
			}
			var got []float64
			for _, e := range res.Epochs {
				got = append(got, e.LearningRate)
			}
			if want := []float64{base, base, base * 0.1, base * 0.01}; !floatsNear(got, want) {
				t.Errorf("Result.Epochs rates = %v; want %v", got, want)
			}
			t.Logf("rates %v; weight moves in epochs 2 and 4: %v", rates, moves)
			// Each half measures the move of its second epoch: 2 and 4.
			if len(moves) != 2 {
				t.Fatalf("measured %d weight moves; want 2", len(moves))
			}
			if !(moves[1] < 0.1*moves[0]) {
				t.Errorf("weights moved %.4g in epoch 2 (rate %g) and %.4g in epoch 4 (rate %g); want far less at the lower rate",
					moves[0], base, moves[1], base*0.01)
			}
			n := 0
			for v := range m2.store.IterVariables() {
				if strings.HasSuffix(v.Path(), "/learning_rate") {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d learning-rate variables in the store; want the 1 the optimizer reads", n)
			}
		})
	}
}

func floatsNear(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-6*math.Abs(b[i]) {
			return false
		}
	}
	return true
}

// TestOptimizersTrainAndDecay trains each optimizer with and without
// weight decay: all learn, and decay leaves smaller weight matrices.
func TestOptimizersTrainAndDecay(t *testing.T) {
	needsGoMLX(t)
	shape := InputShape{1, 12, 12}
	trainData, valData := stripes(96, shape, 1), stripes(30, shape, 2)
	for _, tc := range []struct {
		opt   Optimizer
		rate  float64
		decay float64
	}{
		{OptimizerAdam, 1e-2, 0.5},
		{OptimizerAdamW, 1e-2, 20},
		{OptimizerSGD, 5e-2, 0.5},
	} {
		t.Run(string(tc.opt), func(t *testing.T) {
			var norms [2]float64
			for i, decay := range []float64{0, tc.decay} {
				cfg := Config{NumClasses: 3, Epochs: 3, BatchSize: 16, LearningRate: tc.rate, Optimizer: tc.opt,
					WeightDecay: decay, Seed: 5, Backend: "go"}
				res, err := Train(context.Background(), cfg, trainData, valData)
				if err != nil {
					t.Fatalf("Train(decay %g) = %v", decay, err)
				}
				best := res.Epochs[res.BestEpoch-1].ValAcc
				if best < 0.6 {
					t.Errorf("decay %g: best validation accuracy %.2f; want >= 0.6 on separable stripes", decay, best)
				}
				norms[i] = norm2(weightMatrices(t, res.Model))
				res.Model.Close()
			}
			t.Logf("weight-matrix norms without and with decay %g: %v", tc.decay, norms)
			if !(norms[1] < 0.9*norms[0]) {
				t.Errorf("weight-matrix norm %.3f with decay %g, %.3f without; want clearly smaller with decay", norms[1], tc.decay, norms[0])
			}
		})
	}
}

func TestAugmentation(t *testing.T) {
	shape := InputShape{3, 16, 12}
	d := stripes(8, shape, 1)
	idx := []int{0, 1, 2, 3, 4, 5, 6, 7}
	images := func(aug Augmentation, epoch, step int) ([]float32, []int32) {
		var augment func([]float32)
		if aug.Active() {
			scratch := make([]float32, shape.Size())
			augment = func(x []float32) { aug.apply(x, shape, augmentRNG(9, epoch, step), scratch) }
		}
		b := makeBatch(d, idx, augment)
		x, err := tensors.CopyFlatData[float32](b.Inputs[0])
		if err != nil {
			t.Fatal(err)
		}
		l, err := tensors.CopyFlatData[int32](b.Labels[0])
		if err != nil {
			t.Fatal(err)
		}
		return x, l
	}
	want, _ := images(Augmentation{}, 1, 1)
	for _, aug := range []Augmentation{
		{HorizontalFlip: true}, {VerticalFlip: true}, {CropMinScale: 0.5}, {ColorJitter: 0.4},
		{HorizontalFlip: true, VerticalFlip: true, CropMinScale: 0.3, ColorJitter: 0.2},
	} {
		a1, _ := images(aug, 1, 1)
		a2, _ := images(aug, 1, 1)
		a3, _ := images(aug, 1, 2)
		if !slices.Equal(a1, a2) {
			t.Errorf("%+v: same seed, epoch and step gave different images", aug)
		}
		if slices.Equal(a1, want) {
			t.Errorf("%+v: no pixel changed in a batch of 8", aug)
		}
		if slices.Equal(a1, a3) {
			t.Errorf("%+v: another step gave the same images", aug)
		}
		for _, v := range a1 {
			if !(v >= 0 && v <= 1) {
				t.Errorf("%+v: pixel %v outside [0, 1]", aug, v)
				break
			}
		}
	}
	// Flips only reorder pixels: each image is itself or its mirror.
	flipped, labels := images(Augmentation{HorizontalFlip: true}, 2, 1)
	for i := range idx {
		img := flipped[i*shape.Size() : (i+1)*shape.Size()]
		orig := slices.Clone(d.Image(i))
		if slices.Equal(img, orig) {
			continue
		}
		flip(orig, shape, true)
		if !slices.Equal(img, orig) {
			t.Errorf("image %d is neither itself nor its mirror", i)
		}
	}
	for i, l := range labels {
		if l != d.Labels[i] {
			t.Errorf("label %d = %d after augmentation; want %d", i, l, d.Labels[i])
		}
	}
}

func TestAugmentationValidate(t *testing.T) {
	for _, tc := range []struct {
		a    Augmentation
		want string
	}{
		{Augmentation{CropMinScale: -0.1}, "crop min scale"},
		{Augmentation{CropMinScale: 1.5}, "crop min scale"},
		{Augmentation{CropMinScale: math.NaN()}, "crop min scale"},
		{Augmentation{ColorJitter: 1}, "colour jitter"},
		{Augmentation{ColorJitter: -0.5}, "colour jitter"},
		{Augmentation{CropMinScale: 1, ColorJitter: 0.99}, ""},
	} {
		err := tc.a.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v.Validate() = %v; want %q", tc.a, err, tc.want)
		}
	}
	if a, err := ParseAugmentation("hflip,crop=0.6,jitter=0.1"); err != nil || a != (Augmentation{HorizontalFlip: true, CropMinScale: 0.6, ColorJitter: 0.1}) {
		t.Errorf("ParseAugmentation = %+v, %v", a, err)
	}
	if _, err := ParseAugmentation("rotate"); err == nil {
		t.Error("ParseAugmentation(rotate) = nil error; want error")
	}
}

// TestEarlyStopping: separable stripes reach 100% validation accuracy
// within a few epochs, which nothing can beat, so the run stops patience
// epochs after its best.
func TestEarlyStopping(t *testing.T) {
	needsGoMLX(t)
	shape := InputShape{1, 12, 12}
	cfg := Config{NumClasses: 3, Epochs: 30, BatchSize: 16, LearningRate: 1e-2, Seed: 7, Backend: "go", EarlyStoppingPatience: 2}
	res, err := Train(context.Background(), cfg, stripes(96, shape, 1), stripes(30, shape, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Model.Close()
	t.Logf("stopped after %d epochs, best %d", len(res.Epochs), res.BestEpoch)
	if !res.StoppedEarly || len(res.Epochs) != res.BestEpoch+2 || len(res.Epochs) >= 30 {
		t.Errorf("StoppedEarly %v after %d epochs, best %d; want a stop 2 epochs after the best", res.StoppedEarly, len(res.Epochs), res.BestEpoch)
	}
}

// TestFineTuning starts runs at a rate too small to learn anything in one
// epoch: from trained weights they are as accurate as the base at once, a
// fresh model is not; with other labels the head is new.
func TestFineTuning(t *testing.T) {
	needsGoMLX(t)
	shape := InputShape{1, 12, 12}
	trainData, valData := stripes(96, shape, 1), stripes(30, shape, 2)
	baseRes, err := Train(context.Background(), Config{NumClasses: 3, Epochs: 4, BatchSize: 16, LearningRate: 1e-2, Seed: 7, Backend: "go"}, trainData, valData)
	if err != nil {
		t.Fatal(err)
	}
	w, err := baseRes.Model.Weights()
	baseAcc := baseRes.Epochs[baseRes.BestEpoch-1].ValAcc
	baseRes.Model.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := w.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if w, err = DecodeWeights(data); err != nil {
		t.Fatal(err)
	}
	for _, v := range w.Vars {
		if strings.Contains(v.Path, "Adam") || strings.Contains(v.Path, "optimizers") {
			t.Errorf("weights hold optimizer state %s", v.Path)
		}
	}
	firstEpoch := func(cfg Config, train, val *Data) (float64, error) {
		cfg.Epochs, cfg.BatchSize, cfg.LearningRate, cfg.Seed, cfg.Backend = 1, 16, 1e-7, 11, "go"
		res, err := Train(context.Background(), cfg, train, val)
		if err != nil {
			return 0, err
		}
		res.Model.Close()
		return res.Epochs[0].ValAcc, nil
	}
	fresh, err := firstEpoch(Config{NumClasses: 3}, trainData, valData)
	if err != nil {
		t.Fatal(err)
	}
	tuned, err := firstEpoch(Config{NumClasses: 3, Base: w}, trainData, valData)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first-epoch accuracy: fine-tuned %.2f, fresh %.2f; base %.2f", tuned, fresh, baseAcc)
	if !(tuned >= baseAcc-0.05 && tuned >= fresh+0.3) {
		t.Errorf("first-epoch accuracy from the base %.2f, fresh %.2f, base's own %.2f; want the base's, far above fresh", tuned, fresh, baseAcc)
	}

	// Two of the labels only: a new 2-class head on the base's features.
	two := func(d *Data) *Data {
		var idx []int
		for i, l := range d.Labels {
			if l < 2 {
				idx = append(idx, i)
			}
		}
		return d.Subset(idx)
	}
	if _, err := firstEpoch(Config{NumClasses: 2, Base: w}, two(trainData), two(valData)); err == nil || !strings.Contains(err.Error(), "new head") {
		t.Errorf("fine-tuning 3 classes into 2 without a new head = %v; want an error asking for one", err)
	}
	cfg := Config{NumClasses: 2, Base: w, NewHead: true, Epochs: 3, BatchSize: 16, LearningRate: 1e-2, Seed: 11, Backend: "go"}
	res, err := Train(context.Background(), cfg, two(trainData), two(valData))
	if err != nil {
		t.Fatalf("fine-tuning with a new head = %v", err)
	}
	if acc := res.Epochs[res.BestEpoch-1].ValAcc; acc < 0.8 {
		t.Errorf("new-head fine-tuning reached %.2f; want >= 0.8", acc)
	}
	res.Model.Close()

	for _, tc := range []struct {
		cfg   Config
		shape InputShape
		want  string
	}{
		{Config{NumClasses: 3, Base: w, Architecture: "small-cnn-wide"}, shape, "architecture small-cnn"},
		{Config{NumClasses: 3, Base: w}, InputShape{1, 16, 16}, "take 1x12x12 images"},
	} {
		if _, err := firstEpoch(tc.cfg, stripes(32, tc.shape, 1), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fine-tuning %s %s = %v; want error containing %q", tc.cfg.Architecture, tc.shape, err, tc.want)
		}
	}
}
