package ml

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/onnx-gomlx/onnx"
	"github.com/gomlx/onnx-gomlx/onnx/parser"
	"google.golang.org/protobuf/proto"
)

// ImportedArchitecture names the architecture of a model imported from an
// ONNX file (see ImportONNX): its graph is the file's, not one of
// Architectures().
const ImportedArchitecture = "onnx"

// ErrImport marks an ONNX model that cannot be fine-tuned: the importer
// does not take it, or its classification layer cannot be found.
var ErrImport = errors.New("cannot fine-tune this ONNX model")

// ImportSpec is how an ONNX model takes its images: the base version's
// input spec. Images reach the model as everywhere in this package (NCHW,
// values in [0, 1]); Mean, Std and NHWC are applied in the training graph,
// in front of the imported one, exactly as serving's preprocessing applies
// them in front of the ONNX file.
type ImportSpec struct {
	Shape      InputShape
	Mean, Std  []float32 // empty, one value, or one per channel.
	NHWC       bool
	InputName  string
	OutputName string
	// Classes is the number of labels the base model was registered with.
	Classes int
}

// Imported is an ONNX classifier prepared for fine-tuning: its graph with
// the classification layer located (and replaced, for a new head).
type Imported struct {
	Spec ImportSpec
	// NumClasses is the class count the model is trained for.
	NumClasses int
	// Head describes the classification layer found, for logs.
	Head string
	// Rewrites says how the graph was rewritten for training (see
	// trainableGraph), for logs; the export is the rewritten graph.
	Rewrites []string

	// graph is the (possibly re-headed) ONNX model.
	graph []byte
	// logits is the graph tensor holding the class scores.
	logits string
	// headWeight and headBias are the classification layer's initialisers
	// (headBias may be empty).
	headWeight, headBias string
	// probabilities is set when the graph's output is the Softmax of logits.
	probabilities bool
	// frozen are initialisers training must not change: batch-norm
	// statistics (kept in inference mode, as usual for fine-tuning) and
	// non-float tensors.
	frozen []string
}

// readClassifier parses an ONNX classifier whose one input and one output
// are named as spec says, frees its batch axis and applies the rewrites
// that make it trainable (trainableGraph), returning those rewrites' notes.
// Errors wrap ErrImport.
func readClassifier(data []byte, spec ImportSpec) (*onnxpb.ModelProto, []string, error) {
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, nil, fmt.Errorf("%w: not an ONNX model: %v", ErrImport, err)
	}
	g := mp.GetGraph()
	if g == nil {
		return nil, nil, fmt.Errorf("%w: the ONNX model has no graph", ErrImport)
	}
	if len(g.GetInput()) != 1 || g.GetInput()[0].GetName() != spec.InputName {
		return nil, nil, fmt.Errorf("%w: want one graph input named %q, the graph has %d (%s)", ErrImport, spec.InputName, len(g.GetInput()), valueNames(g.GetInput()))
	}
	if len(g.GetOutput()) != 1 || g.GetOutput()[0].GetName() != spec.OutputName {
		return nil, nil, fmt.Errorf("%w: want one graph output named %q, the graph has %d (%s)", ErrImport, spec.OutputName, len(g.GetOutput()), valueNames(g.GetOutput()))
	}
	batchFreed, err := freeBatch(g)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	return mp, trainableGraph(mp, batchFreed), nil
}

// ImportONNX reads an ONNX classifier for fine-tuning with numClasses
// classes. The classification layer is the Gemm, MatMul or MatMul+Add
// (with constant weights) that produces the graph's output, possibly
// through a final Softmax; training uses its scores as logits, while the
// export keeps the graph's output as it was. With newHead, that layer gets
// fresh weights (seeded) for numClasses classes, as a fine-tuning run with
// other labels needs. Errors wrap ErrImport.
func ImportONNX(data []byte, spec ImportSpec, numClasses int, newHead bool, seed int64) (*Imported, error) {
	mp, rewrites, err := readClassifier(data, spec)
	if err != nil {
		return nil, err
	}
	g := mp.GetGraph()
	head, err := findHead(g, spec.OutputName)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	if head.classes != spec.Classes {
		return nil, fmt.Errorf("%w: the classification layer %s has %d outputs, but the base version has %d labels", ErrImport, head.describe(), head.classes, spec.Classes)
	}
	if !newHead && numClasses != head.classes {
		return nil, fmt.Errorf("%w: the model has %d classes, this run %d; a new head is needed", ErrImport, head.classes, numClasses)
	}
	if newHead {
		if err := head.replace(g, numClasses, seed); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrImport, err)
		}
	}
	graph, err := proto.Marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImport, err)
	}
	imp := &Imported{Spec: spec, NumClasses: numClasses, Head: head.describe(), Rewrites: rewrites, graph: graph, logits: head.logits,
		headWeight: head.weight, headBias: head.bias, probabilities: head.softmax, frozen: frozenInits(g)}
	return imp, nil
}

