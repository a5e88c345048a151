package ml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/ml/mltest"
)

// refusedNets are the networks of the corpus the import refuses, and what
// the refusal names; every other export must fine-tune.
var refusedNets = map[string]string{
	// SqueezeNet classifies with a 1x1 convolution followed by pooling.
	"squeezenet": `no classification layer found: the output "output" comes from a Flatten node`,
	"leakycnn":   `unimplemented ONNX op "LeakyRelu"`,
}

// EnvExportsReport, if set, is a file TestPyTorchExports writes its table
// of results to (Markdown; scripts/test-exports.sh prints it).
const EnvExportsReport = "SHOAL_TEST_EXPORTS_REPORT"

// TestPyTorchExports takes every model of the corpus of PyTorch exports
// (scripts/export-corpus.sh) through what a fine-tuning job does with it:
// the import, whose GoMLX graph must answer as ONNX Runtime does on the
// file PyTorch wrote; a few training steps with a new head on a small
// learnable set, whose loss must go down; the export, which must answer
// in ONNX Runtime as GoMLX does and keep the batch-norm statistics. The
// networks of refusedNets must be refused, with their reason.
func TestPyTorchExports(t *testing.T) {
	needsGoMLX(t)
	exports := mltest.PyTorchExports(t)
	rt := ortLibrary(t)
	lib, err := rt.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var report []string
	t.Cleanup(func() {
		if path := os.Getenv(EnvExportsReport); path != "" {
			table := "| export | result | detail |\n|---|---|---|\n" + strings.Join(report, "")
			if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
				t.Errorf("writing the report: %v", err)
			}
		}
	})
	row := func(name, result, detail string) {
		mu.Lock()
		defer mu.Unlock()
		report = append(report, fmt.Sprintf("| %s | %s | %s |\n", name, result, strings.ReplaceAll(detail, "|", `\|`)))
	}
	for _, e := range exports {
		t.Run(e.Name, func(t *testing.T) {
			start := time.Now()
			detail, err := fineTuneExport(t, e, lib)
			took := time.Since(start).Round(time.Second)
			want, refuse := refusedNets[e.Net]
			switch {
			case refuse && errors.Is(err, ErrImport) && strings.Contains(err.Error(), want):
				row(e.Name, "refused", err.Error())
			case refuse:
				row(e.Name, "failing", fmt.Sprintf("want a refusal naming %q, got %v", want, err))
				t.Errorf("fine-tuning %s = %v; want a refusal naming %q", e.Name, err, want)
			case err != nil:
				row(e.Name, "failing", err.Error())
				t.Errorf("fine-tuning %s: %v", e.Name, err)
			default:
				row(e.Name, "fine-tunes", fmt.Sprintf("%s; %v", detail, took))
				t.Logf("%s: %s (%v)", e.Name, detail, took)
			}
		})
	}
}

