package ml

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/shoalml/shoal/internal/ml/mltest"
)

func TestRateAtWarmup(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []float64 // per epoch
	}{
		{"none", Config{LearningRate: 1, Epochs: 3, Schedule: ScheduleConstant}, []float64{1, 1, 1}},
		{"one epoch, then constant", Config{LearningRate: 1, Epochs: 3, WarmupEpochs: 1, Schedule: ScheduleConstant}, []float64{0.5, 1, 1}},
		{"three epochs, then cosine over the rest", Config{LearningRate: 2, Epochs: 5, WarmupEpochs: 3, Schedule: ScheduleCosine},
			[]float64{0.5, 1, 1.5, 2, 1}},
		{"then step over the rest", Config{LearningRate: 1, Epochs: 6, WarmupEpochs: 2, Schedule: ScheduleStep},
			[]float64{1.0 / 3, 2.0 / 3, 1, 1, 0.1, 0.01}},
	} {
		var got []float64
		for e := 1; e <= tc.cfg.Epochs; e++ {
			got = append(got, tc.cfg.RateAt(e))
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("%s: RateAt(1..%d) = %v; want %v", tc.name, tc.cfg.Epochs, got, tc.want)
				break
			}
		}
	}
}

func TestDiscriminativeSettingsValidate(t *testing.T) {
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.WarmupEpochs = 3 }, "warm-up epochs"},
		{func(c *Config) { c.WarmupEpochs = -1 }, "warm-up epochs"},
		{func(c *Config) { c.BackboneRateScale = 1.5 }, "learning-rate scale"},
		{func(c *Config) { c.BackboneRateScale = -0.1 }, "learning-rate scale"},
		{func(c *Config) { c.BackboneRateScale = math.NaN() }, "learning-rate scale"},
	} {
		cfg := Config{NumClasses: 3, Epochs: 3, BatchSize: 8, LearningRate: 1e-2}
		tc.change(&cfg)
		if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v; want an error about the %s", cfg, err, tc.want)
		}
	}
}

// TestBackboneRateScale: one SGD step (its first, so momentum plays no
// part) from the same imported weights moves every backbone weight scale
// times as far as without the scale, and the classification layer as far.
func TestBackboneRateScale(t *testing.T) {
	needsGoMLX(t)
	base := mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Seed: 1}
	data := mustBuild(t, base)
	shape := InputShape{1, 16, 16}
	train := stripes(8, shape, 1)
	moves := map[float64]map[string]float64{}
	var headWeights []string
	for _, scale := range []float64{0, 0.1} {
		imp, err := ImportONNX(data, importSpec(base), 3, false, 1)
		if err != nil {
			t.Fatal(err)
		}
		headWeights = []string{imp.headWeight, imp.headBias}
		cfg := Config{NumClasses: 3, Epochs: 1, BatchSize: 8, LearningRate: 1e-2, Optimizer: OptimizerSGD, Seed: 3, Backend: "go",
			Import: imp, BackboneRateScale: scale}
		res, err := Train(context.Background(), cfg, train, nil)
		if err != nil {
			t.Fatalf("Train(scale %g) = %v", scale, err)
		}
		out, err := res.Model.ExportONNX("")
		res.Model.Close()
		if err != nil {
			t.Fatal(err)
		}
		before, _ := initializers(t, data)
		after, _ := initializers(t, out)
		moves[scale] = map[string]float64{}
		for name, raw := range before {
			if len(raw)%4 != 0 || len(raw) < 16 {
				continue
			}
			a, b := floats(raw), floats(after[name])
			var d float64
			for i := range a {
				d += math.Abs(float64(b[i] - a[i]))
			}
			moves[scale][name] = d
		}
	}
	head, backbone := 0, 0
	for name, full := range moves[0] {
		if full == 0 {
			continue // batch-norm statistics and the like
		}
		ratio := moves[0.1][name] / full
		want := 0.1
		if slices.Contains(headWeights, name) {
			want, head = 1, head+1
		} else {
			backbone++
		}
		if math.Abs(ratio-want) > 0.01*want+1e-6 {
			t.Errorf("initialiser %s moved %.4g × as far at scale 0.1; want %g", name, ratio, want)
		}
	}
	if head == 0 || backbone == 0 {
		t.Errorf("compared %d head and %d backbone initialisers; want some of each: %v", head, backbone, moves[0])
	}
}

// TestFreezeBatchNorm: training a Shoal architecture with frozen batch
// norm leaves every running mean and variance as it was; without, they
// follow the data.
func TestFreezeBatchNorm(t *testing.T) {
	needsGoMLX(t)
	shape := InputShape{1, 12, 12}
	train := stripes(32, shape, 1)
	for _, frozen := range []bool{true, false} {
		// With a backbone rate too: a Shoal architecture's head is its own scope.
		cfg := Config{NumClasses: 3, Epochs: 1, BatchSize: 16, LearningRate: 1e-2, Seed: 3, Backend: "go", FreezeBatchNorm: frozen, BackboneRateScale: 0.5}
		res, err := Train(context.Background(), cfg, train, nil)
		if err != nil {
			t.Fatal(err)
		}
		stats, moved := 0, 0
		for v := range res.Model.store.IterVariables() {
			var initial float32
			if !strings.Contains(v.Path(), "/batch_normalization/") {
				continue
			}
			switch v.Name() {
			case "mean":
			case "variance":
				initial = 1
			default:
				continue
			}
			value, err := v.Value()
			if err != nil {
				t.Fatal(err)
			}
			flat, err := tensors.CopyFlatData[float32](value)
			if err != nil {
				t.Fatal(err)
			}
			stats++
			for _, x := range flat {
				if x != initial {
					moved++
					break
				}
			}
		}
		res.Model.Close()
		if stats == 0 {
			t.Fatalf("no batch-norm statistics in the model")
		}
		if frozen && moved != 0 || !frozen && moved == 0 {
			t.Errorf("FreezeBatchNorm = %v: %d of %d batch-norm statistics moved", frozen, moved, stats)
		}
	}
}
