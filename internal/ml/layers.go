package ml

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	timage "github.com/gomlx/gomlx/core/tensors/images"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/layers/norm"
	"github.com/gomlx/gomlx/ml/model"
)

// nativeOpsParam, set to true on a graph (at the root scope), builds
// convolutions and pooling with the graph's own Conv and MaxPool ops, on the
// same variables: the exported ONNX graph then holds ONNX Conv and MaxPool
// nodes, which ONNX Runtime runs several times faster than the im2col
// slices and reshapes written for training on the pure-Go backend.
const nativeOpsParam = "shoal_native_ops"

func nativeOps(g *Graph) bool {
	v, _ := model.GetGraphParam(g, "/"+nativeOpsParam)
	on, _ := v.(bool)
	return on
}

// conv3x3 is a 3x3 "same" convolution of NHWC x written as im2col followed
// by a Dense layer: on the pure-Go backend the matrix multiplication is far
// better optimised than the generic convolution (measured ~8x faster, forward
// and backward). stride 1 or 2. No bias: a batch norm always follows.
func conv3x3(scope *model.Scope, x *Node, outChannels, stride int) *Node {
	if nativeOps(x.Graph()) {
		// The Dense weights [9*C, out] are indexed (dy, dx, c): as a
		// [3, 3, C, out] kernel they are the same convolution.
		c := x.Shape().Dimensions[3]
		kernel := Reshape(denseWeights(scope, x, 9*c, outChannels), 3, 3, c, outChannels)
		return Convolve(x, kernel).ChannelsAxis(timage.ChannelsLast).StridePerAxis(stride, stride).
			PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
	}
	dims := x.Shape().Dimensions
	h, w := dims[1], dims[2]
	padded := Pad(x, ScalarZero(x.Graph(), x.DType()),
		compute.PadAxis{}, compute.PadAxis{Start: 1, End: 1}, compute.PadAxis{Start: 1, End: 1}, compute.PadAxis{})
	outH, outW := (h-1)/stride+1, (w-1)/stride+1
	patches := make([]*Node, 0, 9)
	for dy := range 3 {
		for dx := range 3 {
			if stride == 1 {
				patches = append(patches, Slice(padded, AxisRange(), AxisRange(dy, dy+outH), AxisRange(dx, dx+outW), AxisRange()))
				continue
			}
			patches = append(patches, subsample2(padded, dy, dx, outH, outW))
		}
	}
	return layers.Dense(scope, Concatenate(patches, -1), false, outChannels)
}

// conv1x1 is a pointwise convolution (a Dense over the channel axis), with
// an optional stride of 2, used by residual shortcuts.
func conv1x1(scope *model.Scope, x *Node, outChannels, stride int) *Node {
	if nativeOps(x.Graph()) {
		c := x.Shape().Dimensions[3]
		kernel := Reshape(denseWeights(scope, x, c, outChannels), 1, 1, c, outChannels)
		return Convolve(x, kernel).ChannelsAxis(timage.ChannelsLast).StridePerAxis(stride, stride).NoPadding().Done()
	}
	if stride > 1 {
		dims := x.Shape().Dimensions
		x = subsample2(x, 0, 0, (dims[1]+1)/2, (dims[2]+1)/2)
	}
	return layers.Dense(scope, x, false, outChannels)
}

// denseWeights is the weights variable layers.Dense(scope, ...) creates
// for in inputs and out outputs.
func denseWeights(scope *model.Scope, x *Node, in, out int) *Node {
	return scope.In("dense").VariableWithShape("weights", shapes.Make(x.DType(), in, out)).NodeValue(x.Graph())
}

// subsample2 is x[:, y0:y0+2*outH:2, x0:x0+2*outW:2, :] of NHWC x, written
// as a plain slice, a reshape and another plain slice: the gradient of a
// strided slice is a pad with interior padding, which ONNX Runtime's
// backend cannot build, so it could not train the strided ResNets. Rows
// and columns the range runs past are zero-padded first (they are never
// picked).
func subsample2(x *Node, y0, x0, outH, outW int) *Node {
	dims := x.Shape().Dimensions
	n, h, w, c := dims[0], dims[1], dims[2], dims[3]
	if extraH, extraW := max(y0+2*outH-h, 0), max(x0+2*outW-w, 0); extraH > 0 || extraW > 0 {
		x = Pad(x, ScalarZero(x.Graph(), x.DType()),
			compute.PadAxis{}, compute.PadAxis{End: extraH}, compute.PadAxis{End: extraW}, compute.PadAxis{})
	}
	x = Slice(x, AxisRange(), AxisRange(y0, y0+2*outH), AxisRange(x0, x0+2*outW), AxisRange())
	x = Reshape(x, n, outH, 2, outW, 2, c)
	x = Slice(x, AxisRange(), AxisRange(), AxisRange(0, 1), AxisRange(), AxisRange(0, 1), AxisRange())
	return Reshape(x, n, outH, outW, c)
}

// batchNorm normalises NHWC x over its channel axis. The backend's fused
// batch-norm ops are avoided: their gradients were unstable on the pure-Go
// backend, and the plain graph exports to ONNX as ordinary arithmetic.
// With the frozenBatchNormParam set (Config.FreezeBatchNorm), training
// normalises with the stored averages and leaves them as they are.
func batchNorm(scope *model.Scope, x *Node) *Node {
	frozen := model.GetParamOr(scope, frozenBatchNormParam, false)
	return norm.BatchNorm(scope, x, -1).UseBackendInference(false).FrozenAverages(frozen).Done()
}

// frozenBatchNormParam is the store's parameter for Config.FreezeBatchNorm.
const frozenBatchNormParam = "shoal_frozen_batch_norm"

// convBNReLU is the basic conv -> batch norm -> ReLU unit.
func convBNReLU(scope *model.Scope, x *Node, outChannels, stride int) *Node {
	x = conv3x3(scope.In("conv"), x, outChannels, stride)
	return activation.Relu(batchNorm(scope.In("bn"), x))
}

// maxPool2 is a 2x2/stride-2 max pool written as reshape + ReduceMax, which
// is much cheaper on the pure-Go backend than the generic reduce-window.
// An odd trailing row/column is dropped, like PyTorch's default.
func maxPool2(x *Node) *Node {
	if nativeOps(x.Graph()) {
		return MaxPool(x).ChannelsAxis(timage.ChannelsLast).Window(2).Strides(2).NoPadding().Done()
	}
	dims := x.Shape().Dimensions
	n, h, w, c := dims[0], dims[1], dims[2], dims[3]
	if h%2 != 0 || w%2 != 0 {
		x = Slice(x, AxisRange(), AxisRange(0, h-h%2), AxisRange(0, w-w%2), AxisRange())
	}
	x = Reshape(x, n, h/2, 2, w/2, 2, c)
	return ReduceMax(x, 2, 4)
}

// globalAvgPool reduces NHWC x to [N, C].
func globalAvgPool(x *Node) *Node {
	return ReduceMean(x, 1, 2)
}
