package ml

import (
	"reflect"

	"github.com/gomlx/compute"
	onnxbackend "github.com/gomlx/compute-onnx"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Gradients of strided convolutions and of pooling on the ONNX Runtime
// backend.
//
// GoMLX writes the gradient of a convolution with strides, with respect to
// its input, as a convolution of the output's gradient dilated by the
// strides (zeros between its values): an input dilation, which ONNX's Conv
// does not have; and the gradient of a strided sum or average pooling as
// an interior padding, which ONNX's Pad does not have. So the ONNX Runtime
// backend could not train a network with a strided convolution (every
// ResNet, MobileNet and EfficientNet) or an AveragePool.
//
// A convolution or pooling with strides s is the stride-1 one of the same
// input, padding and window, read every s positions. So its gradients are
// the stride-1 operation's, for the output gradient spread over the
// stride-1 output: each value at its position, zeros between. Spreading is
// a reshape and an edge pad, which every backend has; the stride-1
// gradients need neither input dilation nor interior padding. The stride-1
// operation built to state that gradient is never computed: only its shape
// is read, and the backend compiles only what the outputs reach. The
// gradients are the same numbers as GoMLX's own (the test holds them to
// the pure-Go backend's); other backends keep GoMLX's.
//
// Max pooling's gradient on that backend is written here too: the
// backend's own scatters each output's gradient to its window's maximum
// without adding up, so where windows overlap (ResNet's 3x3 stride-2 stem
// pooling) an input that is the maximum of two windows kept only one of
// their gradients.

func init() {
	gomlxConvVJP := VJPRegistration[NodeTypeConvGeneral]
	VJPRegistration[NodeTypeConvGeneral] = func(node *Node, vjpOutputs []*Node, outputShape shapes.Shape) []*Node {
		if node.Graph().Backend().Name() != onnxbackend.BackendName {
			return gomlxConvVJP(node, vjpOutputs, outputShape)
		}
		p, ok := readConvParams(node)
		if !ok || !strided(p.strides) || len(p.inputDilations) > 0 {
			return gomlxConvVJP(node, vjpOutputs, outputShape)
		}
		x, kernel := node.Inputs()[0], node.Inputs()[1]
		dense := ConvGeneral(x, kernel, p.axes, nil, p.paddings, nil, p.kernelDilations, p.channelGroupCount, p.batchGroupCount)
		v := spread(vjpOutputs[0], dense.Shape(), p.axes.OutputSpatial, p.strides)
		grads := gomlxConvVJP(dense, []*Node{v}, dense.Shape())
		if k := kernelGradient(x, kernel, vjpOutputs[0], p); k != nil {
			// Without the spread's zeros: a quarter of the work at
			// stride 2. The stride-1 one above is then not computed.
			grads[1] = k
		}
		return grads
	}

	gomlxWindowVJP := VJPRegistration[NodeTypeReduceWindow]
	VJPRegistration[NodeTypeReduceWindow] = func(node *Node, vjpOutputs []*Node, outputShape shapes.Shape) []*Node {
		if node.Graph().Backend().Name() != onnxbackend.BackendName {
			return gomlxWindowVJP(node, vjpOutputs, outputShape)
		}
		p, ok := readWindowParams(node)
		if !ok || len(p.inputDilations) > 0 || len(p.windowDilations) > 0 {
			return gomlxWindowVJP(node, vjpOutputs, outputShape)
		}
		if p.reduction == compute.ReduceOpMax {
			return []*Node{maxPoolGradient(node.Inputs()[0], node, vjpOutputs[0], p)}
		}
		if p.reduction != compute.ReduceOpSum || !strided(p.strides) {
			return gomlxWindowVJP(node, vjpOutputs, outputShape)
		}
		ones := make([]int, len(p.strides))
		for i := range ones {
			ones[i] = 1
		}
		dense := BackendReduceWindow(node.Inputs()[0], p.reduction, p.window, ones, nil, nil, p.paddings)
		axes := make([]int, dense.Rank())
		for i := range axes {
			axes[i] = i
		}
		v := spread(vjpOutputs[0], dense.Shape(), axes, p.strides)
		return gomlxWindowVJP(dense, []*Node{v}, dense.Shape())
	}
}

func strided(strides []int) bool {
	for _, s := range strides {
		if s > 1 {
			return true
		}
	}
	return false
}

// opFields is a node's parameters, which GoMLX keeps in unexported fields:
// read, never written, by reflection (the tests check they are found for
// the GoMLX version this module requires). A field that is not there
// panics, which readFields turns into false: GoMLX's own gradient.
type opFields struct{ v reflect.Value }

// readFields calls read with node's parameters: false if they are not
// where read looks (it panics), or read says so.
func readFields(node *Node, read func(opFields) bool) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	in := reflect.ValueOf(node).Elem().FieldByName("inputs")
	for in.Kind() == reflect.Interface || in.Kind() == reflect.Pointer {
		in = in.Elem()
	}
	return in.Kind() == reflect.Struct && read(opFields{in})
}

