// Package onnxrt is Shoal's one wrapper of ONNX Runtime: it loads the
// runtime into the process, answers whether bytes are a model ONNX Runtime
// can run and what its inputs and outputs are (Inspect), and runs image
// classifiers in sessions with their options, batch sizes and tensors
// (Session). Inference, the Trainer's export check and the benchmark all
// run models through it, so they run them the same way; no other package
// imports onnxruntime_go (internal/archtest checks).
package onnxrt

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Version is the ONNX Runtime release scripts/setup-onnxruntime.sh installs.
const Version = "1.30.0"

// EnvLibrary names the shared library when --onnxruntime.library is empty;
// it is the variable ONNX Runtime's own tooling uses.
const EnvLibrary = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// ErrLibraryMissing means no ONNX Runtime shared library was found.
var ErrLibraryMissing = errors.New("onnxruntime: shared library not found: set --onnxruntime.library or " +
	EnvLibrary + "; run scripts/setup-onnxruntime.sh to install it")

// Config says where the ONNX Runtime shared library is.
type Config struct {
	// Library is the path of libonnxruntime.so; empty means EnvLibrary,
	// then the location scripts/setup-onnxruntime.sh installs to.
	Library string
}

// RegisterFlags registers onnxruntime.* flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Library, "onnxruntime.library", "",
		"path of the ONNX Runtime shared library (libonnxruntime.so); empty uses $"+EnvLibrary+
			", then the cache scripts/setup-onnxruntime.sh installs to")
}

// Validate checks that an explicitly named library exists; the fallbacks are
// resolved when the runtime is loaded, by the services that need it.
func (c *Config) Validate() error {
	if c.Library == "" {
		return nil
	}
	if _, err := os.Stat(c.Library); err != nil {
		return fmt.Errorf("--onnxruntime.library=%q: %w (run scripts/setup-onnxruntime.sh to install ONNX Runtime)", c.Library, err)
	}
	return nil
}

// LibraryPath resolves the shared library: the flag, then EnvLibrary, then
// the setup script's cache. It fails with ErrLibraryMissing, naming what it
// tried, when none exists.
func (c Config) LibraryPath() (string, error) {
	if c.Library != "" {
		if _, err := os.Stat(c.Library); err != nil {
			return "", fmt.Errorf("%w (--onnxruntime.library=%q: %w)", ErrLibraryMissing, c.Library, err)
		}
		return c.Library, nil
	}
	if p := os.Getenv(EnvLibrary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w (%s=%q: %w)", ErrLibraryMissing, EnvLibrary, p, err)
		}
		return p, nil
	}
	p := CachedLibraryPath()
	if p == "" {
		return "", ErrLibraryMissing
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w (tried %s)", ErrLibraryMissing, p)
	}
	return p, nil
}

// CachedLibraryPath is where scripts/setup-onnxruntime.sh installs the
// library: $SHOAL_CACHE_DIR, else ~/.cache/shoal. Empty when neither is known.
func CachedLibraryPath() string {
	dir := os.Getenv("SHOAL_CACHE_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache", "shoal")
	}
	return filepath.Join(dir, "onnxruntime-"+Version, "node_modules", "onnxruntime-node",
		"bin", "napi-v6", "linux", "x64", "libonnxruntime.so.1")
}

// Runtime is the loaded ONNX Runtime. Its methods are safe for concurrent
// use.
type Runtime struct {
	library string
}

// process is the one ONNX Runtime environment of this process.
//
// This is the package's only mutable package-level state, and it cannot be
// avoided: onnxruntime_go keeps the loaded library and the OrtEnv in its own
// package variables, ONNX Runtime allows one OrtEnv per process, and the
// library cannot be safely unloaded while sessions of any caller may still
// use it. Every caller (the Registry, Inference, tests) therefore shares one
// initialisation, and a second library path is refused rather than
// silently ignored.
var process struct {
	once    sync.Once
	library string
	err     error
}

