package bench

import (
	"math"
	"slices"
	"testing"

	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// TestResNet18ONNX loads the generated ResNet-18 in ONNX Runtime and runs
// it at two batch sizes: the batch dimension is symbolic, each row is a
// probability distribution, and an image's result does not depend on the
// batch it runs in.
func TestResNet18ONNX(t *testing.T) {
	rt := onnxtest.Runtime(t)
	model, err := ResNet18ONNX(5, 1)
	if err != nil {
		t.Fatal(err)
	}
	info, err := rt.Inspect(model)
	if err != nil {
		t.Fatalf("Inspect() = %v", err)
	}
	if in, ok := info.Input("images"); !ok || !slices.Equal(in.Shape, []int64{-1, 3, 224, 224}) {
		t.Fatalf("input = %+v; want images [-1 3 224 224]", in)
	}
	if out, ok := info.Output("probabilities"); !ok || !slices.Equal(out.Shape, []int64{-1, 5}) {
		t.Fatalf("output = %+v; want probabilities [-1 5]", out)
	}
	c := onnxrt.Classifier{Input: "images", Output: "probabilities", Image: onnxrt.Image{Channels: 3, Height: 224, Width: 224}, Classes: 5}
	sess, err := rt.NewSession(model, c, []int{1, 2}, onnxrt.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	images := sess.Input()
	for i := range images {
		images[i] = float32(i%251) / 250
	}
	run := func(n int) []float32 {
		out, err := sess.Run(n)
		if err != nil {
			t.Fatalf("Run(batch %d) = %v", n, err)
		}
		return slices.Clone(out)
	}
	one, two := run(1), run(2)
	for i := range 2 {
		sum := 0.0
		for _, p := range two[i*5 : (i+1)*5] {
			sum += float64(p)
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Errorf("image %d: probabilities %v sum to %v; want 1", i, two[i*5:(i+1)*5], sum)
		}
	}
	for k := range 5 {
		if math.Abs(float64(one[k]-two[k])) > 1e-5 {
			t.Errorf("image 0 alone = %v, in a batch of 2 = %v; want the same", one, two[:5])
		}
	}
}