func (f opFields) int(name string) int { return int(f.v.FieldByName(name).Int()) }

func (f opFields) ints(name string) []int { return intsOf(f.v.FieldByName(name)) }

func intsOf(v reflect.Value) []int {
	if v.Len() == 0 {
		return nil
	}
	out := make([]int, v.Len())
	for i := range out {
		out[i] = int(v.Index(i).Int())
	}
	return out
}

func (f opFields) pairs(name string) [][2]int {
	v := f.v.FieldByName(name)
	if v.Len() == 0 {
		return nil
	}
	out := make([][2]int, v.Len())
	for i := range out {
		out[i] = [2]int{int(v.Index(i).Index(0).Int()), int(v.Index(i).Index(1).Int())}
	}
	return out
}

// convParams are a ConvGeneral node's parameters.
type convParams struct {
	axes                               compute.ConvolveAxesConfig
	strides                            []int
	paddings                           [][2]int
	inputDilations, kernelDilations    []int
	channelGroupCount, batchGroupCount int
}

func readConvParams(node *Node) (p convParams, ok bool) {
	ok = readFields(node, func(f opFields) bool {
		axes := opFields{f.v.FieldByName("axes")}
		p.axes = compute.ConvolveAxesConfig{
			InputBatch: axes.int("InputBatch"), InputChannels: axes.int("InputChannels"), InputSpatial: axes.ints("InputSpatial"),
			KernelInputChannels: axes.int("KernelInputChannels"), KernelOutputChannels: axes.int("KernelOutputChannels"), KernelSpatial: axes.ints("KernelSpatial"),
			OutputBatch: axes.int("OutputBatch"), OutputChannels: axes.int("OutputChannels"), OutputSpatial: axes.ints("OutputSpatial"),
		}
		p.strides, p.paddings = f.ints("strides"), f.pairs("paddings")
		p.inputDilations, p.kernelDilations = f.ints("inputDilations"), f.ints("kernelDilations")
		p.channelGroupCount, p.batchGroupCount = f.int("channelGroupCount"), f.int("batchGroupCount")
		return len(p.axes.OutputSpatial) == len(p.axes.InputSpatial) && len(p.axes.InputSpatial) > 0
	})
	return p, ok
}

// windowParams are a ReduceWindow node's parameters.
type windowParams struct {
	reduction                       ReduceOpType
	window, strides                 []int
	inputDilations, windowDilations []int
	paddings                        [][2]int
}

func readWindowParams(node *Node) (p windowParams, ok bool) {
	ok = readFields(node, func(f opFields) bool {
		p.reduction = ReduceOpType(f.int("reductionType"))
		p.window, p.strides = f.ints("windowDimensions"), f.ints("strides")
		p.inputDilations, p.windowDilations = f.ints("inputDilations"), f.ints("windowDilations")
		p.paddings = f.pairs("paddings")
		return len(p.window) == node.Rank() && len(p.strides) == node.Rank()
	})
	return p, ok
}

// spread places v's values, along each of axes, every strides[i]
// positions of a tensor shaped like dense (zeros between and after them):
// the output gradient of a strided operation as its stride-1 one's.
func spread(v *Node, dense shapes.Shape, axes, strides []int) *Node {
	zero := ScalarZero(v.Graph(), v.DType())
	for i, axis := range axes {
		s := 1
		if i < len(strides) {
			s = strides[i]
		}
		want := dense.Dimensions[axis]
		if s > 1 {
			// [.., n, ..] -> [.., n, 1, ..] -> [.., n, s, ..] -> [.., n*s, ..]
			dims := v.Shape().Dimensions
			n := dims[axis]
			v = InsertAxes(v, axis+1)
			pads := make([]compute.PadAxis, v.Rank())
			pads[axis+1].End = s - 1
			v = Pad(v, zero, pads...)
			merged := append(append(append([]int(nil), dims[:axis]...), n*s), dims[axis+1:]...)
			v = Reshape(v, merged...)
		}
		switch have := v.Shape().Dimensions[axis]; {
		case have > want:
			v = SliceAxis(v, axis, AxisRange(0, want))
		case have < want:
			pads := make([]compute.PadAxis, v.Rank())
			pads[axis].End = want - have
			v = Pad(v, zero, pads...)
		}
	}
	return v
}

