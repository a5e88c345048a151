package onnxtest_test

import (
	"math"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// TestClassifierRuns proves the hand-written ModelProto with ONNX Runtime:
// it loads, runs, and computes what the graph says.
func TestClassifierRuns(t *testing.T) {
	onnxtest.Runtime(t)
	tests := []struct {
		name    string
		model   onnxtest.Classifier
		inShape ort.Shape
	}{
		{"logits nchw batch 2", onnxtest.Classifier{Channels: 3, Height: 4, Width: 4, Classes: 5}, ort.NewShape(2, 3, 4, 4)},
		{"softmax nhwc", onnxtest.Classifier{Channels: 1, Height: 3, Width: 3, Classes: 4, NHWC: true, Softmax: true}, ort.NewShape(3, 3, 3, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ort.NewDynamicAdvancedSessionWithONNXData(tt.model.Bytes(), []string{"input"}, []string{"output"}, nil)
			if err != nil {
				t.Fatalf("NewDynamicAdvancedSessionWithONNXData() = %v", err)
			}
			defer s.Destroy()
			in, err := ort.NewEmptyTensor[float32](tt.inShape) // zeros: the output is the bias
			if err != nil {
				t.Fatal(err)
			}
			defer in.Destroy()
			out := []ort.Value{nil}
			if err := s.Run([]ort.Value{in}, out); err != nil {
				t.Fatalf("Run() = %v", err)
			}
			defer out[0].Destroy()
			got := out[0].(*ort.Tensor[float32])
			k := tt.model.Classes
			if want := ort.NewShape(tt.inShape[0], k); !got.GetShape().Equals(want) {
				t.Fatalf("output shape = %v; want %v", got.GetShape(), want)
			}
			data := got.GetData()
			for n := range tt.inShape[0] {
				row := data[n*k : (n+1)*k]
				var sum float64
				for c, v := range row {
					want := float64(c)
					if tt.model.Softmax {
						want = softmax(k, c)
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
