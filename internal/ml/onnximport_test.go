package ml

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"

	"github.com/shoalml/shoal/internal/ml/mltest"
)

// importSpec is how the test classifiers take their images.
func importSpec(c mltest.Classifier) ImportSpec {
	return ImportSpec{
		Shape: InputShape{Channels: c.Channels, Height: c.Size, Width: c.Size}, Mean: []float32{0.5}, Std: []float32{0.25},
		NHWC: c.NHWC, InputName: c.Input, OutputName: c.Output, Classes: c.Classes,
	}
}

// initializers maps an ONNX file's initialisers to their raw bytes.
func initializers(t *testing.T, data []byte) (map[string][]byte, []*onnxpb.NodeProto) {
	t.Helper()
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, init := range mp.GetGraph().GetInitializer() {
		raw := init.GetRawData()
		if raw == nil {
			for _, f := range init.GetFloatData() {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
			}
		}
		out[init.GetName()] = raw
	}
	return out, mp.GetGraph().GetNode()
}

// TestImportONNXFineTunes trains an ONNX classifier Shoal did not build,
// with its own head and with a new one, and checks that the exported file
// (its graph with the trained weights) reproduces GoMLX in ONNX Runtime.
func TestImportONNXFineTunes(t *testing.T) {
	needsGoMLX(t)
	rt := ortLibrary(t)
	lib, err := rt.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	shape := InputShape{1, 16, 16}
	for _, tc := range []struct {
		name    string
		base    mltest.Classifier
		classes int
		newHead bool
	}{
		{"same head, probabilities", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Softmax: true, Seed: 1}, 3, false},
		{"new head, logits", mltest.Classifier{Channels: 1, Size: 16, Classes: 5, Input: "x", Output: "scores", Seed: 2}, 3, true},
		{"NHWC", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "x", Output: "y", Softmax: true, NHWC: true, Seed: 5}, 3, false},
		{"batch fixed at 1", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input.1", Output: "output", Softmax: true, FixedBatch: true, Seed: 6}, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.base.Build()
			if err != nil {
				t.Fatal(err)
			}
			imp, err := ImportONNX(data, importSpec(tc.base), tc.classes, tc.newHead, 1)
			if err != nil {
				t.Fatalf("ImportONNX() = %v", err)
			}
			if err := CheckImport(imp); err != nil {
				t.Fatalf("CheckImport() = %v", err)
			}
			cfg := Config{NumClasses: tc.classes, Epochs: 3, BatchSize: 8, LearningRate: 1e-2, Seed: 3, Backend: "go", Import: imp}
			res, err := Train(context.Background(), cfg, stripes(96, shape, 1), stripes(30, shape, 2))
			if err != nil {
				t.Fatalf("Train() = %v", err)
			}
			defer res.Model.Close()
			if acc := res.Epochs[len(res.Epochs)-1].ValAcc; acc < 0.8 {
				t.Errorf("validation accuracy after %d epochs = %.2f; want >= 0.8", len(res.Epochs), acc)
			}
			onnxModel, err := res.Model.ExportONNX(lib)
			if err != nil {
				t.Fatalf("ExportONNX() = %v", err)
			}
			// The export is the base graph with new weights, except for
			// the batch-norm statistics, which stay frozen.
			before, nodes := initializers(t, data)
			after, _ := initializers(t, onnxModel)
			for _, n := range nodes {
				for i, in := range n.GetInput() {
					if before[in] == nil {
						continue
					}
					frozen := n.GetOpType() == "BatchNormalization" && i >= 3
					if changed := !bytes.Equal(before[in], after[in]); changed == frozen {
						t.Errorf("%s input %d (%s): changed = %v; want %v", n.GetOpType(), i, in, changed, !frozen)
					}
				}
			}
			test := stripes(21, shape, 9)
			want, err := res.Model.Probabilities(test.Images)
			if err != nil {
				t.Fatal(err)
			}
			got, err := imp.RunONNX(rt, onnxModel, 8, test.Images)
			if err != nil {
				t.Fatalf("RunONNX() = %v", err)
			}
			d, err := CompareProbabilities(want, got, tc.classes)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Acceptable(1e-4) {
				t.Errorf("ONNX Runtime differs from GoMLX: %+v", d)
			}
		})
	}
}

func TestImportONNXRefuses(t *testing.T) {
	needsGoMLX(t)
	good := mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Softmax: true}
	for _, tc := range []struct {
		name  string
		model mltest.Classifier
		raw   []byte
		msg   string
	}{
		{"not ONNX", good, []byte("not a model"), "not an ONNX model"},
		{"unknown head", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Tail: "Sigmoid"}, nil, "no classification layer"},
		{"unsupported op", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Activation: "LeakyRelu"}, nil, "LeakyRelu"},
		// Floor converts, but GoMLX defines no gradient for it: the check
		// names the node, found by bisecting the graph.
		{"op without a gradient", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Activation: "Floor"}, nil, `no gradient for the operator Floor (node "Floor_14")`},
		{"other input name", mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "pixels", Output: "output"}, nil, "input named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.raw
			if data == nil {
				var err error
				if data, err = tc.model.Build(); err != nil {
					t.Fatal(err)
				}
			}
			imp, err := ImportONNX(data, importSpec(good), 2, true, 1)
			if err == nil {
				err = CheckImport(imp)
			}
			if !errors.Is(err, ErrImport) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("ImportONNX+CheckImport() = %v; want ErrImport naming %q", err, tc.msg)
			}
		})
	}
}
