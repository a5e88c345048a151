package ml

import (
	"reflect"

	"github.com/gomlx/compute"
	onnxbackend "github.com/gomlx/compute-onnx"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Gradients of convolutions and of pooling on the ONNX Runtime backend.
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
// a stack with zeros and a reshape, which every backend has; the stride-1
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
//
// Speed, from ONNX Runtime's profile of a ResNet-18 training step (224x224,
// batch 16; the backend's "profile" option, third_party/README.md): pads
// here are concatenations (padWith), as ONNX Runtime's Pad took 2.1 of the
// step's 5.3 s; max pooling's gradient works on the output's grid, not
// the input's, until its last step; and a convolution's kernel gradient
// is matrix products (kernelGradient), not a convolution with a kernel the
// size of the image. The step went from 5.3 s to 1.8 s.

func init() {
	gomlxConvVJP := VJPRegistration[NodeTypeConvGeneral]
	VJPRegistration[NodeTypeConvGeneral] = func(node *Node, vjpOutputs []*Node, outputShape shapes.Shape) []*Node {
		if node.Graph().Backend().Name() != onnxbackend.BackendName {
			return gomlxConvVJP(node, vjpOutputs, outputShape)
		}
		p, ok := readConvParams(node)
		if !ok || len(p.inputDilations) > 0 || p.batchGroupCount > 1 {
			return gomlxConvVJP(node, vjpOutputs, outputShape)
		}
		x, kernel := node.Inputs()[0], node.Inputs()[1]
		var grads []*Node
		if p.channelGroupCount > 1 {
			v := vjpOutputs[0]
			if strided(p.strides) {
				dense := ConvGeneral(x, kernel, p.axes, nil, p.paddings, nil, p.kernelDilations, p.channelGroupCount, 1)
				v = spread(v, dense.Shape(), p.axes.OutputSpatial, p.strides)
			}
			dx := groupedInputGradient(x, kernel, v, p)
			if dx == nil {
				return gomlxConvVJP(node, vjpOutputs, outputShape)
			}
			return []*Node{dx, kernelGradient(x, kernel, vjpOutputs[0], p)}
		}
		if strided(p.strides) {
			dense := ConvGeneral(x, kernel, p.axes, nil, p.paddings, nil, p.kernelDilations, p.channelGroupCount, p.batchGroupCount)
			v := spread(vjpOutputs[0], dense.Shape(), p.axes.OutputSpatial, p.strides)
			grads = gomlxConvVJP(dense, []*Node{v}, dense.Shape())
		} else {
			grads = gomlxConvVJP(node, vjpOutputs, outputShape)
		}
		if k := kernelGradient(x, kernel, vjpOutputs[0], p); k != nil {
			// Matrix products, without the spread's zeros (a quarter of
			// the work at stride 2). The kernel gradient above is then
			// not computed: the backend compiles only what the outputs
			// reach.
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
		if i < len(strides) && strides[i] > 1 {
			parts := []*Node{v}
			for range strides[i] - 1 {
				parts = append(parts, ZerosLike(v))
			}
			v = interleave(parts, axis)
		}
		want := dense.Dimensions[axis]
		switch have := v.Shape().Dimensions[axis]; {
		case have > want:
			v = SliceAxis(v, axis, AxisRange(0, want))
		case have < want:
			pads := make([]compute.PadAxis, v.Rank())
			pads[axis].End = want - have
			v = padWith(v, zero, pads)
		}
	}
	return v
}

// interleave merges same-shaped parts along axis: parts[r]'s values at
// positions r, r+s, r+2s, ... (s = len(parts)). A stack and a reshape.
func interleave(parts []*Node, axis int) *Node {
	if len(parts) == 1 {
		return parts[0]
	}
	dims := append([]int(nil), parts[0].Shape().Dimensions...)
	dims[axis] *= len(parts)
	return Reshape(Stack(parts, axis+1), dims...)
}

// padWith pads v with value (a scalar) by concatenating filled blocks:
// what Pad does, but ONNX Runtime's Pad copies a large tensor many times
// slower than its Concat (a 16x64x112x112 pad took it 130 ms, most of a
// training step's time in the max pooling gradient).
func padWith(v, value *Node, pads []compute.PadAxis) *Node {
	for axis, p := range pads {
		if p.Start <= 0 && p.End <= 0 {
			continue
		}
		block := func(n int) *Node {
			dims := append([]int(nil), v.Shape().Dimensions...)
			dims[axis] = n
			return BroadcastToDims(value, dims...)
		}
		var parts []*Node
		if p.Start > 0 {
			parts = append(parts, block(p.Start))
		}
		parts = append(parts, v)
		if p.End > 0 {
			parts = append(parts, block(p.End))
		}
		v = Concatenate(parts, axis)
	}
	return v
}

// maxPoolGradient is the gradient of y = max pooling of x (parameters p)
// for y's gradient v: each output's gradient goes to the first maximum of
// its window in row-major order (as PyTorch's and GoMLX's do), and an
// input that is the maximum of several windows gets the sum of theirs. It
// visits the window's offsets one at a time: the inputs at that offset of
// every window (a strided slice of the padded input), which of them are
// the window's first maximum, and their gradients. Offset o = s*q + r
// (stride s) lands on the input positions r, r+s, r+2s, ... shifted by q
// of them: so the gradients of the offsets of one phase r add up on the
// output's grid, and the phases are interleaved once at the end. All but
// that last step work on tensors of the output's size.
func maxPoolGradient(x, y, v *Node, p windowParams) *Node {
	g := x.Graph()
	rank := x.Rank()
	pads := make([]compute.PadAxis, rank)
	for i := range p.paddings {
		pads[i] = compute.PadAxis{Start: p.paddings[i][0], End: p.paddings[i][1]}
	}
	xp := padWith(x, Infinity(g, x.DType(), -1), pads)
	zero := ScalarZero(g, v.DType())
	out := y.Shape().Dimensions
	// lattice[i]: positions of one phase along axis i, enough to cover the
	// padded input; phases: one sum per phase vector, row-major.
	lattice := make([]int, rank)
	phases := 1
	for i := range lattice {
		lattice[i] = (xp.Shape().Dimensions[i] + p.strides[i] - 1) / p.strides[i]
		phases *= p.strides[i]
	}
	sums := make([]*Node, phases)
	offset := make([]int, rank)
	var taken *Node
	for {
		at := make([]SliceAxisSpec, rank)
		for i := range at {
			at[i] = AxisRange(offset[i], offset[i]+(out[i]-1)*p.strides[i]+1).Stride(p.strides[i])
		}
		first := Equal(Slice(xp, at...), y)
		if taken != nil {
			first = LogicalAnd(first, LogicalNot(taken))
			taken = LogicalOr(taken, first)
		} else {
			taken = first
		}
		share := Where(first, v, ZerosLike(v))
		shift := make([]compute.PadAxis, rank)
		phase := 0
		for i := range shift {
			q := offset[i] / p.strides[i]
			shift[i] = compute.PadAxis{Start: q, End: lattice[i] - out[i] - q}
			phase = phase*p.strides[i] + offset[i]%p.strides[i]
		}
		placed := padWith(share, zero, shift)
		if sums[phase] == nil {
			sums[phase] = placed
		} else {
			sums[phase] = Add(sums[phase], placed)
		}
		if !nextOffset(offset, p.window) {
			break
		}
	}
	for i, s := range sums {
		if s == nil { // a phase no offset reaches (window smaller than the stride)
			sums[i] = Zeros(g, shapes.Make(v.DType(), lattice...))
		}
	}
	// Interleave the phases, last axis first: consecutive groups of
	// strides[axis] differ only in that axis's phase.
	for axis := rank - 1; axis >= 0; axis-- {
		s := p.strides[axis]
		if s == 1 {
			continue
		}
		merged := make([]*Node, 0, len(sums)/s)
		for j := 0; j < len(sums); j += s {
			merged = append(merged, interleave(sums[j:j+s], axis))
		}
		sums = merged
	}
	inside := make([]SliceAxisSpec, rank)
	for i := range inside {
		inside[i] = AxisRange(pads[i].Start, pads[i].Start+x.Shape().Dimensions[i])
	}
	return Slice(sums[0], inside...)
}
