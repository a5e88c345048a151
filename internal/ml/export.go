package ml

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	onnxbackend "github.com/gomlx/compute-onnx"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/ml/model"
)

// ONNX input and output names of exported models.
const (
	ONNXInput  = "images"        // float32 [N, C, H, W], values in [0, 1].
	ONNXOutput = "probabilities" // float32 [N, K], softmax over the K labels.
)

// ExportONNX returns m's inference graph (normalisation, network, softmax)
// as an ONNX model with the weights embedded as constants. Its input is
// ONNXInput, float32 [batch, C, H, W] with a fixed batch size (GoMLX
// v0.28.8's graph has static shapes); its output is ONNXOutput, float32
// [batch, K]. ortLibrary is the ONNX Runtime shared library the exporting
// backend loads (it must be the one the rest of the process uses).
func (m *Model) ExportONNX(ortLibrary string, batch int) ([]byte, error) {
	if ortLibrary == "" {
		return nil, errors.New("exporting ONNX needs the ONNX Runtime shared library path (scripts/setup-onnxruntime.sh)")
	}
	if batch <= 0 {
		return nil, fmt.Errorf("export batch size must be positive, got %d", batch)
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
		exec, err := model.NewExec(backend, m.store, m.probabilitiesGraph)
		if err != nil {
			return err
		}
		defer exec.Finalize()
		g, err := exec.Compile(shapes.Make(dtypes.Float32, batch, m.Shape.Channels, m.Shape.Height, m.Shape.Width))
		if err != nil {
			return err
		}
		return onnxbackend.SaveModel(backend, g.Executable(), &out, []string{ONNXInput}, []string{ONNXOutput})
	})
	if err != nil {
		return nil, fmt.Errorf("exporting ONNX: %w", err)
	}
	return out.Bytes(), nil
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
