package ml

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// opCounts counts an ONNX model's nodes by operator.
func opCounts(t *testing.T, model []byte) map[string]int {
	t.Helper()
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(model, &mp); err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range mp.GetGraph().GetNode() {
		ops[n.GetOpType()]++
	}
	return ops
}

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

// onnxBackendConfig is the GoMLX configuration of ONNX Runtime's backend
// (skipping the test where ONNX Runtime is not installed).
func onnxBackendConfig(t *testing.T) string {
	t.Helper()
	lib, err := ortLibrary(t).LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	config, err := BackendConfig(BackendONNX, lib)
	if err != nil {
		t.Fatal(err)
	}
	return config
}

// TestExportONNXReproducesGoMLX exports trained models once and runs the
// file in ONNX Runtime at several batch sizes: the batch dimension is
// symbolic, and every batch size reproduces GoMLX's probabilities.
func TestExportONNXReproducesGoMLX(t *testing.T) {
	needsGoMLX(t)
	rt := ortLibrary(t)
	lib, err := rt.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	ort, err := onnxrt.Load(rt)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arch  string
		shape InputShape
		train int
	}{
		{"small-cnn", InputShape{1, 28, 28}, 48},
		{"resnet-small", InputShape{3, 16, 16}, 48},
		{"resnet18", InputShape{3, 32, 32}, 16},
		// Odd and non-square sizes: pools drop the odd row or column,
		// strided convolutions round up, in the exported Conv and MaxPool
		// as in the im2col graph.
		{"small-cnn-wide", InputShape{3, 30, 22}, 24},
		{"resnet-small", InputShape{1, 17, 20}, 24},
		{"resnet18", InputShape{1, 33, 40}, 16},
	} {
		t.Run(fmt.Sprintf("%s/%dx%dx%d", tc.arch, tc.shape.Channels, tc.shape.Height, tc.shape.Width), func(t *testing.T) {
			// One epoch at a tiny learning rate: trained weights and
			// batch-norm averages, probabilities away from 0 and 1.
			cfg := Config{Architecture: tc.arch, NumClasses: 3, Epochs: 1, BatchSize: 8, LearningRate: 1e-5, Seed: 3, Backend: "go"}
			res, err := Train(context.Background(), cfg, stripes(tc.train, tc.shape, 1), nil)
			if err != nil {
				t.Fatalf("Train() = %v", err)
			}
			defer res.Model.Close()
			onnxModel, err := res.Model.ExportONNX(lib)
			if err != nil {
				t.Fatalf("ExportONNX() = %v", err)
			}
			// Convolutions and pools are ONNX Conv and MaxPool, not the
			// im2col slices the training graph is written with.
			ops := opCounts(t, onnxModel)
			if ops["Conv"] == 0 || ops["Slice"] > 0 || ops["Concat"] > 0 || ops["Einsum"] > 0 {
				t.Errorf("exported operators %v; want Conv and no Slice, Concat or Einsum", ops)
			}
			if wantPool := tc.arch != "resnet-small"; (ops["MaxPool"] > 0) != wantPool {
				t.Errorf("exported operators %v; want MaxPool: %v", ops, wantPool)
			}
			info, err := ort.Inspect(onnxModel)
			if err != nil {
				t.Fatalf("Inspect() = %v", err)
			}
			wantIn := []int64{-1, int64(tc.shape.Channels), int64(tc.shape.Height), int64(tc.shape.Width)}
			if in, ok := info.Input(ONNXInput); !ok || !slices.Equal(in.Shape, wantIn) {
				t.Errorf("input %q = %+v; want shape %v", ONNXInput, in, wantIn)
			}
			if out, ok := info.Output(ONNXOutput); !ok || !slices.Equal(out.Shape, []int64{-1, 3}) {
				t.Errorf("output %q = %+v; want shape [-1 3]", ONNXOutput, out)
			}
			// 41 images: each batch size below runs full batches and a
			// smaller remainder through the same file.
			test := stripes(41, tc.shape, 9)
			want, err := res.Model.Probabilities(test.Images)
			if err != nil {
				t.Fatalf("Probabilities() = %v", err)
			}
			// A saturated softmax (0s and 1s) would hide differences: the
			// low learning rate keeps the weights near their random start.
			if mid := unsaturated(want); mid < len(want)/2 {
				t.Fatalf("only %d of %d GoMLX probabilities lie in (0.001, 0.999); the comparison would prove little", mid, len(want))
			}
			for _, batch := range []int{1, 2, 7, 32} {
				got, err := RunONNX(rt, onnxModel, tc.shape, batch, 3, test.Images)
				if err != nil {
					t.Fatalf("RunONNX(batch %d) = %v", batch, err)
				}
				d, err := CompareProbabilities(want, got, 3)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("batch %d: ONNX Runtime vs GoMLX on %d images: %d top-1 differences, max |dp| = %.2g", batch, d.Images, d.Top1Differences, d.MaxAbsDiff)
				if !d.Acceptable(1e-5) {
					t.Errorf("batch %d: ONNX Runtime differs from GoMLX: %+v; want no top-1 differences and |dp| <= 1e-5", batch, d)
				}
			}
		})
	}
}