// fineTuneExport imports, checks, trains and exports e; an error either
// refuses the model (ErrImport) or says what went wrong.
func fineTuneExport(t *testing.T, e mltest.PyTorchExport, lib string) (string, error) {
	t.Helper()
	rt := ortLibrary(t)
	data := e.Read(t)
	spec := ImportSpec{
		Shape: InputShape{Channels: e.Channels, Height: e.Size, Width: e.Size}, Mean: e.Mean, Std: e.Std,
		InputName: e.Input, OutputName: e.Output, Classes: e.Classes,
	}

	// The import, before any training, answers as ONNX Runtime does on
	// the file PyTorch wrote (a fixed batch there is run one by one).
	same, err := ImportONNX(data, spec, e.Classes, false, 1)
	if err != nil {
		return "", err
	}
	if err := CheckImport(same); err != nil {
		return "", err
	}
	test := stripes(9, spec.Shape, 9)
	m, err := newCheckModel(same)
	if err != nil {
		return "", err
	}
	want, err := m.Probabilities(test.Images)
	m.Close()
	if err != nil {
		return "", fmt.Errorf("GoMLX on the import: %w", err)
	}
	batch := 4
	if !e.DynamicBatch {
		batch = 1
	}
	got, err := same.RunONNX(rt, data, batch, test.Images)
	if err != nil {
		return "", fmt.Errorf("ONNX Runtime on the export: %w", err)
	}
	before, err := CompareProbabilities(want, got, e.Classes)
	if err != nil {
		return "", err
	}
	if before.MaxAbsDiff > 1e-4 {
		return "", fmt.Errorf("GoMLX on the imported graph differs from ONNX Runtime on PyTorch's file by %.2g", before.MaxAbsDiff)
	}

	// A few full-batch steps with a new head for 3 classes: the loss goes
	// down. The rate is one that fine-tunes every network here.
	imp, err := ImportONNX(data, spec, 3, true, 1)
	if err != nil {
		return "", err
	}
	// On both backends: ONNX Runtime's, which jobs use where it is
	// installed, and the pure-Go one; the latter's model is exported.
	onnxBackend, err := BackendConfig(BackendONNX, lib)
	if err != nil {
		return "", err
	}
	var res *Result
	var losses []string
	backends := []string{onnxBackend, BackendGo}
	for _, backend := range backends {
		cfg := Config{NumClasses: 3, Epochs: 4, BatchSize: 12, LearningRate: 1e-4, Seed: 3, Backend: backend, Import: imp}
		start := time.Now()
		r, err := Train(context.Background(), cfg, stripes(12, spec.Shape, 1), nil)
		if err != nil {
			return "", fmt.Errorf("training on the %s backend: %w", backendName(backend), err)
		}
		first, last := r.Epochs[0].TrainLoss, r.Epochs[len(r.Epochs)-1].TrainLoss
		if !(last < 0.7*first) {
			r.Model.Close()
			return "", fmt.Errorf("training on the %s backend: loss %.3g after %d steps, from %.3g; want it down by 30%%", backendName(backend), last, len(r.Epochs)-1, first)
		}
		losses = append(losses, fmt.Sprintf("%s: loss %.3g -> %.3g in %d steps (%v)", backendName(backend), first, last, len(r.Epochs)-1, time.Since(start).Round(100*time.Millisecond)))
		if res != nil {
			res.Model.Close()
		}
		res = r
	}
	defer res.Model.Close()

	// The export answers in ONNX Runtime as GoMLX does, at any batch size,
	// and keeps the batch-norm statistics.
	out, err := res.Model.ExportONNX(lib)
	if err != nil {
		return "", fmt.Errorf("ExportONNX: %w", err)
	}
	want, err = res.Model.Probabilities(test.Images)
	if err != nil {
		return "", err
	}
	got, err = imp.RunONNX(rt, out, 4, test.Images)
	if err != nil {
		return "", fmt.Errorf("ONNX Runtime on the fine-tuned export: %w", err)
	}
	after, err := CompareProbabilities(want, got, 3)
	if err != nil {
		return "", err
	}
	if !after.Acceptable(1e-4) {
		return "", fmt.Errorf("ONNX Runtime on the fine-tuned export differs from GoMLX: %+v", after)
	}
	inits, nodes := initializers(t, data)
	trained, _ := initializers(t, out)
	for _, n := range nodes {
		if n.GetOpType() == "BatchNormalization" {
			for _, in := range n.GetInput()[3:] {
				if !bytes.Equal(inits[in], trained[in]) {
					return "", fmt.Errorf("the batch-norm statistics %s changed", in)
				}
			}
		}
	}
	return fmt.Sprintf("%s; import vs ONNX Runtime %.1g, export %.1g",
		strings.Join(losses, "; "), before.MaxAbsDiff, after.MaxAbsDiff), nil
}

// backendName is the name of a backend configuration, for messages.
func backendName(config string) string {
	name, _, _ := strings.Cut(config, ":")
	return name
}
