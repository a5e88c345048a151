package ml

import (
	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
)

// Convolution gradients for ONNX Runtime's backend, registered with the
// strided ones (stridedgrad.go): a kernel's as matrix products, a grouped
// convolution's input's as one grouped convolution.

// kernelGradient is the gradient of a convolution (parameters p, no batch
// groups) with respect to its kernel, for the output's gradient v: each
// kernel weight's gradient sums, over the batch and the output positions,
// v times the input it met. For each kernel offset that is a matrix
// product per image (and group), [input channels, positions] by
// [positions, output channels], of the input read at that offset (a
// strided slice of the padded input) and v; summed over the batch; for a
// depthwise convolution, a product and a sum. ONNX Runtime runs those
// products (MatMul) about 4x faster than the same sum written as a
// convolution of the input by v, GoMLX's way (a 3x3 64->64 kernel at batch
// 16 and 56x56: 26 ms against 101 ms on 2 threads), but not with few
// input channels: for a 7x7 stem on 3 channels, 49 thin products took 218
// ms where the convolution took 39, so below 16 input channels, without
// groups, the convolution stays. GoMLX's own gradient of a grouped
// convolution is one convolution per group (960 for some of MobileNetV2's
// depthwise ones). nil where GoMLX's own gradient serves as well.
func kernelGradient(x, kernel, v *Node, p convParams) *Node {
	groups := p.channelGroupCount
	if p.batchGroupCount > 1 {
		return nil
	}
	a := p.axes
	if groups <= 1 && x.Shape().Dimensions[a.InputChannels] < 16 {
		if !strided(p.strides) {
			return nil
		}
		return kernelGradientByConvolution(x, kernel, v, p)
	}
	groups = max(groups, 1)
	spatial := len(a.InputSpatial)
	// x as [N, I, spatial...]; v's dimensions as [N, spatial..., O], the
	// layout of its transpose vt, which only the non-depthwise products use.
	xt := transposeTo(x, append([]int{a.InputBatch, a.InputChannels}, a.InputSpatial...))
	vAxes := append(append([]int{a.OutputBatch}, a.OutputSpatial...), a.OutputChannels)
	vdims := make([]int, len(vAxes))
	for i, axis := range vAxes {
		vdims[i] = v.Shape().Dimensions[axis]
	}
	positions := 1
	for _, d := range vdims[1 : 1+spatial] {
		positions *= d
	}
	batch, inC, outC := vdims[0], xt.Shape().Dimensions[1], vdims[1+spatial]
	inG, outG := inC/groups, outC/groups // channels per group
	depthwise := groups > 1 && inG == 1 && outG == 1
	// product(xk) is one offset's gradient, for the input read there as
	// [N, I, positions]: [I, O] without groups, [G, I/G, O/G] with, [C]
	// depthwise.
	var product func(xk *Node) *Node
	switch {
	case depthwise:
		vc := Reshape(transposeTo(v, append([]int{a.OutputBatch, a.OutputChannels}, a.OutputSpatial...)), batch, outC, positions)
		product = func(xk *Node) *Node { return ReduceSum(Mul(xk, vc), 0, 2) }
	case groups > 1:
		vt := transposeTo(v, vAxes)
		vg := TransposeAllDims(Reshape(vt, batch, positions, groups, outG), 0, 2, 1, 3) // [N, G, positions, O/G]
		product = func(xk *Node) *Node {
			xg := Reshape(xk, batch, groups, inG, positions)
			return ReduceSum(DotGeneral(xg, []int{3}, []int{0, 1}, vg, []int{2}, []int{0, 1}), 0)
		}
	default:
		vt := Reshape(transposeTo(v, vAxes), batch, positions, outC)
		product = func(xk *Node) *Node { return ReduceSum(DotGeneral(xk, []int{2}, []int{0}, vt, []int{1}, []int{0}), 0) }
	}
	pads := make([]compute.PadAxis, xt.Rank())
	for j := range spatial {
		if j < len(p.paddings) {
			pads[2+j] = compute.PadAxis{Start: p.paddings[j][0], End: p.paddings[j][1]}
		}
	}
	xp := padWith(xt, ScalarZero(x.Graph(), x.DType()), pads)
	size := make([]int, spatial) // the kernel's spatial dimensions
	for j, axis := range a.KernelSpatial {
		size[j] = kernel.Shape().Dimensions[axis]
	}
	offset := make([]int, spatial)
	var parts []*Node
	for {
		at := make([]SliceAxisSpec, xp.Rank())
		at[0], at[1] = AxisRange(), AxisRange()
		for j := range spatial {
			s, start := atLeastOne(p.strides, j), offset[j]*atLeastOne(p.kernelDilations, j)
			at[2+j] = AxisRange(start, start+(vdims[1+j]-1)*s+1).Stride(s)
		}
		parts = append(parts, product(Reshape(Slice(xp, at...), batch, inC, positions)))
		if !nextOffset(offset, size) {
			break
		}
	}
	// The offsets stacked last, then as [O, I/G, spatial...] (inOut: [I,
	// O, spatial...]), then in the kernel's layout.
	var g *Node
	inOut := false
	switch {
	case depthwise:
		g = Stack(parts, 1) // [C, offsets]
	case groups > 1:
		g = TransposeAllDims(Stack(parts, 3), 0, 2, 1, 3) // [G, O/G, I/G, offsets]
	default:
		g, inOut = Stack(parts, 2), true // [I, O, offsets]
	}
	if inOut {
		g = Reshape(g, append([]int{inC, outC}, size...)...)
	} else {
		g = Reshape(g, append([]int{outC, inG}, size...)...)
	}
	perm := make([]int, kernel.Rank())
	perm[a.KernelOutputChannels], perm[a.KernelInputChannels] = 0, 1
	if inOut {
		perm[a.KernelOutputChannels], perm[a.KernelInputChannels] = 1, 0
	}
	for j, axis := range a.KernelSpatial {
		perm[axis] = 2 + j
	}
	return transposeTo(g, perm)
}

