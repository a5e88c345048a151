package ml

import (
	"encoding/binary"
	"fmt"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"
)

// exportBatch is the batch size the export graph is compiled at. It is
// not 1, so that broadcasts to the batch are visible in the graph (and
// patched by symbolicBatch) rather than hidden as size-1 dimensions.
const exportBatch = 3

// symbolicBatch rewrites an ONNX model compiled at a fixed batch so that
// its batch dimension is the symbolic ONNXBatchDim: the input's and the
// output's first dimension become N, and the shape constants that carry
// the batch are rewritten. A tensor "carries the batch" when it is computed
// from the input. Two kinds of node name shapes with the batch in them:
//
//   - Reshape of a batch-carrying tensor: its target shape starts with
//     batch, which becomes -1 (the rest of the shape is fixed).
//   - Expand whose result meets a batch-carrying tensor (a constant
//     broadcast to the activations' shape, e.g. ReLU's zeros): its target
//     starts with batch, which becomes 1, so the broadcast follows N.
//
// Anything else that would still fix the batch is refused; ExportONNX's
// callers check the result against GoMLX at several batch sizes.
func symbolicBatch(model []byte, batch int64) ([]byte, error) {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(model, &mp); err != nil {
		return nil, fmt.Errorf("reading the exported model: %w", err)
	}
	g := mp.GetGraph()
	if len(g.GetInput()) != 1 || len(g.GetOutput()) != 1 {
		return nil, fmt.Errorf("exported graph has %d inputs and %d outputs; want 1 and 1", len(g.GetInput()), len(g.GetOutput()))
	}
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
	}
	constants := map[string]*onnxpb.TensorProto{}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 {
			for _, a := range n.GetAttribute() {
				if a.GetName() == "value" && a.GetT() != nil {
					constants[n.GetOutput()[0]] = a.GetT()
				}
			}
		}
	}
	batched := map[string]bool{g.GetInput()[0].GetName(): true}
	consumers := map[string][]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() { // nodes are topologically sorted
		for _, in := range n.GetInput() {
			consumers[in] = append(consumers[in], n)
		}
		for _, in := range n.GetInput() {
			if batched[in] {
				for _, out := range n.GetOutput() {
					batched[out] = true
				}
				break
			}
		}
	}
	meetsBatch := func(n *onnxpb.NodeProto) bool {
		for _, c := range consumers[n.GetOutput()[0]] {
			for _, in := range c.GetInput() {
				if batched[in] {
					return true
				}
			}
		}
		return false
	}

	// patch gives node n a fresh shape constant equal to its current one
	// with the first value replaced (a constant may be shared with nodes
	// that are not patched).
	patch := func(n *onnxpb.NodeProto, value int64) error {
		name := n.GetInput()[1]
		t := inits[name]
		if t == nil {
			t = constants[name]
		}
		if t == nil {
			return fmt.Errorf("%s node %q: its shape %q is computed in the graph; only constant shapes can be made batch-dynamic", n.GetOpType(), n.GetName(), name)
		}
		shape, err := int64s(t)
		if err != nil {
			return fmt.Errorf("%s node %q: shape %q: %w", n.GetOpType(), n.GetName(), name, err)
		}
		if len(shape) == 0 || shape[0] != batch {
			return fmt.Errorf("%s node %q meets the batch but its shape %v does not start with the batch %d", n.GetOpType(), n.GetName(), shape, batch)
		}
		shape[0] = value
		fresh := &onnxpb.TensorProto{Name: name + "_batch_" + n.GetOutput()[0], Dims: []int64{int64(len(shape))},
			DataType: int32(onnxpb.TensorProto_INT64), Int64Data: shape}
		g.Initializer = append(g.Initializer, fresh)
		n.Input[1] = fresh.GetName()
		return nil
	}
	for _, n := range g.GetNode() {
		var err error
		switch {
		case n.GetOpType() == "Reshape" && batched[n.GetInput()[0]]:
			err = patch(n, -1)
		case n.GetOpType() == "Expand" && (batched[n.GetInput()[0]] || meetsBatch(n)):
			err = patch(n, 1)
		case batched[firstOutput(n)] && fixesShape(n.GetOpType()):
			err = fmt.Errorf("%s node %q on the batch cannot be made batch-dynamic", n.GetOpType(), n.GetName())
		}
		if err != nil {
			return nil, err
		}
	}
	for _, v := range []*onnxpb.ValueInfoProto{g.GetInput()[0], g.GetOutput()[0]} {
		dims := v.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) == 0 || dims[0].GetDimValue() != batch {
			return nil, fmt.Errorf("tensor %q has dimensions %v; want the batch %d first", v.GetName(), dims, batch)
		}
		dims[0].Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: ONNXBatchDim}
	}
	// Intermediate shapes are hints that would now be wrong.
	g.ValueInfo = nil
	return proto.Marshal(&mp)
}

func firstOutput(n *onnxpb.NodeProto) string {
	if len(n.GetOutput()) == 0 {
		return ""
	}
	return n.GetOutput()[0]
}

// fixesShape reports ops that make a tensor of a shape given as data,
// which on the batch would bake it in. (Ops that only cut or join along an
// axis, like Slice or Concat, are left to the check at several batch sizes
// that follows every export.)
func fixesShape(op string) bool {
	switch op {
	case "Tile", "ConstantOfShape", "Range":
		return true
	}
	return false
}

// int64s reads an INT64 tensor's values.
func int64s(t *onnxpb.TensorProto) ([]int64, error) {
	if t.GetDataType() != int32(onnxpb.TensorProto_INT64) {
		return nil, fmt.Errorf("data type %d, not INT64", t.GetDataType())
	}
	if raw := t.GetRawData(); len(raw) > 0 {
		if len(raw)%8 != 0 {
			return nil, fmt.Errorf("%d raw bytes", len(raw))
		}
		v := make([]int64, len(raw)/8)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return v, nil
	}
	return append([]int64(nil), t.GetInt64Data()...), nil
}
