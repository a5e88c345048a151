package mltest

import (
	"encoding/json"
	"os"
	"testing"
)

// Environment variables of the corpus of PyTorch exports.
const (
	// EnvExports is the path of the manifest scripts/export-corpus.sh
	// prints: which exports the tests fine-tune.
	EnvExports = "SHOAL_TEST_EXPORTS"
	// EnvExportsRequired makes a missing manifest a test failure (make
	// test sets it) instead of a skip.
	EnvExportsRequired = "SHOAL_TEST_EXPORTS_REQUIRED"
)

// PyTorchExport is one classifier exported by torch.onnx.export, as
// scripts/export-corpus.py describes it.
type PyTorchExport struct {
	Name         string    `json:"name"` // NET-opsetN-dyn|fixed-logits|softmax[-VARIANT]
	Net          string    `json:"net"`
	Opset        int       `json:"opset"`
	DynamicBatch bool      `json:"dynamicBatch"`
	Softmax      bool      `json:"softmax"`
	Variant      string    `json:"variant"`
	Size         int       `json:"size"`
	Channels     int       `json:"channels"`
	Classes      int       `json:"classes"`
	Input        string    `json:"input"`
	Output       string    `json:"output"`
	Mean         []float32 `json:"mean"`
	Std          []float32 `json:"std"`
	File         string    `json:"file"`
}

// Read returns the exported ONNX file.
func (e PyTorchExport) Read(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(e.File)
	if err != nil {
		t.Fatalf("reading the export %s: %v (re-run scripts/export-corpus.sh)", e.Name, err)
	}
	return data
}

// PyTorchExports returns the exports of the manifest $SHOAL_TEST_EXPORTS
// names, skipping t without one (failing it with
// SHOAL_TEST_EXPORTS_REQUIRED=1).
func PyTorchExports(t testing.TB) []PyTorchExport {
	t.Helper()
	path := os.Getenv(EnvExports)
	if path == "" {
		msg := "no corpus of PyTorch exports: run export " + EnvExports + "=$(scripts/export-corpus.sh ci)"
		if os.Getenv(EnvExportsRequired) == "1" {
			t.Fatal(msg + " (" + EnvExportsRequired + "=1 makes this an error)")
		}
		t.Skip(msg)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the manifest of PyTorch exports: %v", err)
	}
	var out []PyTorchExport
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("reading the manifest of PyTorch exports %s: %v", path, err)
	}
	return out
}

// FindPyTorchExport returns the named export of the manifest, failing t if
// the manifest (make test's selection or more) does not hold it.
func FindPyTorchExport(t testing.TB, name string) PyTorchExport {
	t.Helper()
	for _, e := range PyTorchExports(t) {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("the manifest %s holds no export %s (scripts/export-corpus.py's ci selection does)", os.Getenv(EnvExports), name)
	return PyTorchExport{}
}
