package ml

import (
	"fmt"
	"slices"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
)

// Stages of an imported classifier, for partial fine-tuning: a stage is a
// run of the graph at one spatial resolution, the resolution being how much
// the strided convolutions and poolings since the input have downsampled
// it. ResNet's stem, layer1 (with the max pool), layer2, layer3 and layer4
// are five stages; MobileNet's and EfficientNet's blocks group the same
// way. Nothing depends on node names: only operators and their strides.
//
// The cut before a stage is a tensor of the stage before it that every
// path from the input to the classification layer passes through: the end
// of that stage's last residual block (an Add of two computed tensors, and
// the activations right after it), or where the stage has no residual
// block, the last such tensor before the resolution changes.
type stageInfo struct {
	// factors are the stages' downsampling factors, in graph order.
	factors []int64
	// cuts[k-1] is the tensor before stage k (k >= 1), "" when no tensor
	// separates it from the stages before.
	cuts []string
}

// globalFactor marks tensors with no spatial layout left (after global
// pooling, flattening or a matrix product).
const globalFactor = -1

// analyseStages finds the stages of g's graph up to feature, the input of
// its classification layer. Nodes are in topological order (ONNX's rule).
func analyseStages(g *onnxpb.GraphProto, feature string) (*stageInfo, error) {
	input := g.GetInput()[0].GetName()
	variable := dependsOnInput(g)
	consumers := map[string]int{}
	for _, n := range g.GetNode() {
		for _, in := range uniqueInputs(n) {
			if variable[in] {
				consumers[in]++
			}
		}
	}
	factor := map[string]int64{input: 1}
	residual := map[string]bool{}
	live := map[string]bool{input: true}
	arts := []articulation{{tensor: input, factor: 1}}
	info := &stageInfo{}
	firstNode := map[int64]int{} // factor -> len(arts) when its first node came
	for _, n := range g.GetNode() {
		var spatial int64 = globalFactor
		varIns := 0
		for _, in := range n.GetInput() {
			if variable[in] {
				varIns++
				spatial = max(spatial, factor[in])
			}
		}
		if varIns == 0 {
			continue // constants
		}
		f := spatial
		switch op := n.GetOpType(); op {
		case "Conv", "MaxPool", "AveragePool", "LpPool":
			if f != globalFactor {
				stride := int64(1)
				if s, ok := attrInts(n, "strides"); ok {
					for _, v := range s {
						stride = max(stride, v)
					}
				}
				f *= stride
			}
		case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool":
			// Anything else keeps its input's resolution: a reshape or a
			// matrix product may work on channels-last activations
			// (ConvNeXt), and the classification layer, which comes after
			// the stages, is not analysed.
			f = globalFactor
		case "Resize", "Upsample", "ConvTranspose", "DepthToSpace", "SpaceToDepth", "Col2Im":
			return nil, fmt.Errorf("the graph changes resolution with %s (node %q), not only by strided convolutions and pooling: no stage structure to unfreeze by", op, n.GetName())
		case "Add":
			residual[n.GetOutput()[0]] = varIns == 2 && f != globalFactor
		case "Relu", "Clip", "HardSwish", "LeakyRelu", "Elu", "Selu", "Celu", "Gelu":
			residual[n.GetOutput()[0]] = residual[n.GetInput()[0]]
		}
		if f != globalFactor {
			if _, seen := firstNode[f]; !seen {
				firstNode[f] = len(arts)
				info.factors = append(info.factors, f)
			}
		}
		for _, in := range uniqueInputs(n) {
			if variable[in] {
				if consumers[in]--; consumers[in] == 0 {
					delete(live, in)
				}
			}
		}
		for _, o := range n.GetOutput() {
			factor[o] = f
			if consumers[o] > 0 {
				live[o] = true
			}
		}
		if len(live) == 1 {
			for t := range live {
				arts = append(arts, articulation{tensor: t, factor: factor[t], residual: residual[t]})
			}
		}
		if slices.Contains(n.GetOutput(), feature) {
			break
		}
	}
	for k := 1; k < len(info.factors); k++ {
		prev, last, lastResidual := info.factors[k-1], "", ""
		for _, a := range arts[:firstNode[info.factors[k]]] {
			if a.factor == prev {
				last = a.tensor
				if a.residual {
					lastResidual = a.tensor
				}
			}
		}
		if lastResidual != "" {
			last = lastResidual
		}
		info.cuts = append(info.cuts, last)
	}
	return info, nil
}

// articulation is a tensor every path from the input to the classification
// layer passes through.
type articulation struct {
	tensor   string
	factor   int64
	residual bool // it ends a residual block
}

// uniqueInputs are n's non-empty inputs, each once.
func uniqueInputs(n *onnxpb.NodeProto) []string {
	var out []string
	for _, in := range n.GetInput() {
		if in != "" && !slices.Contains(out, in) {
			out = append(out, in)
		}
	}
	return out
}
