package ml

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	_ "github.com/gomlx/compute/gobackend" // registers the pure-Go backend ("go").
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/onnx-gomlx/onnx"
)

// DefaultBackend is the GoMLX backend configuration used when neither the
// caller nor $GOMLX_BACKEND names one. parallelism=-1 lets the pure-Go
// backend use every core; other worker settings deadlocked intermittently
// in v0.28.8 under training load.
const DefaultBackend = "go:parallelism=-1"

// Backend names accepted by BackendConfig.
const (
	BackendGo   = "go"   // GoMLX's pure-Go backend; always available.
	BackendONNX = "onnx" // ONNX Runtime through github.com/gomlx/compute-onnx.
)

// BackendConfig maps a backend name to a GoMLX backend config for
// Config.Backend. ONNX Runtime needs its shared library's path. Measured on
// 2 cores (scripts/bench-train.sh), ONNX Runtime trains small-cnn ~1.5x
// faster per CPU-second than the pure-Go backend.
//
// Like the pure-Go backend's, ONNX Runtime's sessions get a thread per core
// this process may use (GOMAXPROCS): ONNX Runtime's own default on Linux is
// half the logical CPUs, one thread on a 2-core machine, where full
// fine-tuning of a ResNet-18 trained 22% fewer images/s (scripts/bench-train.sh
// finetune).
func BackendConfig(name, ortLibrary string) (string, error) {
	switch name {
	case BackendGo:
		return DefaultBackend, nil
	case BackendONNX:
		if ortLibrary == "" {
			return "", errors.New("the onnx backend needs the ONNX Runtime shared library (scripts/setup-onnxruntime.sh)")
		}
		return fmt.Sprintf("onnx:%s,threads=%d", ortLibrary, runtime.GOMAXPROCS(0)), nil
	}
	return "", fmt.Errorf("unknown backend %q (known: %s, %s)", name, BackendGo, BackendONNX)
}

// NewBackend returns a GoMLX backend for config ("<name>:<options>"); ""
// means $GOMLX_BACKEND, or DefaultBackend if that is unset, and "go" alone
// means DefaultBackend.
func NewBackend(config string) (compute.Backend, error) {
	if config == "" {
		config = os.Getenv(compute.ConfigEnvVar)
	}
	if config == "" || config == BackendGo {
		// The pure-Go backend's own default, a worker pool of 2 per core,
		// deadlocks when nested parallel ops (the convolutions of imported
		// ONNX models) hold every worker while waiting for more.
		config = DefaultBackend
	}
	var backend compute.Backend
	err := catch(func() error {
		var err error
		backend, err = compute.NewWithConfig(config)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating GoMLX backend %q: %w", config, err)
	}
	return backend, nil
}

// Model is an architecture with its weights (a GoMLX store) on a backend.
type Model struct {
	Arch       Architecture
	Shape      InputShape
	NumClasses int

	backend compute.Backend
	store   *model.Store
	// mean and std are the per-channel normalisation baked into the graph.
	mean, std []float32

	logitsExec *model.Exec
	probsExec  *model.Exec
	// ownsBackend is set when Train created the backend for this model.
	ownsBackend bool

	// onnx and imp are set for a model imported from ONNX (ImportONNX):
	// its network is the ONNX graph, in place of Arch's.
	onnx onnx.Model
	imp  *Imported
}

// NewModel creates an untrained model. mean and std are per-channel
// normalisation constants (see ChannelStats); seed drives weight init.
func NewModel(backend compute.Backend, arch Architecture, shape InputShape, numClasses int, mean, std []float32, seed int64) (*Model, error) {
	if err := arch.CheckInput(shape); err != nil {
		return nil, err
	}
	if numClasses < 2 {
		return nil, fmt.Errorf("need at least 2 classes, got %d", numClasses)
	}
	if len(mean) != shape.Channels || len(std) != shape.Channels {
		return nil, fmt.Errorf("normalisation has %d means and %d stds for %d channels", len(mean), len(std), shape.Channels)
	}
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, seed)
	return &Model{Arch: arch, Shape: shape, NumClasses: numClasses, backend: backend, store: store, mean: mean, std: std}, nil
}

// Backend is the backend the model's weights live on.
func (m *Model) Backend() compute.Backend { return m.backend }

// Store holds the model's variables (weights, batch-norm averages and
// optimizer state). Inference graphs compiled before a variable is changed
// through it may keep the old value (see dropCompiled).
func (m *Model) Store() *model.Store { return m.store }

// logitsGraph maps NCHW [N,C,H,W] images in [0,1] to [N,K] logits.
func (m *Model) logitsGraph(scope *model.Scope, x *Node) *Node {
	if m.imp != nil {
		return m.importedLogits(scope, x)
	}
	c := m.Shape.Channels
	x = TransposeAllDims(x, 0, 2, 3, 1) // NCHW -> NHWC: channels last suits im2col + Dense.
	ns := scope.In("normalize")
	mean := ns.VariableWithValue("mean", m.mean).SetTrainable(false).NodeValue(x.Graph())
	std := ns.VariableWithValue("std", m.std).SetTrainable(false).NodeValue(x.Graph())
	x = Div(Sub(x, Reshape(mean, 1, 1, 1, c)), Reshape(std, 1, 1, 1, c))
	return m.Arch.Build(scope.In("model"), x, m.NumClasses)
}

// probabilitiesGraph is the exported inference graph: softmax of logits.
func (m *Model) probabilitiesGraph(scope *model.Scope, x *Node) *Node {
	return Softmax(m.logitsGraph(scope, x), -1)
}

