// Long file: an exact evaluator of the integer operators PyTorch's exports
// compute from constants (one small interpreter per operator), kept together.

package ml

import (
	"encoding/binary"
	"fmt"
	"slices"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
)

// PyTorch computes some integer tensors in the graph from constants alone:
// F.pad's pads are a chain of ConstantOfShape, Concat, Reshape, a Slice
// that reverses, Transpose and Cast. The importer evaluates such chains on
// its own, and got that one wrong (the reversing Slice), padding nothing.
// foldConstants evaluates them here instead, exactly, and leaves the graph
// a Constant per result.

// intTensor is an integer tensor of an ONNX graph, row-major.
type intTensor struct {
	dims []int64
	v    []int64
}

func (t intTensor) size() int64 { return numElements(t.dims) }

// strides are t's row-major strides.
func (t intTensor) strides() []int64 {
	s := make([]int64, len(t.dims))
	n := int64(1)
	for i := len(t.dims) - 1; i >= 0; i-- {
		s[i] = n
		n *= t.dims[i]
	}
	return s
}

// index returns the flat index of the multi-index idx.
func flatIndex(idx, strides []int64) int64 {
	var f int64
	for i, x := range idx {
		f += x * strides[i]
	}
	return f
}

// next advances idx over dims in row-major order; false at the end.
func next(idx, dims []int64) bool {
	for i := len(idx) - 1; i >= 0; i-- {
		idx[i]++
		if idx[i] < dims[i] {
			return true
		}
		idx[i] = 0
	}
	return false
}

// intFromProto reads an INT64 or INT32 tensor; ok is false for other types.
func intFromProto(t *onnxpb.TensorProto) (intTensor, bool) {
	out := intTensor{dims: slices.Clone(t.GetDims())}
	n := out.size()
	raw := t.GetRawData()
	switch onnxpb.TensorProto_DataType(t.GetDataType()) {
	case onnxpb.TensorProto_INT64:
		if raw != nil {
			if int64(len(raw)) != 8*n {
				return intTensor{}, false
			}
			for i := range n {
				out.v = append(out.v, int64(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		} else {
			out.v = slices.Clone(t.GetInt64Data())
		}
	case onnxpb.TensorProto_INT32:
		if raw != nil {
			if int64(len(raw)) != 4*n {
				return intTensor{}, false
			}
			for i := range n {
				out.v = append(out.v, int64(int32(binary.LittleEndian.Uint32(raw[4*i:]))))
			}
		} else {
			for _, x := range t.GetInt32Data() {
				out.v = append(out.v, int64(x))
			}
		}
	default:
		return intTensor{}, false
	}
	if int64(len(out.v)) != n || t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return intTensor{}, false
	}
	return out, true
}

// constantNode writes t as an INT64 Constant node producing name.
func constantNode(name string, t intTensor) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: "Constant", Name: name + "/folded", Output: []string{name}, Attribute: []*onnxpb.AttributeProto{{
		Name: "value", Type: onnxpb.AttributeProto_TENSOR,
		T: &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_INT64), Dims: slices.Clone(t.dims), Int64Data: slices.Clone(t.v)},
	}}}
}

// foldConstants replaces every node computing an integer tensor from
// integer constants alone by a Constant, and drops the nodes no longer
// read. It returns how many nodes it folded.
func foldConstants(g *onnxpb.GraphProto, opset int64) int {
	known := map[string]intTensor{}
	for _, t := range g.GetInitializer() {
		if v, ok := intFromProto(t); ok {
			known[t.GetName()] = v
		}
	}
	folded := 0
	for i, n := range g.GetNode() {
		var in []intTensor
		ok := true
		for _, name := range n.GetInput() {
			if name == "" {
				in = append(in, intTensor{dims: nil, v: nil}) // absent optional input
				continue
			}
			t, found := known[name]
			if !found {
				ok = false
				break
			}
			in = append(in, t)
		}
		if !ok || len(n.GetOutput()) != 1 {
			continue
		}
		out, ok := evalInt(n, in, opset)
		if !ok {
			continue
		}
		known[n.GetOutput()[0]] = out
		if n.GetOpType() != "Constant" {
			g.Node[i] = constantNode(n.GetOutput()[0], out)
			folded++
		}
	}
	if folded > 0 {
		dropUnread(g)
	}
	return folded
}

// dropUnread removes nodes none of whose outputs is read, repeatedly.
func dropUnread(g *onnxpb.GraphProto) {
	for {
		read := map[string]bool{}
		for _, o := range g.GetOutput() {
			read[o.GetName()] = true
		}
		for _, n := range g.GetNode() {
			for _, in := range n.GetInput() {
				read[in] = true
			}
		}
		kept := g.GetNode()[:0]
		for _, n := range g.GetNode() {
			if slices.ContainsFunc(n.GetOutput(), func(o string) bool { return read[o] }) {
				kept = append(kept, n)
			}
		}
		if len(kept) == len(g.GetNode()) {
			return
		}
		g.Node = kept
	}
}

func attrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return def
}

func attrInts(n *onnxpb.NodeProto, name string) ([]int64, bool) {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetInts(), true
		}
	}
	return nil, false
}

// evalInt computes node n on integer inputs; ok is false for an operator
// or case it does not know, which is then left to the importer.
func evalInt(n *onnxpb.NodeProto, in []intTensor, opset int64) (out intTensor, ok bool) {
	defer func() {
		// Malformed shapes (an index out of range) are left to the
		// importer, which reports them.
		if recover() != nil {
			out, ok = intTensor{}, false
		}
	}()
	switch n.GetOpType() {
	case "Constant":
		for _, a := range n.GetAttribute() {
			switch a.GetName() {
			case "value":
				return intFromProto(a.GetT())
			case "value_int":
				return intTensor{v: []int64{a.GetI()}}, true
			case "value_ints":
				return intTensor{dims: []int64{int64(len(a.GetInts()))}, v: slices.Clone(a.GetInts())}, true
			}
		}
	case "ConstantOfShape":
		fill := int64(0)
		for _, a := range n.GetAttribute() {
			if a.GetName() == "value" {
				t, ok := intFromProto(a.GetT())
				if !ok || len(t.v) != 1 {
					return intTensor{}, false
				}
				fill = t.v[0]
			}
		}
		if !hasValueAttr(n) {
			return intTensor{}, false // the default value is a float zero
		}
		out := intTensor{dims: slices.Clone(in[0].v)}
		out.v = make([]int64, out.size())
		for i := range out.v {
			out.v[i] = fill
		}
		return out, true
	case "Cast":
		switch onnxpb.TensorProto_DataType(attrInt(n, "to", 0)) {
		case onnxpb.TensorProto_INT64, onnxpb.TensorProto_INT32:
			return in[0], true
		}
	case "Concat":
		return concatInt(in, attrInt(n, "axis", 0))
	case "Reshape":
		return reshapeInt(in[0], in[1].v)
	case "Transpose":
		perm, found := attrInts(n, "perm")
		if !found {
			for i := len(in[0].dims) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		return transposeInt(in[0], perm), true
	case "Slice":
		if opset < 10 {
			return intTensor{}, false
		}
		var axes, steps []int64
		if len(in) > 3 {
			axes = in[3].v
		}
		if len(in) > 4 {
			steps = in[4].v
		}
		return sliceInt(in[0], in[1].v, in[2].v, axes, steps)
	case "Gather":
		return gatherInt(in[0], in[1], attrInt(n, "axis", 0))
	case "Unsqueeze":
		axes, found := attrInts(n, "axes")
		if !found && len(in) > 1 {
			axes = in[1].v
		}
		return unsqueezeInt(in[0], axes)
	case "Squeeze":
		axes, found := attrInts(n, "axes")
		if !found && len(in) > 1 {
			axes = in[1].v
		}
		return squeezeInt(in[0], axes)
	case "Add", "Sub", "Mul":
		return binaryInt(n.GetOpType(), in[0], in[1])
	}
	return intTensor{}, false
}

func hasValueAttr(n *onnxpb.NodeProto) bool {
	return slices.ContainsFunc(n.GetAttribute(), func(a *onnxpb.AttributeProto) bool { return a.GetName() == "value" })
}

func axisOf(axis int64, rank int) int64 {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		panic(fmt.Sprintf("axis %d out of range for rank %d", axis, rank))
	}
	return axis
}

func concatInt(in []intTensor, axis int64) (intTensor, bool) {
	if len(in) == 0 {
		return intTensor{}, false
	}
	rank := len(in[0].dims)
	axis = axisOf(axis, rank)
	dims := slices.Clone(in[0].dims)
	dims[axis] = 0
	for _, t := range in {
		if len(t.dims) != rank {
			return intTensor{}, false
		}
		dims[axis] += t.dims[axis]
	}
	// Row-major: the outer product of the dims before axis, each followed
	// by every input's block of axis and after.
	outer := numElements(dims[:axis])
	out := intTensor{dims: dims}
	for o := range outer {
		for _, t := range in {
			block := numElements(t.dims[axis:])
			out.v = append(out.v, t.v[o*block:(o+1)*block]...)
		}
	}
	return out, true
}

func reshapeInt(t intTensor, shape []int64) (intTensor, bool) {
	dims := slices.Clone(shape)
	infer := -1
	known := int64(1)
	for i, d := range dims {
		switch {
		case d == 0:
			dims[i] = t.dims[i]
		case d == -1:
			if infer >= 0 {
				return intTensor{}, false
			}
			infer = i
			continue
		case d < 0:
			return intTensor{}, false
		}
		known *= dims[i]
	}
	if infer >= 0 {
		if known == 0 {
			return intTensor{}, false
		}
		dims[infer] = t.size() / known
	}
	if numElements(dims) != t.size() {
		return intTensor{}, false
	}
	return intTensor{dims: dims, v: t.v}, true
}