func valueNames(vs []*onnxpb.ValueInfoProto) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = fmt.Sprintf("%q", v.GetName())
	}
	return strings.Join(names, ", ")
}

// freeBatch makes the batch dimension of the graph's input and output
// symbolic when it is fixed at 1 (PyTorch's export without dynamic axes):
// training runs batches, and the exported file then takes any batch size.
// It reports whether it did. Reshapes to a batch of 1 are then rewritten
// (see trainableGraph); a graph that depends on a batch of 1 otherwise
// fails the build check (CheckImport).
func freeBatch(g *onnxpb.GraphProto) (bool, error) {
	changed := false
	for _, v := range []*onnxpb.ValueInfoProto{g.GetInput()[0], g.GetOutput()[0]} {
		dims := v.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) == 0 {
			return false, fmt.Errorf("the graph tensor %q has no declared shape", v.GetName())
		}
		switch d := dims[0]; {
		case d.GetDimParam() != "" || d.GetValue() == nil:
		case d.GetDimValue() == 1:
			d.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: ONNXBatchDim}
			changed = true
		default:
			return false, fmt.Errorf("the graph tensor %q has a fixed batch dimension of %d", v.GetName(), d.GetDimValue())
		}
	}
	if changed {
		// Intermediate shapes annotated for a batch of 1 would now be wrong.
		g.ValueInfo = nil
	}
	return changed, nil
}

// head is a located classification layer: logits = x·W (+ b).
type head struct {
	node       *onnxpb.NodeProto // Gemm or MatMul
	add        *onnxpb.NodeProto // the Add of MatMul+Add, if any
	weight     string            // initialiser of W
	bias       string            // initialiser of b, if any
	transposed bool              // W is [K, F] (Gemm transB=1), else [F, K]
	features   int64
	classes    int
	logits     string
	softmax    bool
}

func (h *head) describe() string {
	s := h.node.GetOpType()
	if h.add != nil {
		s += "+Add"
	}
	s = fmt.Sprintf("%s %q (%d features -> %d classes)", s, h.node.GetName(), h.features, h.classes)
	if h.softmax {
		s += " + Softmax"
	}
	return s
}