// groupedInputGradient is the gradient of a stride-1 grouped convolution
// (parameters p but for their strides) with respect to its input, for
// the output's gradient v: a grouped convolution of v by the kernel
// reversed in space, each group's input and output channels swapped,
// padded so that it has the input's size. GoMLX's own is one convolution
// per group. nil when a padding exceeds the kernel's span.
func groupedInputGradient(x, kernel, v *Node, p convParams) *Node {
	a := p.axes
	groups, spatial := p.channelGroupCount, len(a.InputSpatial)
	kt := transposeTo(kernel, append([]int{a.KernelOutputChannels, a.KernelInputChannels}, a.KernelSpatial...))
	kd := kt.Shape().Dimensions
	outC, inG := kd[0], kd[1]
	outG, size := outC/groups, kd[2:]
	// [G, O/G, I/G, k...] -> [G, I/G, O/G, k...] -> [I, O/G, k...], reversed.
	perm := []int{0, 2, 1}
	reversed := make([]int, spatial)
	for j := range spatial {
		perm = append(perm, 3+j)
		reversed[j] = 2 + j
	}
	kt = Reshape(kt, append([]int{groups, outG, inG}, size...)...)
	kt = Reshape(TransposeAllDims(kt, perm...), append([]int{groups * inG, outG}, size...)...)
	kt = Reverse(kt, reversed...)
	pads := make([][2]int, spatial)
	kernelSpatial := make([]int, spatial)
	for j := range spatial {
		span := (size[j]-1)*atLeastOne(p.kernelDilations, j) + 1
		var lo, hi int
		if j < len(p.paddings) {
			lo, hi = p.paddings[j][0], p.paddings[j][1]
		}
		if lo > span-1 || hi > span-1 {
			return nil
		}
		pads[j] = [2]int{span - 1 - lo, span - 1 - hi}
		kernelSpatial[j] = 2 + j
	}
	axes := compute.ConvolveAxesConfig{
		InputBatch: a.OutputBatch, InputChannels: a.OutputChannels, InputSpatial: a.OutputSpatial,
		KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: kernelSpatial,
		OutputBatch: a.InputBatch, OutputChannels: a.InputChannels, OutputSpatial: a.InputSpatial,
	}
	dx := ConvGeneral(v, kt, axes, nil, pads, nil, p.kernelDilations, groups, 1)
	if !dx.Shape().Equal(x.Shape()) {
		return nil
	}
	return dx
}

// atLeastOne is values[j], or 1 where values has none or not a positive
// one (strides and dilations).
func atLeastOne(values []int, j int) int {
	if j < len(values) && values[j] > 0 {
		return values[j]
	}
	return 1
}

// transposeTo returns x with its axes in the order given (axis i of the
// result is x's axis order[i]); x itself when that is its order.
func transposeTo(x *Node, order []int) *Node {
	for i, axis := range order {
		if i != axis {
			return TransposeAllDims(x, order...)
		}
	}
	return x
}

// kernelGradientByConvolution is kernelGradient's for few input channels
// and a strided convolution (parameters p, no groups, no kernel dilation):
// a convolution of the input by v, the batch axis contracted (the input's
// channels as its batch), v's values dilated by the strides (a kernel
// dilation, which ONNX's Conv has), read at each kernel offset. nil when p
// is not of that kind.
func kernelGradientByConvolution(x, kernel, v *Node, p convParams) *Node {
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

// nextOffset advances offset to the next position of a window of size
// (row-major, in place); false after the last.
func nextOffset(offset, size []int) bool {
	for i := len(offset) - 1; i >= 0; i-- {
		if offset[i]++; offset[i] < size[i] {
			return true
		}
		offset[i] = 0
	}
	return false
}
