package ml

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/ml/mltest"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// floats reads little-endian float32s.
func floats(raw []byte) []float32 {
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// linear computes softmax(f·w + b) per row of features f, w [F, K]
// row-major: a head computed apart from ONNX Runtime and GoMLX.
func linear(features []float32, w, b []float32, f, k int) []float32 {
	n := len(features) / f
	out := make([]float32, n*k)
	for i := range n {
		for j := range k {
			s := float64(b[j])
			for c := range f {
				s += float64(features[i*f+c]) * float64(w[c*k+j])
			}
			out[i*k+j] = float32(s)
		}
	}
	softmaxRows(out, k)
	return out
}

// TestHeadOnly cuts ONNX classifiers Shoal did not build before their
// classification layer, runs the backbone in ONNX Runtime, trains a new
// head on the features and checks the exported model: the base graph with
// the new head, whose predictions in ONNX Runtime are the backbone's
// features times the head.
func TestHeadOnly(t *testing.T) {
	needsGoMLX(t)
	rt := ortLibrary(t)
	shape := InputShape{1, 16, 16}
	for _, tc := range []struct {
		name string
		base mltest.Classifier
		aug  Augmentation
	}{
		{"Gemm, probabilities", mltest.Classifier{Channels: 1, Size: 16, Classes: 5, Input: "input", Output: "output", Softmax: true, Seed: 1}, Augmentation{}},
		{"MatMul+Add, logits, NHWC", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "x", Output: "y", Head: "MatMul+Add", NHWC: true, Seed: 2}, Augmentation{}},
		{"MatMul without bias, batch fixed at 1", mltest.Classifier{Channels: 1, Size: 16, Classes: 4, Input: "x", Output: "y", Head: "MatMul", Softmax: true, FixedBatch: true, Seed: 3}, Augmentation{}},
		{"augmented", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Seed: 4}, Augmentation{VerticalFlip: true, ColorJitter: 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.base.Build()
			if err != nil {
				t.Fatal(err)
			}
			bb, err := NewBackbone(data, importSpec(tc.base))
			if err != nil {
				t.Fatalf("NewBackbone() = %v", err)
			}
			if want := 16 * 4 * 4; bb.Features != want {
				t.Errorf("Features = %d; want %d", bb.Features, want)
			}
			ex, err := bb.Extractor(rt, 8, onnxrt.SessionOptions{})
			if err != nil {
				t.Fatalf("Extractor() = %v", err)
			}
			defer ex.Close()
			train, val, test := stripes(96, shape, 1), stripes(30, shape, 2), stripes(21, shape, 9)
			var calls []int
			trainF, err := ex.Extract(context.Background(), train, nil, func(n int) { calls = append(calls, n) })
			if err != nil {
				t.Fatalf("Extract() = %v", err)
			}
			if len(calls) != 12 || calls[11] != 96 || trainF.Shape != bb.FeatureShape() || trainF.Len() != 96 {
				t.Errorf("Extract(96 images) reported %v and gave %d features of %s; want 12 batches to 96, %s", calls, trainF.Len(), trainF.Shape, bb.FeatureShape())
			}
			valF, err := ex.Extract(context.Background(), val, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			testF, err := ex.Extract(context.Background(), test, nil, nil)
			if err != nil {
				t.Fatal(err)
			}

			// The cut is where the head reads: the features times the
			// base's own head are the base model's output.
			inits, _ := initializers(t, data)
			w0, b0 := baseHead(t, tc.base, inits)
			baseOut, err := bb.RunONNX(rt, data, tc.base.Classes, 1, test.Images) // one at a time: a base may fix its batch at 1
			if err != nil {
				t.Fatalf("running the base model: %v", err)
			}
			if d, _ := CompareProbabilities(linear(testF.Images, w0, b0, bb.Features, tc.base.Classes), baseOut, tc.base.Classes); !d.Acceptable(1e-4) {
				t.Errorf("features × the base's head differ from the base model: %+v", d)
			}

			epochs := 0
			cfg := Config{NumClasses: 3, Epochs: 4, BatchSize: 8, LearningRate: 1e-2, Seed: 3, Backend: "go", Augment: tc.aug,
				OnEpoch: func(EpochMetrics) { epochs++ }}
			aug := &HeadAugmentation{Images: train, Extractor: ex, OnEpochFeatures: func(epoch, done, total int) {
				if done == total {
					calls = append(calls, epoch)
				}
			}}
			calls = nil
			res, err := TrainHead(context.Background(), cfg, trainF, valF, aug)
			if err != nil {
				t.Fatalf("TrainHead() = %v", err)
			}
			defer res.Model.Close()
			if acc := res.Epochs[len(res.Epochs)-1].ValAcc; acc < 0.8 || epochs != 4 {
				t.Errorf("after %d epochs: validation accuracy %.2f; want 4 epochs, >= 0.8", epochs, acc)
			}
			if wantPasses := 4 * b2i(tc.aug.Active()); len(calls) != wantPasses {
				t.Errorf("augmented passes over the training images = %v; want %d", calls, wantPasses)
			}

			onnxModel, err := bb.ExportHead(res.Model)
			if err != nil {
				t.Fatalf("ExportHead() = %v", err)
			}
			got, err := bb.RunONNX(rt, onnxModel, 3, 8, test.Images)
			if err != nil {
				t.Fatalf("running the exported model: %v", err)
			}
			gomlx, err := res.Model.Probabilities(testF.Images)
			if err != nil {
				t.Fatal(err)
			}
			w, b, err := res.Model.headWeights()
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string][]float32{"GoMLX's head": gomlx, "features × head": linear(testF.Images, w, b, bb.Features, 3)} {
				if d, _ := CompareProbabilities(want, got, 3); !d.Acceptable(1e-4) {
					t.Errorf("the exported model in ONNX Runtime differs from %s on the backbone's features: %+v", name, d)
				}
			}
			// Everything but the head is the base's, byte for byte.
			after, nodes := initializers(t, onnxModel)
			for _, n := range nodes {
				for _, in := range n.GetInput() {
					if inits[in] != nil && !isHead(n) && !bytes.Equal(inits[in], after[in]) {
						t.Errorf("%s input %s changed", n.GetOpType(), in)
					}
				}
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isHead(n interface{ GetOpType() string }) bool {
	switch n.GetOpType() {
	case "Gemm", "MatMul", "Add":
		return true
	}
	return false
}

// baseHead reads a test classifier's head as w [F, K] and b [K].
func baseHead(t *testing.T, c mltest.Classifier, inits map[string][]byte) (w, b []float32) {
	t.Helper()
	_, nodes := initializers(t, mustBuild(t, c))
	for _, n := range nodes {
		switch n.GetOpType() {
		case "Gemm": // W is [K, F]
			wt := floats(inits[n.GetInput()[1]])
			f := len(wt) / c.Classes
			w = make([]float32, len(wt))
			for k := range c.Classes {
				for i := range f {
					w[i*c.Classes+k] = wt[k*f+i]
				}
			}
			b = floats(inits[n.GetInput()[2]])
		case "MatMul":
			w = floats(inits[n.GetInput()[1]])
		case "Add":
			b = floats(inits[n.GetInput()[1]])
		}
	}
	if b == nil {
		b = make([]float32, c.Classes)
	}
	return w, b
}

func mustBuild(t *testing.T, c mltest.Classifier) []byte {
	t.Helper()
	data, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestNewBackboneRefuses(t *testing.T) {
	good := mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Softmax: true}
	sigmoid := good
	sigmoid.Softmax, sigmoid.Tail = false, "Sigmoid"
	for _, tc := range []struct {
		name string
		data []byte
		spec ImportSpec
		msg  string
	}{
		{"not ONNX", []byte("not a model"), importSpec(good), "not an ONNX model"},
		{"no recognisable head", mustBuild(t, sigmoid), importSpec(good), "no classification layer"},
		{"labels differ from the head", mustBuild(t, good), func() ImportSpec { s := importSpec(good); s.Classes = 2; return s }(), "2 labels"},
		{"other output name", mustBuild(t, good), func() ImportSpec { s := importSpec(good); s.OutputName = "probs"; return s }(), "output named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewBackbone(tc.data, tc.spec)
			if !errors.Is(err, ErrImport) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("NewBackbone() = %v; want ErrImport naming %q", err, tc.msg)
			}
		})
	}
}