func unsaturated(p []float32) int {
	n := 0
	for _, v := range p {
		if v > 1e-3 && v < 0.999 {
			n++
		}
	}
	return n
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

// symbolicBatch refuses graphs it cannot make batch-dynamic rather than
// write a file that fails, or silently answers for 3 images, at other
// batch sizes.
func TestSymbolicBatchRefuses(t *testing.T) {
	shapeConst := func(name string, v ...int64) *onnxpb.TensorProto {
		return &onnxpb.TensorProto{Name: name, Dims: []int64{int64(len(v))}, DataType: int32(onnxpb.TensorProto_INT64), Int64Data: v}
	}
	tensor := func(name string, dims ...int64) *onnxpb.ValueInfoProto {
		var d []*onnxpb.TensorShapeProto_Dimension
		for _, v := range dims {
			d = append(d, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}})
		}
		return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: &onnxpb.TensorShapeProto{Dim: d}}}}}
	}
	model := func(nodes []*onnxpb.NodeProto, inits ...*onnxpb.TensorProto) []byte {
		b, err := proto.Marshal(&onnxpb.ModelProto{Graph: &onnxpb.GraphProto{Node: nodes, Initializer: inits,
			Input: []*onnxpb.ValueInfoProto{tensor("x", 3, 4)}, Output: []*onnxpb.ValueInfoProto{tensor("y", 3, 4)}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A reshape keeping the batch first: made dynamic.
	ok := model([]*onnxpb.NodeProto{{Name: "r", OpType: "Reshape", Input: []string{"x", "s"}, Output: []string{"y"}}}, shapeConst("s", 3, 4))
	out, err := symbolicBatch(ok, 3)
	if err != nil {
		t.Fatalf("symbolicBatch(reshape [3 4]) = %v", err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(out, &mp); err != nil {
		t.Fatal(err)
	}
	if p := mp.GetGraph().GetInput()[0].GetType().GetTensorType().GetShape().GetDim()[0].GetDimParam(); p != ONNXBatchDim {
		t.Errorf("input batch dimension = %q; want %q", p, ONNXBatchDim)
	}
	for _, init := range mp.GetGraph().GetInitializer() {
		if init.GetName() == mp.GetGraph().GetNode()[0].GetInput()[1] && !slices.Equal(init.GetInt64Data(), []int64{-1, 4}) {
			t.Errorf("reshape target = %v; want [-1 4]", init.GetInt64Data())
		}
	}

	for _, tc := range []struct {
		name  string
		model []byte
		want  string
	}{
		{"reshape moving the batch", model([]*onnxpb.NodeProto{{Name: "r", OpType: "Reshape", Input: []string{"x", "s"}, Output: []string{"y"}}}, shapeConst("s", 4, 3)),
			"does not start with the batch"},
		{"reshape to a computed shape", model([]*onnxpb.NodeProto{
			{Name: "sh", OpType: "Shape", Input: []string{"x"}, Output: []string{"s"}},
			{Name: "r", OpType: "Reshape", Input: []string{"x", "s"}, Output: []string{"y"}}}),
			"computed in the graph"},
		{"tile of the batch", model([]*onnxpb.NodeProto{{Name: "t", OpType: "Tile", Input: []string{"x", "s"}, Output: []string{"y"}}}, shapeConst("s", 1, 1)),
			"cannot be made batch-dynamic"},
	} {
		if _, err := symbolicBatch(tc.model, 3); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("symbolicBatch(%s) = %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
}
