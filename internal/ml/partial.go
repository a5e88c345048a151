package ml

import (
	"context"
	"fmt"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"github.com/gomlx/gomlx/ml/model"
	"google.golang.org/protobuf/proto"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// Partial is an ONNX classifier cut for partial fine-tuning: the last
// stages (see analyseStages) and the classification layer train, the part
// before the cut stays frozen. The frozen part runs in ONNX Runtime as a
// Backbone whose "features" are the cut tensor's values, flattened, so
// that head-only training's extraction and cache serve it unchanged; the
// suffix from the cut to the output is an Imported model that trains on
// them in GoMLX. Export writes the suffix's trained weights back into the
// whole graph.
type Partial struct {
	Spec ImportSpec
	// Stages is how many stages the graph has; Unfrozen of them train.
	Stages, Unfrozen int
	// Cut is the tensor the frozen part ends with, and CutShape one
	// image's values of it.
	Cut      string
	CutShape InputShape
	// Frozen is the part before the cut; Suffix the part that trains.
	Frozen *Backbone
	Suffix *Imported

	// full is the whole graph as prepared for training (rewrites, new
	// head), which Export fills with the trained weights.
	full []byte
}

// partialFeature names the frozen part's output: the cut tensor flattened.
const partialFeature = "shoal_frozen_part"

// NewPartial prepares the ONNX classifier in data (as ImportONNX does, with
// a new head if newHead) for training its last unfrozen stages and its
// classification layer. ONNX Runtime (rt) runs the frozen part once to
// learn the cut tensor's shape. A graph without stages, or unfrozen outside
// 1 to its stages less one, is an error wrapping ErrImport that says why.
func NewPartial(rt onnxrt.Config, data []byte, spec ImportSpec, numClasses int, newHead bool, seed int64, unfrozen int) (*Partial, error) {
	mp, rewrites, err := readClassifier(data, spec)
	if err != nil {
		return nil, err
	}
	g := mp.GetGraph()
	h, err := findHead(g, spec.OutputName)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	if h.classes != spec.Classes {
		return nil, fmt.Errorf("%w: the classification layer %s has %d outputs, but the base version has %d labels", ErrImport, h.describe(), h.classes, spec.Classes)
	}
	if !newHead && numClasses != h.classes {
		return nil, fmt.Errorf("%w: the model has %d classes, this run %d; a new head is needed", ErrImport, h.classes, numClasses)
	}
	info, err := analyseStages(g, h.node.GetInput()[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	stages := len(info.factors)
	if stages < 2 {
		return nil, fmt.Errorf("%w: its graph has %d stage(s) (runs at one spatial resolution) before the classification layer %s; unfreezing the last stages needs at least 2",
			ErrImport, stages, h.describe())
	}
	if unfrozen < 1 || unfrozen >= stages {
		return nil, fmt.Errorf("%w: %d unfrozen stages: the graph has %d stages (downsampling factors %v), so from 1 to %d can train while the first stays frozen",
			ErrImport, unfrozen, stages, info.factors, stages-1)
	}
	cut := info.cuts[stages-unfrozen-1]
	if cut == "" {
		return nil, fmt.Errorf("%w: no single tensor separates the last %d stages from the rest of the graph, so there is nowhere to cut it", ErrImport, unfrozen)
	}
	if newHead {
		if err := h.replace(g, numClasses, seed); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrImport, err)
		}
	}
	p := &Partial{Spec: spec, Stages: stages, Unfrozen: unfrozen, Cut: cut}
	if p.full, err = proto.Marshal(mp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}

	// The frozen part, first with the cut tensor as it is, to learn its
	// shape, then flattened to [N, features] as the extractor reads it.
	float := &onnxpb.ValueInfoProto{Name: cut, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT)}}}}
	prefix, err := cutBefore(g, cut, float)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	probe, err := proto.Marshal(&onnxpb.ModelProto{IrVersion: mp.GetIrVersion(), OpsetImport: mp.GetOpsetImport(), Graph: prefix})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	r, err := onnxrt.Load(rt)
	if err != nil {
		return nil, err
	}
	s := spec.Shape
	in := []int64{1, int64(s.Channels), int64(s.Height), int64(s.Width)}
	if spec.NHWC {
		in = []int64{1, int64(s.Height), int64(s.Width), int64(s.Channels)}
	}
	dims, err := r.OutputShape(probe, spec.InputName, in, cut)
	if err != nil {
		return nil, fmt.Errorf("%w: ONNX Runtime cannot run the part before the cut at %q: %v", ErrImport, cut, err)
	}
	if len(dims) != 4 || dims[0] != 1 {
		return nil, fmt.Errorf("%w: the cut tensor %q has shape %v for one image, want [1, C, H, W]", ErrImport, cut, dims)
	}
	p.CutShape = InputShape{Channels: int(dims[1]), Height: int(dims[2]), Width: int(dims[3])}
	features := int64(p.CutShape.Size())
	prefix.Node = append(prefix.Node, &onnxpb.NodeProto{OpType: "Flatten", Name: partialFeature, Input: []string{cut}, Output: []string{partialFeature},
		Attribute: []*onnxpb.AttributeProto{{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 1}}})
	prefix.Output = []*onnxpb.ValueInfoProto{matrix(partialFeature, features)}
	frozen, err := proto.Marshal(&onnxpb.ModelProto{IrVersion: mp.GetIrVersion(), OpsetImport: mp.GetOpsetImport(),
		ProducerName: "shoal frozen part of " + mp.GetProducerName(), Graph: prefix})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	p.Frozen = &Backbone{Spec: spec, Features: int(features), Head: h.describe(), FeatureTensor: partialFeature,
		graph: frozen, name: g.GetName(), producer: mp.GetProducerName(), probabilities: h.softmax, shape: p.CutShape}

	suffix, err := cutAfter(g, cut, p.CutShape)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	graph, err := proto.Marshal(&onnxpb.ModelProto{IrVersion: mp.GetIrVersion(), OpsetImport: mp.GetOpsetImport(), Graph: suffix})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	p.Suffix = &Imported{
		Spec:       ImportSpec{Shape: p.CutShape, InputName: cut, OutputName: spec.OutputName, Classes: numClasses},
		NumClasses: numClasses, Head: h.describe(), Rewrites: rewrites,
		graph: graph, logits: h.logits, headWeight: h.weight, headBias: h.bias, probabilities: h.softmax, frozen: frozenInits(suffix),
	}
	return p, nil
}

