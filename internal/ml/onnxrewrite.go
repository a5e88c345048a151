package ml

import (
	"fmt"
	"slices"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// trainableGraph rewrites what PyTorch's exporter writes into operators
// the importer converts and GoMLX differentiates, keeping what the graph
// computes (the export is the rewritten graph, and the tests hold it to
// ONNX Runtime's answers):
//
//   - Identity of an initialiser becomes an initialiser of its own. In eval
//     mode torch.onnx.export keeps one initialiser for parameters of equal
//     value (the zero biases of batch norms folded into convolutions, say)
//     and reads it through an Identity per further use: the model's
//     parameters, which fine-tuning trains apart as the model did.
//   - Identity of anything else, and Dropout at inference whose mask is not
//     read, are dropped: GoMLX has no gradient for Identity.
//   - HardSigmoid, which the importer lacks, becomes Clip(αx+β, 0, 1).
//   - BatchNormalization loses its momentum attribute, which only training
//     with batch statistics reads and the importer refuses.
//   - Optional inputs left empty at the end of a node's inputs are removed.
//   - Integer chains of constants are evaluated (foldConstants).
//   - With batchFreed (see freeBatch), a Reshape of the activations to a
//     constant shape starting with the batch of 1 keeps the batch instead.
//
// It returns what it changed, for the job's log.
func trainableGraph(mp *onnxpb.ModelProto, batchFreed bool) []string {
	g := mp.GetGraph()
	var changes []string
	note := func(n int, format string) {
		if n > 0 {
			changes = append(changes, fmt.Sprintf(format, n))
		}
	}
	untied, dropped := dropIdentities(g)
	note(untied, "%d initialisers shared through Identity nodes copied, one per use")
	note(dropped, "%d Identity or Dropout nodes dropped")
	var kept []*onnxpb.NodeProto
	expanded, momentum := 0, 0
	for _, n := range g.GetNode() {
		// An optional input left out at the end is the same as absent;
		// the importer's Pad takes an empty constant_value for a nil one.
		for len(n.Input) > 0 && n.Input[len(n.Input)-1] == "" {
			n.Input = n.Input[:len(n.Input)-1]
		}
		switch n.GetOpType() {
		case "HardSigmoid":
			kept = append(kept, hardSigmoid(n)...)
			expanded++
			continue
		case "BatchNormalization":
			before := len(n.GetAttribute())
			n.Attribute = slices.DeleteFunc(n.Attribute, func(a *onnxpb.AttributeProto) bool { return a.GetName() == "momentum" })
			if len(n.GetAttribute()) != before {
				momentum++
			}
		}
		kept = append(kept, n)
	}
	g.Node = kept
	note(expanded, "%d HardSigmoid nodes written as Clip(αx+β, 0, 1)")
	note(momentum, "%d BatchNormalization momentum attributes dropped")
	note(foldConstants(g, onnxOpset(mp)), "%d nodes of integer constants evaluated")
	if batchFreed {
		note(keepBatchInReshapes(g), "%d Reshape nodes to a batch of 1 made to keep the batch")
	}
	dropUnusedInitializers(g)
	return changes
}

// onnxOpset is the model's version of the default operator set.
func onnxOpset(mp *onnxpb.ModelProto) int64 {
	for _, o := range mp.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion()
		}
	}
	return 0
}

// dropIdentities removes Identity nodes, and Dropout nodes that compute
// their input (see passThrough): of an initialiser, its copy takes the
// node's output name (untied); of anything else, the node's readers read
// its input (dropped).
func dropIdentities(g *onnxpb.GraphProto) (untied, dropped int) {
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
	}
	graphInput := map[string]bool{}
	for _, v := range g.GetInput() {
		graphInput[v.GetName()] = true
	}
	graphOutput := g.GetOutput()[0].GetName()
	var kept []*onnxpb.NodeProto
	for _, n := range g.GetNode() {
		if !passThrough(n) {
			kept = append(kept, n)
			continue
		}
		in, out := n.GetInput()[0], n.GetOutput()[0]
		switch t := inits[in]; {
		case t != nil && !graphInput[in]:
			c := proto.Clone(t).(*onnxpb.TensorProto)
			c.Name = out
			g.Initializer = append(g.Initializer, c)
			inits[out] = c
			untied++
			continue
		case out != graphOutput:
			renameInputs(g, out, in)
		case graphInput[in]:
			kept = append(kept, n) // the whole graph is this node.
			continue
		default:
			// The graph's output keeps its name: in's producer writes it
			// and in's readers read it.
			for _, p := range g.GetNode() {
				for i, o := range p.GetOutput() {
					if o == in {
						p.Output[i] = out
					}
				}
			}
			renameInputs(g, in, out)
		}
		dropped++
	}
	g.Node = kept
	return untied, dropped
}

