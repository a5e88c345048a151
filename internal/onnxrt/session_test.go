package onnxrt_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// logits is what onnxtest.Classifier computes for one flattened image.
func logits(c onnxtest.Classifier, x []float32) []float64 {
	k := int(c.Classes)
	out := make([]float64, k)
	for j := range k {
		out[j] = float64(j)
		for i, v := range x {
			out[j] += float64(v) * float64(float32((i*k+j+int(c.WeightsFromSeed))%7-3)/100)
		}
	}
	return out
}

func TestSessionRunsEachBatchSize(t *testing.T) {
	rt := onnxtest.Runtime(t)
	tests := []struct {
		name    string
		model   onnxtest.Classifier
		image   onnxrt.Image
		batches []int
		want    []int
	}{
		{"nchw dynamic batch", onnxtest.Classifier{Channels: 3, Height: 4, Width: 2, Classes: 5, WeightsFromSeed: 3},
			onnxrt.Image{Channels: 3, Height: 4, Width: 2}, []int{4, 1, 2, 2}, []int{1, 2, 4}},
		{"nhwc fixed batch", onnxtest.Classifier{Channels: 3, Height: 2, Width: 3, Classes: 4, NHWC: true, Batch: 2},
			onnxrt.Image{Channels: 3, Height: 2, Width: 3, NHWC: true}, []int{2}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			onnx := tt.model.Bytes()
			info, err := rt.Inspect(onnx)
			if err != nil {
				t.Fatal(err)
			}
			c, err := info.Classifier("", "", tt.image, 0)
			if err != nil {
				t.Fatalf("Classifier() = %v", err)
			}
			if c.Classes != int(tt.model.Classes) || c.Batch != int(tt.model.Batch) {
				t.Fatalf("Classifier() = %+v; want %d classes, batch %d", c, tt.model.Classes, tt.model.Batch)
			}
			s, err := rt.NewSession(onnx, c, tt.batches, onnxrt.SessionOptions{IntraOpThreads: 1})
			if err != nil {
				t.Fatalf("NewSession() = %v", err)
			}
			defer s.Close()
			if got := s.Batches(); !slices.Equal(got, tt.want) {
				t.Errorf("Batches() = %v; want %v", got, tt.want)
			}
			size := tt.image.Size()
			in := s.Input()
			if len(in) != tt.want[len(tt.want)-1]*size {
				t.Fatalf("len(Input()) = %d; want room for %d images of %d", len(in), tt.want[len(tt.want)-1], size)
			}
			for i := range in {
				in[i] = float32(i%11) / 10
			}
			// Every n up to the largest batch, padded where no size fits:
			// each row is its own image's scores.
			for n := 1; n <= tt.want[len(tt.want)-1]; n++ {
				got, err := s.Run(n)
				if err != nil {
					t.Fatalf("Run(%d) = %v", n, err)
				}
				if len(got) != n*c.Classes {
					t.Fatalf("Run(%d) = %d values; want %d", n, len(got), n*c.Classes)
				}
				for i := range n {
					want := logits(tt.model, in[i*size:(i+1)*size])
					for j, w := range want {
						if d := math.Abs(float64(got[i*c.Classes+j]) - w); d > 1e-5 {
							t.Errorf("Run(%d) image %d class %d = %v; want %v", n, i, j, got[i*c.Classes+j], w)
						}
					}
				}
			}
			largest := tt.want[len(tt.want)-1]
			for _, n := range []int{0, largest + 1} {
				if _, err := s.Run(n); err == nil {
					t.Errorf("Run(%d) = nil error; want one (the session runs 1 to %d)", n, largest)
				}
			}
			s.Close() // twice is fine
		})
	}
}

