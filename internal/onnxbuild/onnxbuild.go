// Package onnxbuild writes ONNX graphs node by node, laid out as other
// frameworks' exporters write them, with random float32 initialisers: the
// benchmarks' ResNet-18 and the fine-tuning tests' foreign classifiers.
package onnxbuild

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// Graph collects nodes and initialisers; each node's single output is
// named after its op and a counter.
type Graph struct {
	rng   *rand.Rand
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
	n     int
}

// New returns an empty graph whose random initialisers come from the PCG
// source (seed, stream).
func New(seed, stream uint64) *Graph {
	return &Graph{rng: rand.New(rand.NewPCG(seed, stream))}
}

func (g *Graph) name(prefix string) string {
	g.n++
	return fmt.Sprintf("%s_%d", prefix, g.n)
}

// Node adds an op and returns the name of its output.
func (g *Graph) Node(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := g.name(op)
	g.nodes = append(g.nodes, &onnxpb.NodeProto{OpType: op, Name: out, Input: inputs, Output: []string{out}, Attribute: attrs})
	return out
}

// Last is the output of the last node added.
func (g *Graph) Last() string { return g.nodes[len(g.nodes)-1].Output[0] }

// Tensor adds a float32 initialiser of the given dimensions, filled in
// order by value, and returns its name.
func (g *Graph) Tensor(dims []int64, value func() float64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	raw := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(value())))
	}
	name := g.name("w")
	g.inits = append(g.inits, &onnxpb.TensorProto{Name: name, Dims: dims, DataType: int32(onnxpb.TensorProto_FLOAT), RawData: raw})
	return name
}

// Weights adds normal values with He's standard deviation sqrt(2/fanIn),
// or small ones for fanIn 0 (biases).
func (g *Graph) Weights(dims []int64, fanIn int) string {
	std := 0.01
	if fanIn > 0 {
		std = math.Sqrt(2 / float64(fanIn))
	}
	return g.Tensor(dims, func() float64 { return g.rng.NormFloat64() * std })
}

// Constant adds n values in [center, center+spread) (a batch norm's
// parameters).
func (g *Graph) Constant(n int64, center, spread float64) string {
	return g.Tensor([]int64{n}, func() float64 { return center + spread*g.rng.Float64() })
}

// Model renames the last node's output to output's name (the graph's
// output) and returns the serialised model (IR 8, opset 13).
func (g *Graph) Model(name, producer string, input, output *onnxpb.ValueInfoProto) ([]byte, error) {
	if len(g.nodes) == 0 {
		return nil, fmt.Errorf("onnxbuild: graph %q has no nodes", name)
	}
	g.nodes[len(g.nodes)-1].Output[0] = output.GetName()
	m := &onnxpb.ModelProto{IrVersion: 8, ProducerName: producer,
		Graph: &onnxpb.GraphProto{
			Name: name, Node: g.nodes, Initializer: g.inits,
			Input: []*onnxpb.ValueInfoProto{input}, Output: []*onnxpb.ValueInfoProto{output},
		},
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: 13}}}
	return proto.Marshal(m)
}

// Ints is an INTS attribute.
func Ints(name string, v ...int) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS}
	for _, x := range v {
		a.Ints = append(a.Ints, int64(x))
	}
	return a
}

// Int is an INT attribute.
func Int(name string, v int) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: int64(v)}
}

// Float is a FLOAT attribute.
func Float(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_FLOAT, F: v}
}

// ValueInfo describes a float32 tensor [N, dims...] with N symbolic, or 1
// when fixedBatch.
func ValueInfo(name string, fixedBatch bool, dims ...int64) *onnxpb.ValueInfoProto {
	batch := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
	if fixedBatch {
		batch.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1}
	}
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{batch}}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: shape}}}}
}
