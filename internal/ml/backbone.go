package ml

import (
	"fmt"
	"slices"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// Backbone is an ONNX classifier split at its classification layer (found
// as ImportONNX finds it): the graph up to that layer's input is the
// backbone, which runs in ONNX Runtime (FeatureExtractor) to compute one
// feature vector per image; head-only training fits a new linear head on
// those features (TrainHead) and ExportHead puts it on the backbone in
// place of the old one.
type Backbone struct {
	Spec ImportSpec
	// Features is the length of the feature vector, the head's input.
	Features int
	// Head describes the classification layer found, for logs.
	Head string
	// FeatureTensor names the head's input in the base graph, the
	// backbone's output.
	FeatureTensor string

	// graph is the backbone cut from the base model (its batch made
	// symbolic); name and producer are the base graph's and model's.
	graph          []byte
	name, producer string
	// probabilities is set when the base's output is the Softmax of its
	// head's scores.
	probabilities bool
	// shape, if set, is the layout of a frozen part's features (see
	// Partial): Features values as [C, H, W].
	shape InputShape
}

// NewBackbone locates the classification layer of the ONNX classifier in
// data (its input and output as spec names them, spec.Classes outputs; see
// locateHead) and cuts the graph before it. The head's input must be a [batch, features]
// matrix, as the Gemm after PyTorch's Flatten is. Errors wrap ErrImport.
func NewBackbone(data []byte, spec ImportSpec) (*Backbone, error) {
	// The same reading and rewrites as ImportONNX's, so the head is found
	// in the same graph, and reshapes to a batch of 1 keep the freed batch.
	mp, _, err := readClassifier(data, spec)
	if err != nil {
		return nil, err
	}
	g := mp.GetGraph()
	h, err := locateHead(g, spec.OutputName)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	if h.classes != spec.Classes {
		return nil, fmt.Errorf("%w: the classification layer %s has %d outputs, but the base version has %d labels", ErrImport, h.describe(), h.classes, spec.Classes)
	}
	feature := h.node.GetInput()[0]
	if feature == g.GetInput()[0].GetName() {
		return nil, fmt.Errorf("%w: the classification layer %s reads the graph's input: there is no backbone to freeze", ErrImport, h.describe())
	}
	cut, err := cutBefore(g, feature, matrix(feature, h.features))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	graph, err := proto.Marshal(&onnxpb.ModelProto{
		IrVersion: mp.GetIrVersion(), OpsetImport: mp.GetOpsetImport(), ProducerName: "shoal backbone of " + mp.GetProducerName(),
		Graph: cut, MetadataProps: mp.GetMetadataProps(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	return &Backbone{Spec: spec, Features: int(h.features), Head: h.describe(), FeatureTensor: feature,
		graph: graph, probabilities: h.softmax, name: g.GetName(), producer: mp.GetProducerName()}, nil
}

// locateHead finds the classification layer as ImportONNX does (findHead),
// or else as MatMul + Add whose bias is computed from constants alone, as
// GoMLX's export (a Shoal-trained version) broadcasts it with Reshape and
// Expand: head-only training replaces the layer whole, so its bias need not
// be an initialiser to write back into.
func locateHead(g *onnxpb.GraphProto, output string) (*head, error) {
	h, err := findHead(g, output)
	if err == nil {
		return h, nil
	}
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
	}
	relaxed := &head{logits: output}
	n := producer[output]
	if n != nil && n.GetOpType() == "Softmax" {
		if cerr := checkLastAxis(n); cerr != nil {
			return nil, cerr
		}
		relaxed.softmax, relaxed.logits = true, n.GetInput()[0]
		n = producer[relaxed.logits]
	}
	if n == nil || n.GetOpType() != "Add" || len(n.GetInput()) != 2 {
		return nil, err
	}
	variable := dependsOnInput(g)
	for i, in := range n.GetInput() {
		mm := producer[in]
		if mm == nil || mm.GetOpType() != "MatMul" || variable[n.GetInput()[1-i]] {
			continue
		}
		w := inits[mm.GetInput()[1]]
		if w == nil || len(w.GetDims()) != 2 {
			continue
		}
		relaxed.node, relaxed.add, relaxed.weight = mm, n, w.GetName()
		relaxed.features, relaxed.classes = w.GetDims()[0], int(w.GetDims()[1])
		return relaxed, nil
	}
	return nil, err
}

// dependsOnInput marks the tensors computed from the graph's input.
func dependsOnInput(g *onnxpb.GraphProto) map[string]bool {
	out := map[string]bool{g.GetInput()[0].GetName(): true}
	for _, n := range g.GetNode() { // nodes are topologically sorted
		for _, in := range n.GetInput() {
			if out[in] {
				for _, o := range n.GetOutput() {
					out[o] = true
				}
				break
			}
		}
	}
	return out
}

// cutBefore returns a copy of g whose one output is the tensor feature,
// declared as output says, keeping only the nodes and initialisers it needs.
func cutBefore(g *onnxpb.GraphProto, feature string, output *onnxpb.ValueInfoProto) (*onnxpb.GraphProto, error) {
	producer := map[string]int{}
	for i, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = i
		}
	}
	if _, ok := producer[feature]; !ok {
		return nil, fmt.Errorf("the head's input %q is not computed by a node", feature)
	}
	keep := make([]bool, len(g.GetNode()))
	used := map[string]bool{}
	stack := []string{feature}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if used[name] {
			continue
		}
		used[name] = true
		i, ok := producer[name]
		if !ok || keep[i] {
			continue
		}
		keep[i] = true
		for _, in := range g.GetNode()[i].GetInput() {
			if in != "" {
				stack = append(stack, in)
			}
		}
	}
	out := &onnxpb.GraphProto{Name: g.GetName() + "_backbone", Input: g.GetInput()}
	for i, n := range g.GetNode() {
		if keep[i] {
			out.Node = append(out.Node, n)
		}
	}
	for _, t := range g.GetInitializer() {
		if used[t.GetName()] {
			out.Initializer = append(out.Initializer, t)
		}
	}
	out.Output = []*onnxpb.ValueInfoProto{output}
	return out, nil
}