// Load initialises ONNX Runtime from cfg's library, once per process, and
// returns it. Later calls return the same Runtime, or fail if they name a
// different library. A library that is missing can be installed and Load
// called again; one that exists but fails to initialise fails for the rest
// of the process, since onnxruntime_go cannot retry a half-done load.
func Load(cfg Config) (*Runtime, error) {
	path, err := cfg.LibraryPath()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	process.once.Do(func() {
		process.library = abs
		ort.SetSharedLibraryPath(abs)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			process.err = fmt.Errorf("onnxruntime: load %s: %w", abs, err)
		}
	})
	if process.err != nil {
		return nil, process.err
	}
	if process.library != abs {
		return nil, fmt.Errorf("onnxruntime: already loaded from %s in this process; cannot also load %s", process.library, abs)
	}
	return &Runtime{library: abs}, nil
}

// Library is the path the runtime was loaded from.
func (r *Runtime) Library() string { return r.library }

// TensorInfo describes one input or output of a model.
type TensorInfo struct {
	Name string
	// ElementType is ONNX's name of the element type, e.g. "float32".
	ElementType string
	// Shape has -1 for each dynamic (symbolic or unknown) dimension.
	Shape []int64
	// Tensor is false for inputs and outputs that are sequences or maps.
	Tensor bool
}

// ModelInfo are a model's inputs and outputs, in the graph's order.
type ModelInfo struct {
	Inputs  []TensorInfo
	Outputs []TensorInfo
}

// Input returns the input named name.
func (m ModelInfo) Input(name string) (TensorInfo, bool) { return find(m.Inputs, name) }

// Output returns the output named name.
func (m ModelInfo) Output(name string) (TensorInfo, bool) { return find(m.Outputs, name) }

func find(ts []TensorInfo, name string) (TensorInfo, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// ErrInvalidModel means ONNX Runtime could not load the model: the bytes are
// not ONNX, or the graph is malformed or uses operators it lacks.
var ErrInvalidModel = errors.New("not a model ONNX Runtime can load")

// Inspect loads the model in onnx (which ONNX Runtime fully parses and
// type-checks) and describes its inputs and outputs.
func (r *Runtime) Inspect(onnx []byte) (ModelInfo, error) {
	if len(onnx) == 0 {
		return ModelInfo{}, fmt.Errorf("%w: empty file", ErrInvalidModel)
	}
	// ONNX Runtime opens and frees a whole session to answer: outside a
	// measurement, so as not to count in it (see Footprint).
	footprintMu.Lock()
	in, out, err := ort.GetInputOutputInfoWithONNXData(onnx)
	footprintMu.Unlock()
	if err != nil {
		return ModelInfo{}, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	return ModelInfo{Inputs: convert(in), Outputs: convert(out)}, nil
}

// InspectFile is Inspect for a model in a file, which ONNX Runtime reads
// itself rather than through a copy in Go's heap.
func (r *Runtime) InspectFile(path string) (ModelInfo, error) {
	footprintMu.Lock()
	in, out, err := ort.GetInputOutputInfo(path)
	footprintMu.Unlock()
	if err != nil {
		return ModelInfo{}, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	return ModelInfo{Inputs: convert(in), Outputs: convert(out)}, nil
}

func convert(infos []ort.InputOutputInfo) []TensorInfo {
	out := make([]TensorInfo, len(infos))
	for i, info := range infos {
		t := TensorInfo{Name: info.Name, Tensor: info.OrtValueType == ort.ONNXTypeTensor}
		if t.Tensor {
			t.ElementType = elementType(info.DataType)
			t.Shape = make([]int64, len(info.Dimensions))
			for j, d := range info.Dimensions {
				if d < 0 {
					d = -1 // ONNX Runtime reports symbolic dimensions as -1 already; normalise any other negative
				}
				t.Shape[j] = d
			}
		}
		out[i] = t
	}
	return out
}

// elementType names ONNX's element types as numpy and KServe do.
func elementType(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	case ort.TensorElementDataTypeFloat16:
		return "float16"
	case ort.TensorElementDataTypeUint8:
		return "uint8"
	case ort.TensorElementDataTypeInt8:
		return "int8"
	case ort.TensorElementDataTypeUint16:
		return "uint16"
	case ort.TensorElementDataTypeInt16:
		return "int16"
	case ort.TensorElementDataTypeUint32:
		return "uint32"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeUint64:
		return "uint64"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeBool:
		return "bool"
	case ort.TensorElementDataTypeString:
		return "string"
	}
	return t.String()
}