// cutAfter returns the part of g from the tensor cut (its input, declared
// [N, shape]) to g's output: the nodes and initialisers the output needs
// that the cut does not already give.
func cutAfter(g *onnxpb.GraphProto, cut string, shape InputShape) (*onnxpb.GraphProto, error) {
	producer := map[string]int{}
	for i, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = i
		}
	}
	input := g.GetInput()[0].GetName()
	keep := make([]bool, len(g.GetNode()))
	used := map[string]bool{}
	stack := []string{g.GetOutput()[0].GetName()}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if used[name] || name == cut {
			continue
		}
		if name == input {
			return nil, fmt.Errorf("the graph's output reads its input other than through %q: the cut does not separate the stages", cut)
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
	dim := func(v int) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}}
	}
	batch := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: ONNXBatchDim}}
	in := &onnxpb.ValueInfoProto{Name: cut, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: &onnxpb.TensorShapeProto{
			Dim: []*onnxpb.TensorShapeProto_Dimension{batch, dim(shape.Channels), dim(shape.Height), dim(shape.Width)}}}}}}
	out := &onnxpb.GraphProto{Name: g.GetName() + "_trained_part", Input: []*onnxpb.ValueInfoProto{in}, Output: g.GetOutput()}
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
	return out, nil
}

// TrainPartial trains p's unfrozen stages and classification layer on the
// frozen part's outputs: train and val hold one per image (shape
// p.CutShape, see Backbone.Extractor), cfg the usual hyper-parameters
// (Architecture, Base, NewHead and Import are ignored). With cfg.Augment
// active, aug supplies the training images whose augmented frozen outputs
// each epoch trains on instead (as TrainHead's). The result's model is the
// suffix, for p.Export.
func TrainPartial(ctx context.Context, cfg Config, p *Partial, train, val *Data, aug *HeadAugmentation) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if p.Suffix.NumClasses != cfg.NumClasses {
		return nil, fmt.Errorf("the model has %d classes, this run %d", p.Suffix.NumClasses, cfg.NumClasses)
	}
	for _, d := range []*Data{train, val} {
		if d == nil {
			continue
		}
		if err := d.Validate(cfg.NumClasses); err != nil {
			return nil, fmt.Errorf("frozen part's outputs: %w", err)
		}
		if d.Shape != p.CutShape {
			return nil, fmt.Errorf("frozen part's outputs are %s, the cut %q is %s", d.Shape, p.Cut, p.CutShape)
		}
	}
	if train.Len() < cfg.BatchSize {
		return nil, fmt.Errorf("%d training images is fewer than one batch of %d", train.Len(), cfg.BatchSize)
	}
	epochData, err := augmentedFeatures(&cfg, train, aug)
	if err != nil {
		return nil, err
	}
	backend, err := NewBackend(cfg.Backend)
	if err != nil {
		return nil, err
	}
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, cfg.Seed)
	m := &Model{Arch: importedArch(), Shape: p.CutShape, NumClasses: cfg.NumClasses, backend: backend, store: store, ownsBackend: true}
	if err := newImportedModel(m, p.Suffix); err != nil {
		m.Close()
		return nil, err
	}
	res, err := fitEpochs(ctx, cfg, m, train, val, epochData)
	if err != nil {
		m.Close()
		return nil, err
	}
	return res, nil
}