func TestNewSessionRefuses(t *testing.T) {
	rt := onnxtest.Runtime(t)
	model := onnxtest.Classifier{Channels: 1, Height: 2, Width: 2, Classes: 2, Batch: 1}
	c := onnxrt.Classifier{Input: "input", Output: "output", Image: onnxrt.Image{Channels: 1, Height: 2, Width: 2}, Classes: 2, Batch: 1}
	tests := []struct {
		name    string
		onnx    []byte
		c       onnxrt.Classifier
		batches []int
		invalid bool
	}{
		{"no batch size", model.Bytes(), c, nil, false},
		{"zero batch size", model.Bytes(), c, []int{0, 1}, false},
		{"other sizes than the fixed batch", model.Bytes(), c, []int{1, 2}, false},
		{"not a model", []byte("not ONNX"), c, []int{1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := rt.NewSession(tt.onnx, tt.c, tt.batches, onnxrt.SessionOptions{})
			if err == nil {
				s.Close()
				t.Fatalf("NewSession(%v) = nil error; want one", tt.batches)
			}
			if got := errors.Is(err, onnxrt.ErrInvalidModel); got != tt.invalid {
				t.Errorf("NewSession() = %v; errors.Is(ErrInvalidModel) = %v, want %v", err, got, tt.invalid)
			}
		})
	}
}

func TestClassifier(t *testing.T) {
	tensor := func(name string, shape ...int64) onnxrt.TensorInfo {
		return onnxrt.TensorInfo{Name: name, ElementType: "float32", Shape: shape, Tensor: true}
	}
	nchw := onnxrt.Image{Channels: 3, Height: 8, Width: 6}
	nhwc := onnxrt.Image{Channels: 3, Height: 8, Width: 6, NHWC: true}
	one := onnxrt.ModelInfo{Inputs: []onnxrt.TensorInfo{tensor("x", -1, 3, 8, 6)}, Outputs: []onnxrt.TensorInfo{tensor("y", -1, 5)}}
	tests := []struct {
		name          string
		info          onnxrt.ModelInfo
		input, output string
		image         onnxrt.Image
		labels        int
		want          onnxrt.Classifier
		wantErr       string
	}{
		{"the only input and output", one, "", "", nchw, 0,
			onnxrt.Classifier{Input: "x", Output: "y", Image: nchw, Classes: 5}, ""},
		{"named, with as many labels", one, "x", "y", nchw, 5,
			onnxrt.Classifier{Input: "x", Output: "y", Image: nchw, Classes: 5}, ""},
		{"nhwc with a fixed batch and dynamic spatial dimensions",
			onnxrt.ModelInfo{Inputs: []onnxrt.TensorInfo{tensor("x", 4, -1, -1, 3)}, Outputs: []onnxrt.TensorInfo{tensor("y", 4, -1)}},
			"", "", nhwc, 7, onnxrt.Classifier{Input: "x", Output: "y", Image: nhwc, Classes: 7, Batch: 4}, ""},
		{"two inputs, none named",
			onnxrt.ModelInfo{Inputs: []onnxrt.TensorInfo{tensor("a", -1, 3, 8, 6), tensor("b", -1, 3, 8, 6)}, Outputs: one.Outputs},
			"", "", nchw, 0, onnxrt.Classifier{}, "2 inputs"},
		{"no such output", one, "", "probs", nchw, 0, onnxrt.Classifier{}, `no output named "probs"`},
		{"layout disagrees", one, "", "", nhwc, 0, onnxrt.Classifier{}, "want [-1 8 6 3] (NHWC)"},
		{"labels disagree", one, "", "", nchw, 4, onnxrt.Classifier{}, "5 classes but there are 4 labels"},
		{"dynamic classes without labels",
			onnxrt.ModelInfo{Inputs: one.Inputs, Outputs: []onnxrt.TensorInfo{tensor("y", -1, -1)}},
			"", "", nchw, 0, onnxrt.Classifier{}, "dynamic class dimension"},
		{"integer input",
			onnxrt.ModelInfo{Inputs: []onnxrt.TensorInfo{{Name: "x", ElementType: "uint8", Shape: []int64{-1, 3, 8, 6}, Tensor: true}}, Outputs: one.Outputs},
			"", "", nchw, 0, onnxrt.Classifier{}, "want a float32 tensor of rank 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.info.Classifier(tt.input, tt.output, tt.image, tt.labels)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Classifier() = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Classifier() = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
