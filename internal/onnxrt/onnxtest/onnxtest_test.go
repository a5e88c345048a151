package onnxtest_test

import (
	"math"
	"testing"

	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// TestClassifierRuns proves the hand-written ModelProto with ONNX Runtime:
// it loads, runs, and computes what the graph says.
func TestClassifierRuns(t *testing.T) {
	rt := onnxtest.Runtime(t)
	tests := []struct {
		name  string
		model onnxtest.Classifier
		image onnxrt.Image
		batch int
	}{
		{"logits nchw batch 2", onnxtest.Classifier{Channels: 3, Height: 4, Width: 4, Classes: 5}, onnxrt.Image{Channels: 3, Height: 4, Width: 4}, 2},
		{"softmax nhwc", onnxtest.Classifier{Channels: 1, Height: 3, Width: 3, Classes: 4, NHWC: true, Softmax: true}, onnxrt.Image{Channels: 1, Height: 3, Width: 3, NHWC: true}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := int(tt.model.Classes)
			c := onnxrt.Classifier{Input: "input", Output: "output", Image: tt.image, Classes: k}
			s, err := rt.NewSession(tt.model.Bytes(), c, []int{tt.batch}, onnxrt.SessionOptions{})
			if err != nil {
				t.Fatalf("NewSession() = %v", err)
			}
			defer s.Close()
			data, err := s.Run(tt.batch) // zeros: the output is the bias
			if err != nil {
				t.Fatalf("Run() = %v", err)
			}
			for n := range tt.batch {
				row := data[n*k : (n+1)*k]
				var sum float64
				for c, v := range row {
					want := float64(c)
					if tt.model.Softmax {
						want = softmax(int64(k), c)
					}
					if math.Abs(float64(v)-want) > 1e-5 {
						t.Errorf("output[%d][%d] = %v; want %v", n, c, v, want)
					}
					sum += float64(v)
				}
				if tt.model.Softmax && math.Abs(sum-1) > 1e-5 {
					t.Errorf("sum(output[%d]) = %v; want 1", n, sum)
				}
			}
		})
	}
}

// softmax of the bias vector 0..k-1 at c.
func softmax(k int64, c int) float64 {
	var z float64
	for i := range k {
		z += math.Exp(float64(i))
	}
	return math.Exp(float64(c)) / z
}
