package ml

import (
	"math"
	"slices"
	"testing"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
)

func ints(dims []int64, v ...int64) intTensor { return intTensor{dims: dims, v: v} }

func TestEvalInt(t *testing.T) {
	node := func(op string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: op, Input: []string{"a", "b", "c", "d", "e"}, Output: []string{"y"}, Attribute: attrs}
	}
	intAttr := func(name string, v int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
	}
	intsAttr := func(name string, v ...int64) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS, Ints: v}
	}
	m := int64(math.MaxInt64)
	for _, tc := range []struct {
		name string
		n    *onnxpb.NodeProto
		in   []intTensor
		want intTensor
	}{
		// F.pad(x, (1, 1, 2, 2)) as torch.onnx.export writes it: the pads
		// in ONNX order come from reversing [2]-pairs with a Slice of step -1.
		{"Slice reversing", node("Slice"), []intTensor{ints([]int64{4, 2}, 0, 0, 0, 0, 2, 2, 1, 1), ints([]int64{1}, -1), ints([]int64{1}, -m), ints([]int64{1}, 0), ints([]int64{1}, -1)},
			ints([]int64{4, 2}, 1, 1, 2, 2, 0, 0, 0, 0)},
		{"Slice with clamped ends", node("Slice"), []intTensor{ints([]int64{5}, 10, 11, 12, 13, 14), ints([]int64{1}, 1), ints([]int64{1}, m)},
			ints([]int64{4}, 11, 12, 13, 14)},
		{"Slice stepping by 2 on axis 1", node("Slice"), []intTensor{ints([]int64{2, 4}, 0, 1, 2, 3, 4, 5, 6, 7), ints([]int64{1}, 0), ints([]int64{1}, 4), ints([]int64{1}, 1), ints([]int64{1}, 2)},
			ints([]int64{2, 2}, 0, 2, 4, 6)},
		{"Transpose", node("Transpose", intsAttr("perm", 1, 0)), []intTensor{ints([]int64{2, 3}, 0, 1, 2, 3, 4, 5)},
			ints([]int64{3, 2}, 0, 3, 1, 4, 2, 5)},
		{"Reshape with 0 and -1", node("Reshape"), []intTensor{ints([]int64{2, 3}, 0, 1, 2, 3, 4, 5), ints([]int64{2}, 0, -1)},
			ints([]int64{2, 3}, 0, 1, 2, 3, 4, 5)},
		{"Concat axis 1", node("Concat", intAttr("axis", 1)), []intTensor{ints([]int64{2, 1}, 1, 2), ints([]int64{2, 2}, 3, 4, 5, 6)},
			ints([]int64{2, 3}, 1, 3, 4, 2, 5, 6)},
		{"Gather a scalar index", node("Gather"), []intTensor{ints([]int64{4}, 8, 3, 32, 32), ints(nil, -4)},
			ints(nil, 8)},
		{"Unsqueeze (opset 13)", node("Unsqueeze"), []intTensor{ints(nil, 8), ints([]int64{1}, 0)}, ints([]int64{1}, 8)},
		{"Squeeze", node("Squeeze", intsAttr("axes", 0)), []intTensor{ints([]int64{1, 2}, 5, 6)}, ints([]int64{2}, 5, 6)},
		{"ConstantOfShape", node("ConstantOfShape", &onnxpb.AttributeProto{Name: "value", Type: onnxpb.AttributeProto_TENSOR,
			T: &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_INT64), Dims: []int64{1}, Int64Data: []int64{0}}}),
			[]intTensor{ints([]int64{1}, 3)}, ints([]int64{3}, 0, 0, 0)},
		{"Cast to int64", node("Cast", intAttr("to", int64(onnxpb.TensorProto_INT64))), []intTensor{ints([]int64{2}, 1, 2)}, ints([]int64{2}, 1, 2)},
		{"Mul by a scalar", node("Mul"), []intTensor{ints([]int64{2}, 3, 4), ints(nil, 2)}, ints([]int64{2}, 6, 8)},
	} {
		got, ok := evalInt(tc.n, tc.in, 13)
		if !ok || !slices.Equal(got.dims, tc.want.dims) || !slices.Equal(got.v, tc.want.v) {
			t.Errorf("%s: evalInt() = %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}

	// What it does not know is left to the importer.
	for _, tc := range []struct {
		name string
		n    *onnxpb.NodeProto
		in   []intTensor
	}{
		{"Cast to float", node("Cast", intAttr("to", int64(onnxpb.TensorProto_FLOAT))), []intTensor{ints([]int64{1}, 1)}},
		{"ConstantOfShape of the default float zero", node("ConstantOfShape"), []intTensor{ints([]int64{1}, 3)}},
		{"Gather out of range", node("Gather"), []intTensor{ints([]int64{2}, 1, 2), ints(nil, 5)}},
		{"Reshape to a wrong size", node("Reshape"), []intTensor{ints([]int64{4}, 1, 2, 3, 4), ints([]int64{1}, 3)}},
		{"Div", node("Div"), []intTensor{ints(nil, 4), ints(nil, 2)}},
	} {
		if got, ok := evalInt(tc.n, tc.in, 13); ok {
			t.Errorf("%s: evalInt() = %v; want it left alone", tc.name, got)
		}
	}
}
