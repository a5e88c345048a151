// Package mltest builds small ONNX classifiers the way other frameworks
// export them, for tests of fine-tuning models Shoal did not train.
package mltest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// Classifier describes a small CNN as PyTorch's ONNX export writes one in
// eval mode: Conv -> BatchNormalization -> Relu -> MaxPool -> Conv -> Relu
// -> MaxPool -> Flatten -> Gemm (transB=1) [-> Softmax], input
// [N, C, H, W] and output [N, Classes] with N symbolic. Weights are random
// (He-initialised from Seed).
type Classifier struct {
	Channels, Size, Classes int
	Input, Output           string
	// Softmax ends the graph with a Softmax (probabilities), else logits.
	Softmax bool
	// Tail, if set, is an extra element-wise op after the Gemm (and before
	// the Softmax), such as "Sigmoid": a head fine-tuning cannot recognise.
	Tail string
	// Activation replaces the second Relu (e.g. "LeakyRelu", an op ONNX
	// Runtime runs but the importer does not convert).
	Activation string
	// NHWC makes the input [N, H, W, C], transposed to NCHW in the graph
	// (as TensorFlow-born models are laid out).
	NHWC bool
	// FixedBatch declares a batch dimension of 1 rather than a symbolic one
	// (PyTorch's export without dynamic axes).
	FixedBatch bool
	Seed       uint64
}

// Build returns the serialised ONNX model.
func (c Classifier) Build() ([]byte, error) {
	if c.Classes < 2 || c.Size < 4 || c.Size%4 != 0 || (c.Channels != 1 && c.Channels != 3) {
		return nil, fmt.Errorf("mltest: classifier %+v is not buildable", c)
	}
	b := &builder{rng: rand.New(rand.NewPCG(c.Seed, 7))}
	input := valueInfo(c.Input, c.FixedBatch, int64(c.Channels), int64(c.Size), int64(c.Size))
	x := c.Input
	if c.NHWC {
		input = valueInfo(c.Input, c.FixedBatch, int64(c.Size), int64(c.Size), int64(c.Channels))
		x = b.node("Transpose", []string{x}, ints("perm", 0, 3, 1, 2))
	}
	x = b.node("Conv", []string{x, b.weights([]int64{8, int64(c.Channels), 3, 3}, c.Channels*9), b.weights([]int64{8}, 0)},
		ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1))
	x = b.node("BatchNormalization", []string{x, b.constant(8, 1, 0.1), b.constant(8, 0, 0.05), b.constant(8, 0, 0.1), b.constant(8, 1, 0.2)},
		&onnxpb.AttributeProto{Name: "epsilon", Type: onnxpb.AttributeProto_FLOAT, F: 1e-5})
	x = b.node("Relu", []string{x})
	x = b.node("MaxPool", []string{x}, ints("kernel_shape", 2, 2), ints("strides", 2, 2))
	x = b.node("Conv", []string{x, b.weights([]int64{16, 8, 3, 3}, 72), b.weights([]int64{16}, 0)},
		ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1))
	act := c.Activation
	if act == "" {
		act = "Relu"
	}
	x = b.node(act, []string{x})
	x = b.node("MaxPool", []string{x}, ints("kernel_shape", 2, 2), ints("strides", 2, 2))
	x = b.node("Flatten", []string{x}, &onnxpb.AttributeProto{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 1})
	features := 16 * (c.Size / 4) * (c.Size / 4)
	x = b.node("Gemm", []string{x, b.weights([]int64{int64(c.Classes), int64(features)}, features), b.weights([]int64{int64(c.Classes)}, 0)},
		&onnxpb.AttributeProto{Name: "transB", Type: onnxpb.AttributeProto_INT, I: 1})
	if c.Tail != "" {
		b.node(c.Tail, []string{x})
	}
	if c.Softmax {
		b.node("Softmax", []string{b.last()}, &onnxpb.AttributeProto{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 1})
	}
	b.nodes[len(b.nodes)-1].Output[0] = c.Output
	g := &onnxpb.GraphProto{
		Name: "classifier", Node: b.nodes, Initializer: b.inits,
		Input:  []*onnxpb.ValueInfoProto{input},
		Output: []*onnxpb.ValueInfoProto{valueInfo(c.Output, c.FixedBatch, int64(c.Classes))},
	}
	m := &onnxpb.ModelProto{IrVersion: 8, ProducerName: "pytorch", Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: 13}}}
	return proto.Marshal(m)
}

type builder struct {
	rng   *rand.Rand
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
	n     int
}

func (b *builder) name(prefix string) string {
	b.n++
	return fmt.Sprintf("%s_%d", prefix, b.n)
}

func (b *builder) last() string { return b.nodes[len(b.nodes)-1].Output[0] }

func (b *builder) node(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := b.name(op)
	b.nodes = append(b.nodes, &onnxpb.NodeProto{OpType: op, Name: out, Input: inputs, Output: []string{out}, Attribute: attrs})
	return out
}

func (b *builder) tensor(dims []int64, value func() float64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	raw := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(value())))
	}
	name := b.name("w")
	b.inits = append(b.inits, &onnxpb.TensorProto{Name: name, Dims: dims, DataType: int32(onnxpb.TensorProto_FLOAT), RawData: raw})
	return name
}

// weights is normal with He's standard deviation sqrt(2/fanIn), or small
// values for fanIn 0 (biases).
func (b *builder) weights(dims []int64, fanIn int) string {
	std := 0.01
	if fanIn > 0 {
		std = math.Sqrt(2 / float64(fanIn))
	}
	return b.tensor(dims, func() float64 { return b.rng.NormFloat64() * std })
}

// constant is n values around center (a batch norm's parameters).
func (b *builder) constant(n int64, center, spread float64) string {
	return b.tensor([]int64{n}, func() float64 { return center + spread*b.rng.Float64() })
}

func ints(name string, v ...int) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS}
	for _, x := range v {
		a.Ints = append(a.Ints, int64(x))
	}
	return a
}

// valueInfo describes a float32 tensor [N, dims...] with N symbolic, or 1
// if fixed.
func valueInfo(name string, fixed bool, dims ...int64) *onnxpb.ValueInfoProto {
	batch := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}
	if fixed {
		batch.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1}
	}
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{batch}}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: shape}}}}
}
