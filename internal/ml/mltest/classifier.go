// Package mltest builds small ONNX classifiers the way other frameworks
// export them, for tests of fine-tuning models Shoal did not train.
package mltest

import (
	"fmt"

	"github.com/shoalml/shoal/internal/onnxbuild"
)

// Classifier describes a small CNN as PyTorch's ONNX export writes one in
// eval mode: Conv -> BatchNormalization -> Relu -> MaxPool -> Conv -> Relu
// -> MaxPool -> Flatten -> Gemm (transB=1, or see Head) [-> Softmax], input
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
	// Head is the classification layer: "" for Gemm (transB=1) with a
	// bias, "MatMul" for a MatMul [features, classes] without one, or
	// "MatMul+Add" (as TensorFlow-born graphs write a dense layer).
	Head string
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
	ints := onnxbuild.Ints
	b := onnxbuild.New(c.Seed, 7)
	input := onnxbuild.ValueInfo(c.Input, c.FixedBatch, int64(c.Channels), int64(c.Size), int64(c.Size))
	x := c.Input
	if c.NHWC {
		input = onnxbuild.ValueInfo(c.Input, c.FixedBatch, int64(c.Size), int64(c.Size), int64(c.Channels))
		x = b.Node("Transpose", []string{x}, ints("perm", 0, 3, 1, 2))
	}
	x = b.Node("Conv", []string{x, b.Weights([]int64{8, int64(c.Channels), 3, 3}, c.Channels*9), b.Weights([]int64{8}, 0)},
		ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1))
	x = b.Node("BatchNormalization", []string{x, b.Constant(8, 1, 0.1), b.Constant(8, 0, 0.05), b.Constant(8, 0, 0.1), b.Constant(8, 1, 0.2)},
		onnxbuild.Float("epsilon", 1e-5))
	x = b.Node("Relu", []string{x})
	x = b.Node("MaxPool", []string{x}, ints("kernel_shape", 2, 2), ints("strides", 2, 2))
	x = b.Node("Conv", []string{x, b.Weights([]int64{16, 8, 3, 3}, 72), b.Weights([]int64{16}, 0)},
		ints("kernel_shape", 3, 3), ints("pads", 1, 1, 1, 1))
	act := c.Activation
	if act == "" {
		act = "Relu"
	}
	x = b.Node(act, []string{x})
	x = b.Node("MaxPool", []string{x}, ints("kernel_shape", 2, 2), ints("strides", 2, 2))
	x = b.Node("Flatten", []string{x}, onnxbuild.Int("axis", 1))
	features := 16 * (c.Size / 4) * (c.Size / 4)
	switch c.Head {
	case "":
		x = b.Node("Gemm", []string{x, b.Weights([]int64{int64(c.Classes), int64(features)}, features), b.Weights([]int64{int64(c.Classes)}, 0)},
			onnxbuild.Int("transB", 1))
	case "MatMul", "MatMul+Add":
		x = b.Node("MatMul", []string{x, b.Weights([]int64{int64(features), int64(c.Classes)}, features)})
		if c.Head == "MatMul+Add" {
			x = b.Node("Add", []string{x, b.Weights([]int64{int64(c.Classes)}, 0)})
		}
	default:
		return nil, fmt.Errorf("mltest: head %q: want \"\", \"MatMul\" or \"MatMul+Add\"", c.Head)
	}
	if c.Tail != "" {
		b.Node(c.Tail, []string{x})
	}
	if c.Softmax {
		b.Node("Softmax", []string{b.Last()}, onnxbuild.Int("axis", 1))
	}
	return b.Model("classifier", "pytorch", input, onnxbuild.ValueInfo(c.Output, c.FixedBatch, int64(c.Classes)))
}
