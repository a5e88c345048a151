package ml

import (
	"slices"
	"testing"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
)

func TestTrainableGraph(t *testing.T) {
	f := &onnxpb.TensorProto{Name: "w", DataType: int32(onnxpb.TensorProto_FLOAT), Dims: []int64{2, 2}, FloatData: []float32{1, 2, 3, 4}}
	node := func(op string, in []string, out ...string) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: op, Name: op + "_" + out[0], Input: in, Output: out}
	}
	mp := &onnxpb.ModelProto{OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 13}}, Graph: &onnxpb.GraphProto{
		Input: []*onnxpb.ValueInfoProto{{Name: "x"}}, Output: []*onnxpb.ValueInfoProto{{Name: "y"}},
		Initializer: []*onnxpb.TensorProto{f},
		Node: []*onnxpb.NodeProto{
			node("Identity", []string{"w"}, "w2"), // a shared initialiser
			node("MatMul", []string{"x", "w"}, "a"),
			node("MatMul", []string{"a", "w2"}, "b"),
			node("Identity", []string{"b"}, "c"),
			node("HardSigmoid", []string{"c"}, "d"),
			node("Dropout", []string{"d"}, "e"),
			node("Identity", []string{"e"}, "y"), // the graph's output
		},
	}}
	changes := trainableGraph(mp, false)
	g := mp.GetGraph()
	var ops []string
	for _, n := range g.GetNode() {
		ops = append(ops, n.GetOpType())
	}
	want := []string{"MatMul", "MatMul", "Constant", "Constant", "Constant", "Constant", "Mul", "Add", "Clip"}
	if !slices.Equal(ops, want) {
		t.Errorf("trainableGraph() left %v; want %v", ops, want)
	}
	if n := g.GetNode()[1]; !slices.Equal(n.GetInput(), []string{"a", "w2"}) {
		t.Errorf("second MatMul reads %v; want a and its own copy w2", n.GetInput())
	}
	if n := g.GetNode()[6]; n.GetInput()[0] != "b" {
		t.Errorf("HardSigmoid's Mul reads %v; want b, the dropped Identity's input", n.GetInput())
	}
	if n := g.GetNode()[len(g.GetNode())-1]; n.GetOutput()[0] != "y" {
		t.Errorf("the last node writes %v; want the graph's output y", n.GetOutput())
	}
	if len(g.GetInitializer()) != 2 || g.GetInitializer()[1].GetName() != "w2" || !slices.Equal(g.GetInitializer()[1].GetFloatData(), f.GetFloatData()) {
		t.Errorf("initialisers %v; want w and its copy w2", g.GetInitializer())
	}
	if len(changes) != 3 {
		t.Errorf("changes = %q; want the copy, the dropped nodes and the HardSigmoid", changes)
	}
}