func transposeInt(t intTensor, perm []int64) intTensor {
	dims := make([]int64, len(perm))
	for i, p := range perm {
		dims[i] = t.dims[p]
	}
	out := intTensor{dims: dims, v: make([]int64, t.size())}
	if t.size() == 0 {
		return out
	}
	src := t.strides()
	idx := make([]int64, len(dims))
	from := make([]int64, len(dims))
	for i := range out.v {
		for j, p := range perm {
			from[p] = idx[j]
		}
		out.v[i] = t.v[flatIndex(from, src)]
		next(idx, dims)
	}
	return out
}

// sliceInt is ONNX Slice (opset 10+), with its clamping of starts and ends.
func sliceInt(t intTensor, starts, ends, axes, steps []int64) (intTensor, bool) {
	rank := len(t.dims)
	if len(axes) == 0 {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if len(steps) == 0 {
		steps = slices.Repeat([]int64{1}, len(starts))
	}
	if len(ends) != len(starts) || len(axes) != len(starts) || len(steps) != len(starts) {
		return intTensor{}, false
	}
	begin := make([]int64, rank)
	step := slices.Repeat([]int64{1}, rank)
	dims := slices.Clone(t.dims)
	for i, a := range axes {
		a = axisOf(a, rank)
		d, s := t.dims[a], steps[i]
		if s == 0 {
			return intTensor{}, false
		}
		start, end := starts[i], ends[i]
		if start < 0 {
			start += d
		}
		if end < 0 {
			end += d // still below -1 for INT64_MIN, PyTorch's "to the start"
		}
		if s > 0 {
			start, end = min(max(start, 0), d), min(max(end, 0), d)
			dims[a] = max(0, (end-start+s-1)/s)
		} else {
			start, end = min(max(start, 0), d-1), min(max(end, -1), d-1)
			dims[a] = max(0, (start-end-s-1)/-s)
		}
		begin[a], step[a] = start, s
	}
	out := intTensor{dims: dims}
	if numElements(dims) == 0 {
		return out, true
	}
	src := t.strides()
	idx := make([]int64, rank)
	from := make([]int64, rank)
	for {
		for i := range idx {
			from[i] = begin[i] + idx[i]*step[i]
		}
		out.v = append(out.v, t.v[flatIndex(from, src)])
		if !next(idx, dims) {
			break
		}
	}
	return out, true
}

func gatherInt(data, indices intTensor, axis int64) (intTensor, bool) {
	rank := len(data.dims)
	axis = axisOf(axis, rank)
	dims := slices.Concat(data.dims[:axis], indices.dims, data.dims[axis+1:])
	outer := numElements(data.dims[:axis])
	inner := numElements(data.dims[axis+1:])
	out := intTensor{dims: dims}
	for o := range outer {
		for _, ix := range indices.v {
			if ix < 0 {
				ix += data.dims[axis]
			}
			if ix < 0 || ix >= data.dims[axis] {
				return intTensor{}, false
			}
			start := (o*data.dims[axis] + ix) * inner
			out.v = append(out.v, data.v[start:start+inner]...)
		}
	}
	return out, true
}

func unsqueezeInt(t intTensor, axes []int64) (intTensor, bool) {
	rank := len(t.dims) + len(axes)
	ones := make([]bool, rank)
	for _, a := range axes {
		ones[axisOf(a, rank)] = true
	}
	var dims []int64
	j := 0
	for i := range rank {
		if ones[i] {
			dims = append(dims, 1)
		} else {
			dims = append(dims, t.dims[j])
			j++
		}
	}
	return intTensor{dims: dims, v: t.v}, true
}

func squeezeInt(t intTensor, axes []int64) (intTensor, bool) {
	drop := make([]bool, len(t.dims))
	for _, a := range axes {
		drop[axisOf(a, len(t.dims))] = true
	}
	var dims []int64
	for i, d := range t.dims {
		if len(axes) == 0 && d == 1 || drop[i] {
			if d != 1 {
				return intTensor{}, false
			}
			continue
		}
		dims = append(dims, d)
	}
	return intTensor{dims: dims, v: t.v}, true
}

// binaryInt is Add, Sub or Mul of tensors of one shape, or with a scalar.
func binaryInt(op string, a, b intTensor) (intTensor, bool) {
	dims := a.dims
	switch {
	case slices.Equal(a.dims, b.dims):
	case b.size() == 1 && len(b.dims) <= len(a.dims):
	case a.size() == 1 && len(a.dims) <= len(b.dims):
		dims = b.dims
	default:
		return intTensor{}, false
	}
	out := intTensor{dims: slices.Clone(dims), v: make([]int64, numElements(dims))}
	at := func(t intTensor, i int) int64 {
		if len(t.v) == 1 {
			return t.v[0]
		}
		return t.v[i]
	}
	for i := range out.v {
		x, y := at(a, i), at(b, i)
		switch op {
		case "Add":
			out.v[i] = x + y
		case "Sub":
			out.v[i] = x - y
		case "Mul":
			out.v[i] = x * y
		}
	}
	return out, true
}
