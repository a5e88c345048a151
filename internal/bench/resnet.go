package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// ResNet18ONNX writes torchvision's ResNet-18 as PyTorch's ONNX export of
// it in eval mode looks (batch norms folded into the convolutions): input
// "images" float32 [N, 3, 224, 224], output "probabilities" float32
// [N, classes] after a softmax, N symbolic. The weights are random
// (He-initialised from seed): this is the original pipeline's network for
// measuring inference, not a classifier. ONNX Runtime runs its Conv nodes
// with its own convolution kernels, unlike the Trainer's export, whose
// convolutions are written as im2col + MatMul for GoMLX's pure-Go backend.
func ResNet18ONNX(classes int, seed uint64) ([]byte, error) {
	if classes < 2 {
		return nil, fmt.Errorf("resnet18: need at least 2 classes, got %d", classes)
	}
	b := &graphBuilder{rng: rand.New(rand.NewPCG(seed, 18))}
	x := b.conv("images", 3, 64, 7, 2, 3, true)
	x = b.node("MaxPool", []string{x}, ints("kernel_shape", 3, 3), ints("strides", 2, 2), ints("pads", 1, 1, 1, 1))
	in := 64
	for stage, width := range []int{64, 128, 256, 512} {
		for block := range 2 {
			stride := 1
			if block == 0 && stage > 0 {
				stride = 2
			}
			shortcut := x
			if stride != 1 || in != width {
				shortcut = b.conv(x, in, width, 1, stride, 0, false)
			}
			y := b.conv(x, in, width, 3, stride, 1, true)
			y = b.conv(y, width, width, 3, 1, 1, false)
			x = b.node("Relu", []string{b.node("Add", []string{y, shortcut})})
			in = width
		}
	}
	x = b.node("GlobalAveragePool", []string{x})
	x = b.node("Flatten", []string{x}, &onnxpb.AttributeProto{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 1})
	w := b.weights([]int64{int64(classes), 512}, 512)
	bias := b.weights([]int64{int64(classes)}, 0)
	x = b.node("Gemm", []string{x, w, bias}, &onnxpb.AttributeProto{Name: "transB", Type: onnxpb.AttributeProto_INT, I: 1})
	b.node("Softmax", []string{x}, &onnxpb.AttributeProto{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 1})
	b.nodes[len(b.nodes)-1].Output[0] = "probabilities" // the graph's output
	g := &onnxpb.GraphProto{
		Name: "resnet18", Node: b.nodes, Initializer: b.inits,
		Input:  []*onnxpb.ValueInfoProto{valueInfo("images", 3, 224, 224)},
		Output: []*onnxpb.ValueInfoProto{valueInfo("probabilities", int64(classes))},
	}
	m := &onnxpb.ModelProto{IrVersion: 8, ProducerName: "shoal-bench", Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: 13}}}
	return proto.Marshal(m)
}

type graphBuilder struct {
	rng   *rand.Rand
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
	n     int
}

func (b *graphBuilder) name(prefix string) string {
	b.n++
	return fmt.Sprintf("%s_%d", prefix, b.n)
}

func (b *graphBuilder) node(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := b.name(op)
	b.nodes = append(b.nodes, &onnxpb.NodeProto{OpType: op, Name: out, Input: inputs, Output: []string{out}, Attribute: attrs})
	return out
}

// weights adds a float32 initialiser: normal with He's standard deviation
// sqrt(2/fanIn), or small values for fanIn 0 (biases).
func (b *graphBuilder) weights(dims []int64, fanIn int) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	std := 0.01
	if fanIn > 0 {
		std = math.Sqrt(2 / float64(fanIn))
	}
	raw := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(b.rng.NormFloat64()*std)))
	}
	name := b.name("w")
	b.inits = append(b.inits, &onnxpb.TensorProto{Name: name, Dims: dims, DataType: int32(onnxpb.TensorProto_FLOAT), RawData: raw})
	return name
}

// conv adds a k×k convolution with bias (a folded batch norm), optionally
// followed by a ReLU.
func (b *graphBuilder) conv(x string, in, out, k, stride, pad int, relu bool) string {
	w := b.weights([]int64{int64(out), int64(in), int64(k), int64(k)}, in*k*k)
	bias := b.weights([]int64{int64(out)}, 0)
	y := b.node("Conv", []string{x, w, bias}, ints("kernel_shape", k, k), ints("strides", stride, stride),
		ints("pads", pad, pad, pad, pad))
	if relu {
		y = b.node("Relu", []string{y})
	}
	return y
}

func ints(name string, v ...int) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS}
	for _, x := range v {
		a.Ints = append(a.Ints, int64(x))
	}
	return a
}

// valueInfo describes a float32 tensor [N, dims...] with N symbolic.
func valueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
		{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}}}}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: shape}}}}
}