// renameInputs makes every node reading from read to instead.
func renameInputs(g *onnxpb.GraphProto, from, to string) {
	for _, n := range g.GetNode() {
		for i, in := range n.GetInput() {
			if in == from {
				n.Input[i] = to
			}
		}
	}
}

// passThrough reports whether n computes its input: Identity, or Dropout
// at inference (no training_mode input) whose mask output nobody needs.
func passThrough(n *onnxpb.NodeProto) bool {
	if len(n.GetInput()) == 0 || len(n.GetOutput()) == 0 {
		return false
	}
	switch n.GetOpType() {
	case "Identity":
		return true
	case "Dropout":
		if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
			return false // training_mode given: it may be on.
		}
		return len(n.GetOutput()) == 1 || n.GetOutput()[1] == ""
	}
	return false
}

// hardSigmoid writes HardSigmoid(x) = max(0, min(1, αx+β)) as Mul, Add and
// Clip with constant operands.
func hardSigmoid(n *onnxpb.NodeProto) []*onnxpb.NodeProto {
	alpha, beta := float32(0.2), float32(0.5)
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "alpha":
			alpha = a.GetF()
		case "beta":
			beta = a.GetF()
		}
	}
	x, y := n.GetInput()[0], n.GetOutput()[0]
	name := func(s string) string { return y + "/hardsigmoid/" + s }
	constant := func(s string, v float32) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: "Constant", Name: name(s), Output: []string{name(s)}, Attribute: []*onnxpb.AttributeProto{{
			Name: "value", Type: onnxpb.AttributeProto_TENSOR,
			T: &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_FLOAT), FloatData: []float32{v}},
		}}}
	}
	return []*onnxpb.NodeProto{
		constant("alpha", alpha), constant("beta", beta), constant("zero", 0), constant("one", 1),
		{OpType: "Mul", Name: name("mul"), Input: []string{x, name("alpha")}, Output: []string{name("scaled")}},
		{OpType: "Add", Name: name("add"), Input: []string{name("scaled"), name("beta")}, Output: []string{name("shifted")}},
		{OpType: "Clip", Name: n.GetName(), Input: []string{name("shifted"), name("zero"), name("one")}, Output: []string{y}},
	}
}

// keepBatchInReshapes rewrites, in a graph exported for a batch of 1, each
// Reshape of activations to a constant shape [1, ...] as a Reshape to
// [0, ...] (0: the input's own first dimension), so that it takes any
// batch. PyTorch writes such Reshapes for x.view(x.size(0), ...) when the
// batch is not dynamic.
func keepBatchInReshapes(g *onnxpb.GraphProto) int {
	consts := map[string]intTensor{}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 {
			if t, ok := evalInt(n, nil, 0); ok {
				consts[n.GetOutput()[0]] = t
			}
		}
	}
	for _, t := range g.GetInitializer() {
		if v, ok := intFromProto(t); ok {
			consts[t.GetName()] = v
		}
	}
	activation := map[string]bool{g.GetInput()[0].GetName(): true}
	var out []*onnxpb.NodeProto
	changed := 0
	for _, n := range g.GetNode() {
		if slices.ContainsFunc(n.GetInput(), func(in string) bool { return activation[in] }) {
			for _, o := range n.GetOutput() {
				activation[o] = true
			}
		}
		if n.GetOpType() == "Reshape" && len(n.GetInput()) == 2 && activation[n.GetInput()[0]] && attrInt(n, "allowzero", 0) == 0 {
			if shape, ok := consts[n.GetInput()[1]]; ok && len(shape.v) > 0 && shape.v[0] == 1 {
				shape = intTensor{dims: shape.dims, v: slices.Clone(shape.v)}
				shape.v[0] = 0
				c := constantNode(n.GetOutput()[0]+"/shape", shape)
				n.Input[1] = c.GetOutput()[0]
				out = append(out, c)
				changed++
			}
		}
		out = append(out, n)
	}
	g.Node = out
	if changed > 0 {
		dropUnread(g)
	}
	return changed
}

// dropUnusedInitializers removes initialisers no node reads (after the
// rewrites): onnx-gomlx would make them variables.
func dropUnusedInitializers(g *onnxpb.GraphProto) {
	read := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			read[in] = true
		}
	}
	g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnxpb.TensorProto) bool { return !read[t.GetName()] })
}