// Export writes the trained suffix's weights (a TrainPartial model) into
// the whole graph: the frozen part's initialisers stay the base's bytes.
func (p *Partial) Export(m *Model) ([]byte, error) {
	if m.imp != p.Suffix {
		return nil, fmt.Errorf("the model is not this partial fine-tuning's trained part")
	}
	trained, err := m.exportImported()
	if err != nil {
		return nil, err
	}
	var suffix, full onnxpb.ModelProto
	if err := proto.Unmarshal(trained, &suffix); err != nil {
		return nil, fmt.Errorf("reading the trained part: %w", err)
	}
	if err := proto.Unmarshal(p.full, &full); err != nil {
		return nil, fmt.Errorf("reading the whole graph: %w", err)
	}
	weights := map[string]*onnxpb.TensorProto{}
	for _, t := range suffix.GetGraph().GetInitializer() {
		weights[t.GetName()] = t
	}
	g := full.GetGraph()
	replaced := 0
	for i, t := range g.GetInitializer() {
		if w, ok := weights[t.GetName()]; ok {
			g.Initializer[i] = w
			replaced++
		}
	}
	if replaced != len(weights) {
		return nil, fmt.Errorf("%d of the trained part's %d initialisers are not in the whole graph", len(weights)-replaced, len(weights))
	}
	return proto.Marshal(&full)
}

// RunONNX runs a model Export wrote with ONNX Runtime on NCHW images in
// [0, 1], as serving does, and returns [n*k] probabilities.
func (p *Partial) RunONNX(rt onnxrt.Config, onnxModel []byte, batch int, images []float32) ([]float32, error) {
	imp := &Imported{Spec: p.Spec, NumClasses: p.Suffix.NumClasses, probabilities: p.Suffix.probabilities}
	return imp.RunONNX(rt, onnxModel, batch, images)
}
