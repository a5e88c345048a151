package ml

import (
	"context"
	"testing"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// ortLibrary finds ONNX Runtime the way the services do; the export tests
// skip without it (scripts/setup-onnxruntime.sh installs it).
func ortLibrary(t *testing.T) onnxrt.Config {
	t.Helper()
	cfg := onnxrt.Config{}
	if _, err := cfg.LibraryPath(); err != nil {
		t.Skipf("ONNX Runtime not installed (scripts/setup-onnxruntime.sh): %v", err)
	}
	return cfg
}

func TestExportONNXReproducesGoMLX(t *testing.T) {
	needsGoMLX(t)
	rt := ortLibrary(t)
	lib, err := rt.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arch  string
		shape InputShape
	}{
		{"small-cnn", InputShape{1, 12, 12}},
		{"resnet-small", InputShape{3, 16, 16}},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			cfg := Config{Architecture: tc.arch, NumClasses: 3, Epochs: 1, BatchSize: 16, LearningRate: 1e-2, Seed: 3, Backend: "go"}
			res, err := Train(context.Background(), cfg, stripes(48, tc.shape, 1), nil)
			if err != nil {
				t.Fatalf("Train() = %v", err)
			}
			defer res.Model.Close()
			const batch = 8
			onnxModel, err := res.Model.ExportONNX(lib, batch)
			if err != nil {
				t.Fatalf("ExportONNX() = %v", err)
			}
			test := stripes(20, tc.shape, 9) // 20 images: 2 full batches and a padded one.
			want, err := res.Model.Probabilities(test.Images)
			if err != nil {
				t.Fatalf("Probabilities() = %v", err)
			}
			got, err := RunONNX(rt, onnxModel, tc.shape, batch, 3, test.Images)
			if err != nil {
				t.Fatalf("RunONNX() = %v", err)
			}
			d, err := CompareProbabilities(want, got, 3)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ONNX Runtime vs GoMLX on %d images: %d top-1 differences, max |dp| = %.2g", d.Images, d.Top1Differences, d.MaxAbsDiff)
			if !d.Acceptable(1e-4) {
				t.Errorf("ONNX Runtime differs from GoMLX: %+v; want no top-1 differences and |dp| <= 1e-4", d)
			}
		})
	}
}

func TestCompareProbabilities(t *testing.T) {
	want := []float32{0.7, 0.3, 0.4, 0.6}
	for _, tc := range []struct {
		name     string
		got      []float32
		top1     int
		accepted bool
	}{
		{"identical", []float32{0.7, 0.3, 0.4, 0.6}, 0, true},
		{"within tolerance", []float32{0.70005, 0.29995, 0.4, 0.6}, 0, true},
		{"too far", []float32{0.7, 0.3, 0.41, 0.59}, 0, false},
		{"top-1 flipped", []float32{0.7, 0.3, 0.6, 0.4}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := CompareProbabilities(want, tc.got, 2)
			if err != nil {
				t.Fatal(err)
			}
			if d.Top1Differences != tc.top1 || d.Acceptable(1e-4) != tc.accepted {
				t.Errorf("CompareProbabilities() = %+v, acceptable %v; want %d top-1 differences, acceptable %v",
					d, d.Acceptable(1e-4), tc.top1, tc.accepted)
			}
		})
	}
}