// findHead walks back from the graph output to its classification layer.
func findHead(g *onnxpb.GraphProto, output string) (*head, error) {
	producer := map[string]*onnxpb.NodeProto{}
	consumers := map[string]int{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
		for _, in := range n.GetInput() {
			consumers[in]++
		}
	}
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
	}
	h := &head{logits: output}
	n := producer[output]
	if n != nil && n.GetOpType() == "Softmax" {
		h.softmax = true
		h.logits = n.GetInput()[0]
		n = producer[h.logits]
	}
	if n != nil && n.GetOpType() == "Add" && len(n.GetInput()) == 2 {
		for i, in := range n.GetInput() {
			if p := producer[in]; p != nil && p.GetOpType() == "MatMul" && inits[n.GetInput()[1-i]] != nil {
				h.add, h.bias, n = n, n.GetInput()[1-i], p
				break
			}
		}
	}
	if n == nil {
		return nil, fmt.Errorf("the graph output %q is not computed by a node", output)
	}
	switch n.GetOpType() {
	case "Gemm":
		if len(n.GetInput()) == 3 {
			h.bias = n.GetInput()[2]
		}
		for _, a := range n.GetAttribute() {
			switch a.GetName() {
			case "transB":
				h.transposed = a.GetI() == 1
			case "transA":
				if a.GetI() != 0 {
					return nil, fmt.Errorf("the final Gemm %q transposes its input (transA=1); not a recognised classification layer", n.GetName())
				}
			case "alpha", "beta":
				if a.GetF() != 1 {
					return nil, fmt.Errorf("the final Gemm %q scales by %s=%g; not a recognised classification layer", n.GetName(), a.GetName(), a.GetF())
				}
			}
		}
	case "MatMul":
	default:
		return nil, fmt.Errorf("no classification layer found: the output %q comes from a %s node %q, want Gemm, MatMul or MatMul+Add (optionally followed by Softmax)",
			output, n.GetOpType(), n.GetName())
	}
	h.node = n
	h.weight = n.GetInput()[1]
	w := inits[h.weight]
	if w == nil || len(w.GetDims()) != 2 {
		return nil, fmt.Errorf("the classification layer %q has no constant 2-D weight matrix", n.GetName())
	}
	k, f := w.GetDims()[1], w.GetDims()[0]
	if h.transposed {
		k, f = f, k
	}
	h.classes, h.features = int(k), f
	if h.bias != "" {
		b := inits[h.bias]
		if b == nil || numElements(b.GetDims()) != k {
			return nil, fmt.Errorf("the classification layer %q has no constant bias of %d values", n.GetName(), k)
		}
	}
	for _, name := range []string{h.weight, h.bias} {
		if name != "" && consumers[name] > 1 {
			return nil, fmt.Errorf("the weights %q of the classification layer %q are shared with other nodes", name, n.GetName())
		}
	}
	if h.softmax {
		if err := checkLastAxis(producer[output]); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func checkLastAxis(softmax *onnxpb.NodeProto) error {
	for _, a := range softmax.GetAttribute() {
		if a.GetName() == "axis" && a.GetI() != 1 && a.GetI() != -1 {
			return fmt.Errorf("the final Softmax %q is over axis %d, not the classes", softmax.GetName(), a.GetI())
		}
	}
	return nil
}

func numElements(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// replace gives the head fresh weights for k classes: Glorot-uniform W and
// zero b, and fixes the class dimension of the declared shapes.
func (h *head) replace(g *onnxpb.GraphProto, k int, seed int64) error {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x4ead))
	limit := math.Sqrt(6 / float64(h.features+int64(k)))
	for _, t := range g.GetInitializer() {
		switch t.GetName() {
		case h.weight:
			if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
				return fmt.Errorf("the classification layer's weights are not float32")
			}
			dims := []int64{h.features, int64(k)}
			if h.transposed {
				dims = []int64{int64(k), h.features}
			}
			setFloats(t, dims, func() float32 { return float32((rng.Float64()*2 - 1) * limit) })
		case h.bias:
			if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
				return fmt.Errorf("the classification layer's bias is not float32")
			}
			dims := slicesClone(t.GetDims())
			dims[len(dims)-1] = int64(k)
			setFloats(t, dims, func() float32 { return 0 })
		}
	}
	// Declared shapes of the scores and the output now have k classes; drop
	// intermediate annotations rather than keep wrong ones.
	kept := g.GetValueInfo()[:0]
	for _, v := range g.GetValueInfo() {
		if v.GetName() != h.logits && v.GetName() != g.GetOutput()[0].GetName() {
			kept = append(kept, v)
		}
	}
	g.ValueInfo = kept
	dims := g.GetOutput()[0].GetType().GetTensorType().GetShape().GetDim()
	if len(dims) != 2 {
		return fmt.Errorf("the graph output has rank %d, want [N, classes]", len(dims))
	}
	dims[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(k)}
	return nil
}

func slicesClone(v []int64) []int64 { return append([]int64(nil), v...) }

// setFloats replaces t's contents by values of the given dims.
func setFloats(t *onnxpb.TensorProto, dims []int64, value func() float32) {
	n := numElements(dims)
	raw := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(value()))
	}
	t.Dims, t.RawData, t.FloatData = dims, raw, nil
}