// Logits runs inference on n NCHW images and returns [n*K] logits.
func (m *Model) Logits(images []float32) ([]float32, error) {
	if m.logitsExec == nil {
		exec, err := model.NewExec(m.backend, m.store, m.logitsGraph)
		if err != nil {
			return nil, fmt.Errorf("compiling inference graph: %w", err)
		}
		m.logitsExec = exec
	}
	return m.run(m.logitsExec, images)
}

// Probabilities runs the exported inference graph (softmax included) on n
// NCHW images and returns [n*K] probabilities.
func (m *Model) Probabilities(images []float32) ([]float32, error) {
	if m.probsExec == nil {
		exec, err := model.NewExec(m.backend, m.store, m.probabilitiesGraph)
		if err != nil {
			return nil, fmt.Errorf("compiling inference graph: %w", err)
		}
		m.probsExec = exec
	}
	return m.run(m.probsExec, images)
}

// inferenceBatch bounds memory per inference call; callers' slices are cut
// into batches of this size (the last one padded so that one compiled graph
// serves every call).
const inferenceBatch = 256

func (m *Model) run(exec *model.Exec, images []float32) ([]float32, error) {
	size := m.Shape.Size()
	if len(images)%size != 0 {
		return nil, fmt.Errorf("%d values is not a whole number of %s images", len(images), m.Shape)
	}
	n := len(images) / size
	out := make([]float32, 0, n*m.NumClasses)
	for start := 0; start < n; start += inferenceBatch {
		end := min(start+inferenceBatch, n)
		batch := inferenceBatch
		if n < inferenceBatch {
			batch = n // small calls (tests, single images) get a graph of their own size.
		}
		buf := make([]float32, batch*size)
		copy(buf, images[start*size:end*size])
		x := tensors.FromFlatDataAndDimensions(buf, batch, m.Shape.Channels, m.Shape.Height, m.Shape.Width)
		var res []*tensors.Tensor
		err := catch(func() error {
			var err error
			res, err = exec.Exec(x)
			return err
		})
		x.MustFinalizeAll()
		if err != nil {
			return nil, fmt.Errorf("running inference: %w", err)
		}
		flat, err := tensors.CopyFlatData[float32](res[0])
		res[0].MustFinalizeAll()
		if err != nil {
			return nil, err
		}
		out = append(out, flat[:(end-start)*m.NumClasses]...)
	}
	return out, nil
}

// dropCompiled discards the compiled inference graphs, so the next call
// compiles them afresh. It must follow every change of the weights: backends
// that prefer constants for variables (ONNX Runtime) bake the non-trainable
// ones, the batch-norm averages among them, into a graph when it is compiled,
// so a graph compiled earlier would go on normalising with stale averages
// while reading the current trainable weights.
func (m *Model) dropCompiled() {
	for _, e := range []*model.Exec{m.logitsExec, m.probsExec} {
		if e != nil {
			e.Finalize()
		}
	}
	m.logitsExec, m.probsExec = nil, nil
}

// Close releases the compiled graphs and weights.
func (m *Model) Close() {
	m.dropCompiled()
	m.store.Finalize()
	if m.onnx != nil {
		_ = m.onnx.Close()
	}
	if m.ownsBackend {
		m.backend.Finalize()
	}
}

// ChannelStats measures the per-channel mean and standard deviation of the
// images, for NewModel's normalisation.
func ChannelStats(d *Data) (mean, std []float32) {
	c, hw := d.Shape.Channels, d.Shape.Height*d.Shape.Width
	sum := make([]float64, c)
	sq := make([]float64, c)
	for i := range d.Len() {
		img := d.Image(i)
		for ch := range c {
			for _, v := range img[ch*hw : (ch+1)*hw] {
				sum[ch] += float64(v)
				sq[ch] += float64(v) * float64(v)
			}
		}
	}
	n := float64(d.Len() * hw)
	mean, std = make([]float32, c), make([]float32, c)
	for ch := range c {
		mu := sum[ch] / n
		mean[ch] = float32(mu)
		// A constant channel would divide by zero; 1 leaves it merely centred.
		std[ch] = float32(max(math.Sqrt(max(sq[ch]/n-mu*mu, 0)), 1e-3))
		if std[ch] <= 1e-3 {
			std[ch] = 1
		}
	}
	return mean, std
}

// catch turns GoMLX's graph-building panics into errors.
func catch(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	return fn()
}

// ParameterCount is the number of trainable parameters of arch for images
// of shape and numClasses classes. It builds (but never runs) the network's
// graph on the pure-Go backend.
func ParameterCount(arch Architecture, shape InputShape, numClasses int) (int64, error) {
	backend, err := NewBackend(DefaultBackend)
	if err != nil {
		return 0, err
	}
	mean, std := make([]float32, shape.Channels), make([]float32, shape.Channels)
	for i := range std {
		std[i] = 1
	}
	m, err := NewModel(backend, arch, shape, numClasses, mean, std, 0)
	if err != nil {
		backend.Finalize()
		return 0, err
	}
	m.ownsBackend = true
	defer m.Close()
	err = catch(func() error {
		exec, err := model.NewExec(backend, m.store, m.logitsGraph)
		if err != nil {
			return err
		}
		defer exec.Finalize()
		_, err = exec.Compile(shapes.Make(dtypes.Float32, 1, shape.Channels, shape.Height, shape.Width))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("building %s for %s: %w", arch.Name, shape, err)
	}
	var n int64
	for v := range m.store.IterVariables() {
		if v.Trainable {
			n += int64(v.Shape().Size())
		}
	}
	return n, nil
}
