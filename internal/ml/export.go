package ml

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	onnxbackend "github.com/gomlx/compute-onnx"
	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"google.golang.org/protobuf/proto"
)

// ONNX input and output names of exported models.
const (
	ONNXInput  = "images"        // float32 [N, C, H, W], values in [0, 1].
	ONNXOutput = "probabilities" // float32 [N, K], softmax over the K labels.
	// ONNXBatchDim is the symbolic name of both tensors' batch dimension.
	ONNXBatchDim = "N"
)

// ExportONNX returns m's inference graph (normalisation, network, softmax)
// as an ONNX model with the weights embedded as constants. Its input is
// ONNXInput, float32 [N, C, H, W], and its output ONNXOutput, float32
// [N, K], where N (ONNXBatchDim) is symbolic: one file serves every batch
// size. Convolutions and pooling are exported as ONNX Conv and MaxPool
// (see nativeOpsParam), the graph compiled at exportBatch and its batch
// made symbolic by symbolicBatch. ortLibrary is the ONNX Runtime shared library
// the exporting backend loads (it must be the one the rest of the process
// uses).
//
// A model imported from ONNX exports instead its own graph (input, output
// and all) with the trained weights written back.
func (m *Model) ExportONNX(ortLibrary string) ([]byte, error) {
	if m.imp != nil {
		return m.exportImported()
	}
	if ortLibrary == "" {
		return nil, errors.New("exporting ONNX needs the ONNX Runtime shared library path (scripts/setup-onnxruntime.sh)")
	}
	// Never let the backend download a runtime behind the caller's back.
	onnxbackend.EnableAutoInstall(false)
	backend, err := NewBackend("onnx:" + ortLibrary)
	if err != nil {
		return nil, err
	}
	defer backend.Finalize()
	ob, ok := backend.(*onnxbackend.Backend)
	if !ok {
		return nil, fmt.Errorf("backend %q is %T, not the ONNX backend", backend.Name(), backend)
	}
	var out bytes.Buffer
	err = catch(func() error {
		// Mirrors gomlx/ml/model/onnx.Save (which needs the "onnx" build
		// tag): compile with variables as constants and the proto kept.
		ob.SetKeepModelProto(true)
		prev := m.store.VariablesAsConst()
		m.store.WithVariableAsConst(true)
		defer m.store.WithVariableAsConst(prev)
		exec, err := model.NewExec(backend, m.store, func(scope *model.Scope, x *Node) *Node {
			model.SetGraphParam(x.Graph(), "/"+nativeOpsParam, true)
			return m.probabilitiesGraph(scope, x)
		})
		if err != nil {
			return err
		}
		defer exec.Finalize()
		// Compiled at a fixed batch, then made batch-dynamic below: the
		// backend's dynamic axes do not reach its Conv and MaxPool.
		g, err := exec.Compile(shapes.Make(dtypes.Float32, exportBatch, m.Shape.Channels, m.Shape.Height, m.Shape.Width))
		if err != nil {
			return err
		}
		return onnxbackend.SaveModel(backend, g.Executable(), &out, []string{ONNXInput}, []string{ONNXOutput})
	})
	if err != nil {
		return nil, fmt.Errorf("exporting ONNX: %w", err)
	}
	dynamic, err := symbolicBatch(out.Bytes(), exportBatch)
	if err != nil {
		return nil, fmt.Errorf("exporting ONNX: %w", err)
	}
	if err := checkBatchDynamic(dynamic, m.Shape, m.NumClasses); err != nil {
		return nil, fmt.Errorf("exporting ONNX: %w", err)
	}
	return dynamic, nil
}

// checkBatchDynamic verifies the exported graph's signature: one input
// [N, C, H, W] and one output [N, K] with N the symbolic ONNXBatchDim and
// every other dimension fixed. It refuses anything else rather than
// register a model Inference would run at the wrong batch size.
func checkBatchDynamic(onnxModel []byte, shape InputShape, classes int) error {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(onnxModel, &mp); err != nil {
		return fmt.Errorf("reading back the exported model: %w", err)
	}
	g := mp.GetGraph()
	if len(g.GetInput()) != 1 || len(g.GetOutput()) != 1 {
		return fmt.Errorf("exported graph has %d inputs and %d outputs; want 1 and 1", len(g.GetInput()), len(g.GetOutput()))
	}
	for _, want := range []struct {
		v    *onnxpb.ValueInfoProto
		name string
		dims []int64
	}{
		{g.GetInput()[0], ONNXInput, []int64{int64(shape.Channels), int64(shape.Height), int64(shape.Width)}},
		{g.GetOutput()[0], ONNXOutput, []int64{int64(classes)}},
	} {
		dims := want.v.GetType().GetTensorType().GetShape().GetDim()
		if want.v.GetName() != want.name || len(dims) != len(want.dims)+1 {
			return fmt.Errorf("exported tensor %q has rank %d; want %q of rank %d", want.v.GetName(), len(dims), want.name, len(want.dims)+1)
		}
		if p := dims[0].GetDimParam(); p != ONNXBatchDim {
			return fmt.Errorf("exported tensor %q has batch dimension %v; want the symbolic %q", want.name, dims[0], ONNXBatchDim)
		}
		for i, d := range want.dims {
			if got := dims[i+1].GetDimValue(); got != d {
				return fmt.Errorf("exported tensor %q has dimension %d = %v; want %d", want.name, i+1, dims[i+1], d)
			}
		}
	}
	return nil
}

// ONNXMismatch describes how an ONNX model's outputs differ from GoMLX's.
type ONNXMismatch struct {
	Images          int     // images compared.
	Top1Differences int     // images whose most probable class differs.
	MaxAbsDiff      float64 // largest |p_onnx - p_gomlx| over all probabilities.
}

// Acceptable reports whether the ONNX model reproduces GoMLX: same top-1
// everywhere and probabilities within tolerance.
func (d ONNXMismatch) Acceptable(tolerance float64) bool {
	return d.Top1Differences == 0 && d.MaxAbsDiff <= tolerance
}

// CompareProbabilities compares two [N*K] probability slices.
func CompareProbabilities(want, got []float32, k int) (ONNXMismatch, error) {
	if len(want) != len(got) || k <= 0 || len(want)%k != 0 {
		return ONNXMismatch{}, fmt.Errorf("comparing %d and %d probabilities for %d classes", len(want), len(got), k)
	}
	d := ONNXMismatch{Images: len(want) / k}
	for i := range d.Images {
		w, g := want[i*k:(i+1)*k], got[i*k:(i+1)*k]
		if argmax(w) != argmax(g) {
			d.Top1Differences++
		}
		for j := range w {
			diff := math.Abs(float64(w[j]) - float64(g[j]))
			if diff > d.MaxAbsDiff || diff != diff {
				d.MaxAbsDiff = diff
			}
		}
	}
	return d, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