// frozenInits lists the initialisers training keeps: batch-norm
// statistics and anything that is not a float tensor (shapes, indices).
func frozenInits(g *onnxpb.GraphProto) []string {
	var out []string
	for _, n := range g.GetNode() {
		if n.GetOpType() == "BatchNormalization" && len(n.GetInput()) == 5 {
			out = append(out, n.GetInput()[3], n.GetInput()[4])
		}
	}
	for _, t := range g.GetInitializer() {
		switch onnxpb.TensorProto_DataType(t.GetDataType()) {
		case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16:
		default:
			out = append(out, t.GetName())
		}
	}
	return out
}

// importScope is where the imported graph's variables live in a Model's
// store (onnx-gomlx puts them under onnx.ModelScope below it).
const importScope = "model"

// onnxVarName is onnx-gomlx's name for an initialiser's variable.
func onnxVarName(name string) string { return strings.ReplaceAll(name, model.ScopeSeparator, "|") }

// newImportedModel creates a Model whose network is imp's ONNX graph, its
// weights loaded into the store.
func newImportedModel(m *Model, imp *Imported) error {
	var om onnx.Model
	err := catch(func() error {
		var err error
		if om, err = parser.Parse(imp.graph); err != nil {
			return err
		}
		return om.VariablesToScope(m.store.RootScope().In(importScope))
	})
	if err != nil {
		return fmt.Errorf("%w: the importer does not take it: %v", ErrImport, err)
	}
	vars := m.store.RootScope().In(importScope).At(onnx.ModelScope)
	for _, name := range imp.frozen {
		if v := vars.GetVariable(onnxVarName(name)); v != nil {
			v.SetTrainable(false)
		}
	}
	m.onnx, m.imp = om, imp
	return nil
}

// inHead reports whether v belongs to the model's classification layer:
// the imported head's initialisers, or a Shoal architecture's head scope.
func (m *Model) inHead(v *model.Variable) bool {
	if m.imp == nil {
		return strings.HasPrefix(v.Path(), headScope)
	}
	name := v.Name()
	return name == onnxVarName(m.imp.headWeight) || (m.imp.headBias != "" && name == onnxVarName(m.imp.headBias))
}

// importedLogits is the training graph of an imported model: the base's
// normalisation and layout, then its ONNX graph up to the class scores.
func (m *Model) importedLogits(scope *model.Scope, x *Node) *Node {
	x = m.importedInput(x)
	out := m.onnx.CallGraph(scope.In(importScope), x.Graph(), map[string]*Node{m.imp.Spec.InputName: x}, m.imp.logits)
	logits := out[0]
	if logits.DType() != dtypes.Float32 {
		logits = ConvertDType(logits, dtypes.Float32)
	}
	return logits
}

// importedInput is images as the imported graph takes them.
func (m *Model) importedInput(x *Node) *Node {
	spec := m.imp.Spec
	c := m.Shape.Channels
	if len(spec.Mean) > 0 {
		x = Sub(x, Reshape(Const(x.Graph(), perChannel(spec.Mean, c)), 1, c, 1, 1))
	}
	if len(spec.Std) > 0 {
		x = Div(x, Reshape(Const(x.Graph(), perChannel(spec.Std, c)), 1, c, 1, 1))
	}
	if spec.NHWC {
		x = TransposeAllDims(x, 0, 2, 3, 1)
	}
	return x
}

func perChannel(v []float32, c int) []float32 {
	if len(v) == c {
		return v
	}
	out := make([]float32, c)
	for i := range out {
		out[i] = v[0]
	}
	return out
}

func importedArch() Architecture {
	return Architecture{Name: ImportedArchitecture, Description: "a model imported from ONNX"}
}

// exportImported writes the trained variables back into the imported ONNX
// graph: the base model's graph, input and output, with new weights.
func (m *Model) exportImported() ([]byte, error) {
	var out bytes.Buffer
	err := catch(func() error {
		if err := m.onnx.ScopeToONNX(m.store.RootScope().In(importScope)); err != nil {
			return err
		}
		return m.onnx.Write(&out)
	})
	if err != nil {
		return nil, fmt.Errorf("writing the trained weights into the ONNX model: %w", err)
	}
	return out.Bytes(), nil
}