// maxPoolGradient is the gradient of y = max pooling of x (parameters p)
// for y's gradient v: each output's gradient goes to the first maximum of
// its window in row-major order (as PyTorch's and GoMLX's do), and an
// input that is the maximum of several windows gets the sum of theirs. It
// visits the window's offsets one at a time: the inputs at that offset of
// every window (a strided slice of the padded input), which of them are
// the window's first maximum, and their gradients put back in place.
func maxPoolGradient(x, y, v *Node, p windowParams) *Node {
	g := x.Graph()
	rank := x.Rank()
	pads := make([]compute.PadAxis, rank)
	for i := range p.paddings {
		pads[i] = compute.PadAxis{Start: p.paddings[i][0], End: p.paddings[i][1]}
	}
	xp := Pad(x, Infinity(g, x.DType(), -1), pads...)
	zero := ScalarZero(g, v.DType())
	axes := make([]int, rank)
	for i := range axes {
		axes[i] = i
	}
	offset := make([]int, rank)
	var taken, sum *Node
	for {
		at := make([]SliceAxisSpec, rank)
		for i := range at {
			at[i] = AxisRange(offset[i], offset[i]+(y.Shape().Dimensions[i]-1)*p.strides[i]+1).Stride(p.strides[i])
		}
		first := Equal(Slice(xp, at...), y)
		if taken != nil {
			first = LogicalAnd(first, LogicalNot(taken))
			taken = LogicalOr(taken, first)
		} else {
			taken = first
		}
		// Each output's share at this offset, at its input's position in
		// the padded input.
		share := Where(first, v, ZerosLike(v))
		rest := xp.Shape().Clone()
		shift := make([]compute.PadAxis, rank)
		for i := range rest.Dimensions {
			rest.Dimensions[i] -= offset[i]
			shift[i].Start = offset[i]
		}
		placed := Pad(spread(share, rest, axes, p.strides), zero, shift...)
		if sum == nil {
			sum = placed
		} else {
			sum = Add(sum, placed)
		}
		// The next offset, row-major.
		i := rank - 1
		for ; i >= 0; i-- {
			if offset[i]++; offset[i] < p.window[i] {
				break
			}
			offset[i] = 0
		}
		if i < 0 {
			break
		}
	}
	inside := make([]SliceAxisSpec, rank)
	for i := range inside {
		inside[i] = AxisRange(pads[i].Start, pads[i].Start+x.Shape().Dimensions[i])
	}
	return Slice(sum, inside...)
}

// kernelGradient is the gradient of a strided convolution (parameters p,
// no groups, no kernel dilation) with respect to its kernel, for the
// output's gradient v: each kernel weight's gradient sums, over the batch
// and the output positions, v times the input it met. That is a
// convolution of the input by v, the batch axis contracted (the input's
// channels as its batch), v's values dilated by the strides (a kernel
// dilation, which ONNX's Conv has), read at each kernel offset. nil when p
// is not of that kind.
func kernelGradient(x, kernel, v *Node, p convParams) *Node {
	if p.channelGroupCount > 1 || p.batchGroupCount > 1 {
		return nil
	}
	for _, d := range p.kernelDilations {
		if d > 1 {
			return nil
		}
	}
	a := p.axes
	rev := compute.ConvolveAxesConfig{
		InputBatch: a.InputChannels, InputChannels: a.InputBatch, InputSpatial: a.InputSpatial,
		KernelInputChannels: a.OutputBatch, KernelOutputChannels: a.OutputChannels, KernelSpatial: a.OutputSpatial,
		OutputBatch: a.KernelInputChannels, OutputChannels: a.KernelOutputChannels, OutputSpatial: a.KernelSpatial,
	}
	g := ConvGeneral(x, v, rev, nil, p.paddings, nil, p.strides, 1, 1)
	// Offsets past the kernel's (where the padded input outlasts the last
	// window by less than a stride) are dropped.
	at := make([]SliceAxisSpec, g.Rank())
	for i := range at {
		at[i] = AxisRange(0, kernel.Shape().Dimensions[i])
	}
	return Slice(g, at...)
}
