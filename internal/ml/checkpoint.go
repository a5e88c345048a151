package ml

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/core/tensors"
)

// checkpointFile is the name of the resumable state in Config.CheckpointDir.
const checkpointFile = "training.ckpt"

// CheckpointFile is the file in a Config.CheckpointDir that holds the
// run's state: a run resumes from whatever that file holds, so a caller
// that keeps checkpoints elsewhere puts one back there before Train.
func CheckpointFile(dir string) string { return filepath.Join(dir, checkpointFile) }

// trainingState is everything needed to continue a run after its last
// completed epoch: the current variables (weights, batch-norm averages,
// optimizer moments and step), the best epoch's variables, and the history.
type trainingState struct {
	Architecture string
	Shape        InputShape
	NumClasses   int
	Seed         int64
	Epoch        int // last completed epoch.
	Epochs       []EpochMetrics
	BestEpoch    int
	BestScore    float64
	Current      []savedVar
	Best         []savedVar
}

// savedVar is one variable in host memory; exactly one data field is set.
type savedVar struct {
	Path      string
	Trainable bool
	Dims      []int
	F32       []float32
	F64       []float64
	I32       []int32
	I64       []int64
	U64       []uint64 // GoMLX's random-number state.
}

func saveVars(s snapshot, trainable map[string]bool) ([]savedVar, error) {
	out := make([]savedVar, 0, len(s))
	for path, t := range s {
		sv := savedVar{Path: path, Trainable: trainable[path], Dims: t.Shape().Dimensions}
		var err error
		switch t.Shape().DType.String() {
		case "Float32":
			sv.F32, err = tensors.CopyFlatData[float32](t)
		case "Float64":
			sv.F64, err = tensors.CopyFlatData[float64](t)
		case "Int32":
			sv.I32, err = tensors.CopyFlatData[int32](t)
		case "Int64":
			sv.I64, err = tensors.CopyFlatData[int64](t)
		case "Uint64":
			sv.U64, err = tensors.CopyFlatData[uint64](t)
		default:
			err = fmt.Errorf("dtype %s not supported in checkpoints", t.Shape().DType)
		}
		if err != nil {
			return nil, fmt.Errorf("saving variable %s: %w", path, err)
		}
		out = append(out, sv)
	}
	return out, nil
}

func (sv savedVar) tensor() *tensors.Tensor {
	switch {
	case sv.F32 != nil:
		return tensors.FromFlatDataAndDimensions(sv.F32, sv.Dims...)
	case sv.F64 != nil:
		return tensors.FromFlatDataAndDimensions(sv.F64, sv.Dims...)
	case sv.I32 != nil:
		return tensors.FromFlatDataAndDimensions(sv.I32, sv.Dims...)
	case sv.U64 != nil:
		return tensors.FromFlatDataAndDimensions(sv.U64, sv.Dims...)
	default:
		return tensors.FromFlatDataAndDimensions(sv.I64, sv.Dims...)
	}
}

func loadedSnapshot(vars []savedVar) snapshot {
	s := snapshot{}
	for _, sv := range vars {
		s[sv.Path] = sv.tensor()
	}
	return s
}

// installVars sets (or, before any graph was built, creates) the model's
// variables from vars.
func installVars(m *Model, vars []savedVar) error {
	for _, sv := range vars {
		t := sv.tensor()
		if v := m.store.GetVariable(sv.Path); v != nil {
			if err := v.SetValue(t); err != nil {
				return fmt.Errorf("restoring variable %s: %w", sv.Path, err)
			}
			continue
		}
		v, err := m.store.CreateVariable(sv.Path, t)
		if err != nil {
			return fmt.Errorf("restoring variable %s: %w", sv.Path, err)
		}
		v.SetTrainable(sv.Trainable)
	}
	m.dropCompiled()
	return nil
}

func trainableFlags(m *Model) map[string]bool {
	flags := map[string]bool{}
	for v := range m.store.IterVariables() {
		flags[v.Path()] = v.Trainable
	}
	return flags
}

// writeState writes st to dir atomically (temp file + rename), so a crash
// mid-write leaves the previous epoch's checkpoint intact.
func writeState(dir string, st *trainingState) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("checkpoint dir: %w", err)
	}
	f, err := os.CreateTemp(dir, checkpointFile+".tmp*")
	if err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename.
	if err := gob.NewEncoder(f).Encode(st); err != nil {
		f.Close()
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, checkpointFile)); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	return nil
}

// readState returns the checkpoint in dir, or nil if there is none.
func readState(dir string) (*trainingState, error) {
	f, err := os.Open(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	defer f.Close()
	st := &trainingState{}
	if err := gob.NewDecoder(f).Decode(st); err != nil {
		return nil, fmt.Errorf("reading checkpoint %s: %w", f.Name(), err)
	}
	return st, nil
}

// saveState writes the run's state after epoch to cfg.CheckpointDir.
func saveState(cfg Config, m *Model, res *Result, epoch int, bestScore float64, best snapshot) error {
	current, err := takeSnapshot(m)
	if err != nil {
		return err
	}
	flags := trainableFlags(m)
	st := &trainingState{
		Architecture: m.Arch.Name, Shape: m.Shape, NumClasses: m.NumClasses, Seed: cfg.Seed,
		Epoch: epoch, Epochs: res.Epochs, BestEpoch: res.BestEpoch, BestScore: bestScore,
	}
	if st.Current, err = saveVars(current, flags); err != nil {
		return err
	}
	if st.Best, err = saveVars(best, flags); err != nil {
		return err
	}
	return writeState(cfg.CheckpointDir, st)
}

// snapshot is a host-memory copy of a model's variables.
type snapshot map[string]*tensors.Tensor

func takeSnapshot(m *Model) (snapshot, error) {
	s := snapshot{}
	for v := range m.store.IterVariables() {
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("reading variable %s: %w", v.Path(), err)
		}
		c, err := t.LocalClone()
		if err != nil {
			return nil, fmt.Errorf("copying variable %s: %w", v.Path(), err)
		}
		s[v.Path()] = c
	}
	return s, nil
}

func (s snapshot) restore(m *Model) error {
	if s == nil {
		return errors.New("no checkpoint to restore")
	}
	for path, t := range s {
		v := m.store.GetVariable(path)
		if v == nil {
			return fmt.Errorf("checkpoint variable %s missing from the model", path)
		}
		if err := v.SetValue(t); err != nil {
			return fmt.Errorf("restoring variable %s: %w", path, err)
		}
	}
	m.dropCompiled()
	return nil
}
