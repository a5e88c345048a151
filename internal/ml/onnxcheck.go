package ml

import (
	"errors"
	"fmt"
	"strings"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/loss"
	"google.golang.org/protobuf/proto"
)

// CheckImport builds the imported model's training graph once, the class
// scores and the gradients of a loss with respect to every trainable
// weight, and compiles it (without running it) on the pure-Go backend: an
// ONNX model the importer cannot convert, or whose gradients GoMLX cannot
// build, is refused before a job is queued rather than failing the job's
// first step. Errors wrap ErrImport and name the operator when one is to
// blame.
func CheckImport(imp *Imported) error {
	m, err := newCheckModel(imp)
	if err != nil {
		return err
	}
	defer m.Close()
	var got shapes.Shape
	err = m.build(true, func(scope *model.Scope, x *Node) []*Node {
		logits := m.logitsGraph(scope, x)
		got = logits.Shape()
		labels := Zeros(x.Graph(), shapes.Make(dtypes.Int32, logits.Shape().Dimensions[0], 1))
		l := ReduceAllMean(loss.SparseCategoricalCrossEntropyLogits([]*Node{labels}, []*Node{logits}))
		return append([]*Node{logits}, scope.BuildTrainableVariablesGradientsGraph(l)...)
	})
	if err != nil {
		msg := graphPanic(err)
		if strings.Contains(msg, "no gradient is defined") {
			if n := m.gradientCulprit(); n != nil {
				return fmt.Errorf("%w: GoMLX has no gradient for the operator %s (node %q), so the model cannot be trained", ErrImport, n.GetOpType(), n.GetName())
			}
			return fmt.Errorf("%w: GoMLX cannot build its gradients: %s", ErrImport, msg)
		}
		return fmt.Errorf("%w: the importer cannot build its graph: %s", ErrImport, msg)
	}
	if got.Rank() != 2 || got.Dimensions[0] != 2 || got.Dimensions[1] != imp.NumClasses {
		return fmt.Errorf("%w: its class scores for 2 images have shape %s, want [2, %d]", ErrImport, got, imp.NumClasses)
	}
	return nil
}

// newCheckModel is imp on a pure-Go backend of its own.
func newCheckModel(imp *Imported) (*Model, error) {
	backend, err := NewBackend(DefaultBackend)
	if err != nil {
		return nil, err
	}
	m := &Model{Arch: importedArch(), Shape: imp.Spec.Shape, NumClasses: imp.NumClasses, backend: backend, store: model.NewStore(), ownsBackend: true}
	if err := newImportedModel(m, imp); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// errBuilt stops a graph's construction once it succeeded, before its
// compilation, where only the construction is of interest.
var errBuilt = errors.New("graph built")

// build constructs the training-mode graph fn makes for a batch of 2, and
// compiles it if compile is set.
func (m *Model) build(compile bool, fn func(*model.Scope, *Node) []*Node) error {
	err := catch(func() error {
		exec, err := model.NewExec(m.backend, m.store, func(scope *model.Scope, x *Node) []*Node {
			scope.Store().SetTraining(x.Graph(), true)
			out := fn(scope, x)
			if !compile {
				panic(errBuilt)
			}
			return out
		})
		if err != nil {
			return err
		}
		defer exec.Finalize()
		s := m.Shape
		_, err = exec.Compile(shapes.Make(dtypes.Float32, 2, s.Channels, s.Height, s.Width))
		return err
	})
	if !compile && err != nil && strings.Contains(err.Error(), errBuilt.Error()) {
		return nil
	}
	return err
}

// graphPanic is the reason in an error of a graph's construction, without
// GoMLX's wrapping (the executor's name and the graph function's).
func graphPanic(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "panicked: "); i >= 0 {
		return msg[i+len("panicked: "):]
	}
	return msg
}

// gradientCulprit finds the first node of the imported graph, in the
// graph's order, after which the gradients of the sum of every float
// tensor computed so far cannot be built: the operator without a
// gradient. The sums of prefixes make the search monotone, so it bisects,
// building (not compiling) a graph per step. Nil if none is found.
func (m *Model) gradientCulprit() *onnxpb.NodeProto {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(m.imp.graph, &mp); err != nil {
		return nil
	}
	nodes := mp.GetGraph().GetNode()
	fails := func(k int) bool {
		var names []string
		for _, n := range nodes[:k] {
			for _, o := range n.GetOutput() {
				if o != "" {
					names = append(names, o)
				}
			}
		}
		err := m.build(false, func(scope *model.Scope, x *Node) []*Node {
			outs := m.onnx.CallGraph(scope.In(importScope), x.Graph(), map[string]*Node{m.imp.Spec.InputName: m.importedInput(x)}, names...)
			total := ScalarZero(x.Graph(), dtypes.Float32)
			for _, o := range outs {
				if o.DType().IsFloat() {
					total = Add(total, ConvertDType(ReduceAllSum(o), dtypes.Float32))
				}
			}
			return scope.BuildTrainableVariablesGradientsGraph(total)
		})
		return err != nil
	}
	if len(nodes) == 0 || !fails(len(nodes)) {
		return nil
	}
	lo, hi := 0, len(nodes) // fails(hi); !fails(lo), as no node computes nothing
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return nodes[hi-1]
}
