//go:build !race

package ml_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/bench"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// TestImportResNet18 imports ResNet-18 as PyTorch exports it (batch norms
// folded into the convolutions, Gemm + Softmax head), gives it a new head,
// trains it for a step on two images and writes it back; ONNX Runtime reproduces GoMLX.
func TestImportResNet18(t *testing.T) {
	if testing.Short() {
		t.Skip("trains ResNet-18 at 224x224 (about 15 s on 2 cores)")
	}
	rt := onnxrt.Config{}
	lib, err := rt.LibraryPath()
	if err != nil {
		t.Skipf("ONNX Runtime not installed: %v", err)
	}
	data, err := bench.ResNet18ONNX(10, 1)
	if err != nil {
		t.Fatal(err)
	}
	spec := ml.ImportSpec{Shape: ml.InputShape{Channels: 3, Height: 224, Width: 224}, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225},
		InputName: "images", OutputName: "probabilities", Classes: 10}
	imp, err := ml.ImportONNX(data, spec, 3, true, 1)
	if err != nil {
		t.Fatalf("ImportONNX() = %v", err)
	}
	t.Logf("head: %s", imp.Head)
	start := time.Now()
	if err := ml.CheckImport(imp); err != nil {
		t.Fatalf("CheckImport() = %v", err)
	}
	t.Logf("CheckImport: %v", time.Since(start))
	d := &ml.Data{Shape: spec.Shape}
	for i := range 2 {
		img := make([]float32, spec.Shape.Size())
		for j := range img {
			img[j] = float32((i*7+j)%255) / 255
		}
		d.Images = append(d.Images, img...)
		d.Labels = append(d.Labels, int32(i%3))
	}
	start = time.Now()
	res, err := ml.Train(context.Background(), ml.Config{NumClasses: 3, Epochs: 1, BatchSize: 2, LearningRate: 1e-4, Seed: 1, Backend: "go", Import: imp}, d, nil)
	if err != nil {
		t.Fatalf("Train() = %v", err)
	}
	defer res.Model.Close()
	t.Logf("one training step of 2 images, compilation included: %v", time.Since(start))
	out, err := res.Model.ExportONNX(lib)
	if err != nil {
		t.Fatalf("ExportONNX() = %v", err)
	}
	want, err := res.Model.Probabilities(d.Images)
	if err != nil {
		t.Fatal(err)
	}
	got, err := imp.RunONNX(rt, out, 2, d.Images)
	if err != nil {
		t.Fatalf("RunONNX() = %v", err)
	}
	diff, err := ml.CompareProbabilities(want, got, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ONNX Runtime vs GoMLX: %+v", diff)
	if !diff.Acceptable(1e-4) {
		t.Errorf("ONNX Runtime differs from GoMLX: %+v", diff)
	}
}