// matrix declares a float32 tensor [N, width], N the symbolic batch.
func matrix(name string, width int64) *onnxpb.ValueInfoProto {
	batch := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: ONNXBatchDim}}
	w := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: width}}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{batch, w}}}}}}
}

// Graph is the backbone as an ONNX model: the base's input, and the
// features [N, Features] as its one output, named FeatureTensor.
func (b *Backbone) Graph() []byte { return slices.Clone(b.graph) }

// OutputIsProbabilities reports whether the base's output, and so that of
// ExportHead's model, is probabilities rather than logits.
func (b *Backbone) OutputIsProbabilities() bool { return b.probabilities }

// ExportHead writes a trained head model (TrainHead) onto the backbone in
// place of the base's classification layer: the result is the base model,
// its input and output names as they were, classifying into the head's
// classes with one Gemm on the features (then a Softmax, when the base's
// output is probabilities). The head's feature normalisation is folded into
// its weights.
func (b *Backbone) ExportHead(m *Model) ([]byte, error) {
	if m.Shape.Channels != b.Features {
		return nil, fmt.Errorf("the head takes %d features, the backbone gives %d", m.Shape.Channels, b.Features)
	}
	w, bias, err := m.headWeights()
	if err != nil {
		return nil, err
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(b.graph, &mp); err != nil {
		return nil, fmt.Errorf("reading the backbone: %w", err)
	}
	g := mp.GetGraph()
	k := int64(m.NumClasses)
	weights := &onnxpb.TensorProto{Name: b.Spec.OutputName + "_head_weights", DataType: int32(onnxpb.TensorProto_FLOAT)}
	i := 0
	setFloats(weights, []int64{int64(b.Features), k}, func() float32 { v := w[i]; i++; return v })
	biases := &onnxpb.TensorProto{Name: b.Spec.OutputName + "_head_biases", DataType: int32(onnxpb.TensorProto_FLOAT)}
	j := 0
	setFloats(biases, []int64{k}, func() float32 { v := bias[j]; j++; return v })
	g.Initializer = append(g.Initializer, weights, biases)
	logits := b.Spec.OutputName
	if b.probabilities {
		logits += "_head_logits"
	}
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: "Gemm", Name: b.Spec.OutputName + "_head",
		Input: []string{b.FeatureTensor, weights.GetName(), biases.GetName()}, Output: []string{logits}})
	if b.probabilities {
		g.Node = append(g.Node, &onnxpb.NodeProto{OpType: "Softmax", Name: b.Spec.OutputName + "_head_softmax",
			Input: []string{logits}, Output: []string{b.Spec.OutputName},
			Attribute: []*onnxpb.AttributeProto{{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 1}}})
	}
	g.Name = b.name
	g.Output = []*onnxpb.ValueInfoProto{matrix(b.Spec.OutputName, k)}
	mp.ProducerName = b.producer
	return proto.Marshal(&mp)
}
