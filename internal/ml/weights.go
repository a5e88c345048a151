package ml

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"strings"
)

// Weights are a trained model's variables (normalisation and network, no
// optimizer state) in host memory: what a fine-tuning run starts from.
type Weights struct {
	Architecture string
	Shape        InputShape
	NumClasses   int
	Vars         []savedVar
}

// Paths of the model's own variables (see Model.logitsGraph); the head is
// the final classification layer that a fine-tuning run with other labels
// replaces.
const (
	normalizeScope = "/normalize/"
	networkScope   = "/model/"
	headScope      = "/model/head/"
)

func isModelVar(path string) bool {
	return strings.HasPrefix(path, normalizeScope) || strings.HasPrefix(path, networkScope)
}

// Weights copies the model's current variables to host memory.
func (m *Model) Weights() (*Weights, error) {
	s, err := takeSnapshot(m)
	if err != nil {
		return nil, err
	}
	for path := range s {
		if !isModelVar(path) {
			delete(s, path)
		}
	}
	vars, err := saveVars(s, trainableFlags(m))
	if err != nil {
		return nil, err
	}
	return &Weights{Architecture: m.Arch.Name, Shape: m.Shape, NumClasses: m.NumClasses, Vars: vars}, nil
}

// Encode serialises the weights (gob; Weights deliberately does not implement encoding.BinaryMarshaler, which gob would call back).
func (w *Weights) Encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(w); err != nil {
		return nil, fmt.Errorf("encoding weights: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeWeights reads weights written by Encode.
func DecodeWeights(data []byte) (*Weights, error) {
	w := &Weights{}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(w); err != nil {
		return nil, fmt.Errorf("decoding weights: %w", err)
	}
	if w.Architecture == "" || len(w.Vars) == 0 {
		return nil, fmt.Errorf("decoding weights: no architecture or variables")
	}
	return w, nil
}

// CheckBase reports whether a run of arch on shape can start from w.
func (w *Weights) CheckBase(arch string, shape InputShape) error {
	if arch == "" {
		arch = DefaultArchitecture
	}
	if w.Architecture != arch {
		return fmt.Errorf("the base weights are of architecture %s, not %s", w.Architecture, arch)
	}
	if w.Shape != shape {
		return fmt.Errorf("the base weights take %s images, not %s", w.Shape, shape)
	}
	return nil
}

// install sets the model's variables from w before any graph is built.
// With newHead the classification layer is left to its fresh
// initialisation (the labels differ from the base's).
func (w *Weights) install(m *Model, newHead bool) error {
	if err := w.CheckBase(m.Arch.Name, m.Shape); err != nil {
		return err
	}
	if !newHead && w.NumClasses != m.NumClasses {
		return fmt.Errorf("the base weights have %d classes, this run %d; a new head is needed", w.NumClasses, m.NumClasses)
	}
	vars := make([]savedVar, 0, len(w.Vars))
	for _, v := range w.Vars {
		if newHead && strings.HasPrefix(v.Path, headScope) {
			continue
		}
		vars = append(vars, v)
	}
	return installVars(m, vars)
}
