package ml

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// checkCurrentWeights fails unless m.Logits (which reuses the graph compiled
// by an earlier call) matches a newly compiled inference graph, which
// necessarily sees the model's current variables.
func checkCurrentWeights(t *testing.T, m *Model, d *Data, when string) {
	t.Helper()
	got, err := m.Logits(d.Images)
	if err != nil {
		t.Fatalf("Logits() = %v", err)
	}
	exec, err := model.NewExec(m.backend, m.store, m.logitsGraph)
	if err != nil {
		t.Fatalf("compiling reference graph: %v", err)
	}
	defer exec.Finalize()
	want, err := m.run(exec, d.Images)
	if err != nil {
		t.Fatalf("reference inference: %v", err)
	}
	var maxDiff float64
	for i := range want {
		maxDiff = max(maxDiff, math.Abs(float64(got[i]-want[i])))
	}
	if maxDiff > 1e-4 {
		t.Errorf("%s: logits differ from a freshly compiled graph's by up to %.3g", when, maxDiff)
	}
}

// TestInferenceSeesCurrentBatchNormAverages guards against evaluating with a
// graph compiled before the weights changed: ONNX Runtime's backend bakes
// non-trainable variables (the batch-norm averages) into a graph as
// constants, and reusing the graph compiled in epoch 1 made Fashion-MNIST
// test accuracy fall epoch after epoch while training accuracy rose.
func TestInferenceSeesCurrentBatchNormAverages(t *testing.T) {
	needsGoMLX(t)
	for _, backend := range []string{BackendGo, BackendONNX} {
		t.Run(backend, func(t *testing.T) {
			b := newTestBackend(t, backend)
			shape := InputShape{1, 12, 12}
			trainData, valData := stripes(96, shape, 1), stripes(30, shape, 2)
			arch, err := LookupArchitecture("small-cnn")
			if err != nil {
				t.Fatal(err)
			}
			mean, std := ChannelStats(trainData)
			m, err := NewModel(b, arch, shape, 3, mean, std, 7)
			if err != nil {
				b.Finalize()
				t.Fatal(err)
			}
			m.ownsBackend = true
			defer m.Close()
			cfg := Config{
				NumClasses: 3, Epochs: 3, BatchSize: 16, LearningRate: 1e-2, Seed: 7,
				OnEpoch: func(em EpochMetrics) {
					checkCurrentWeights(t, m, valData, fmt.Sprintf("after epoch %d", em.Epoch))
				},
			}
			if _, err := fit(context.Background(), cfg, m, trainData, valData); err != nil {
				t.Fatalf("fit() = %v", err)
			}
			checkCurrentWeights(t, m, valData, "after restoring the best epoch")
		})
	}
}

// TestBatchNormReestimationAgreesAcrossBackends re-estimates the batch-norm
// averages of the same weights over the same images on both backends: each
// must fold in every batch (avg_weight = number of batches) and reach the
// same averages. ONNX Runtime's backend used to bake the averages into the
// graph as constants and end with the last batch's statistics.
func TestBatchNormReestimationAgreesAcrossBackends(t *testing.T) {
	needsGoMLX(t)
	shape := InputShape{1, 12, 12}
	trainData := stripes(96, shape, 1)
	res, err := Train(context.Background(), Config{NumClasses: 3, Epochs: 1, BatchSize: 16, LearningRate: 1e-2, Seed: 7, Backend: "go"}, trainData, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := res.Model.Weights()
	res.Model.Close()
	if err != nil {
		t.Fatal(err)
	}
	indices := make([]int, 64)
	for i := range indices {
		indices[i] = i
	}
	averages := map[string]map[string][]float32{}
	for _, backend := range []string{BackendGo, BackendONNX} {
		b := newTestBackend(t, backend)
		arch, _ := LookupArchitecture("")
		mean, std := ChannelStats(trainData)
		m, err := NewModel(b, arch, shape, 3, mean, std, 7)
		if err != nil {
			t.Fatal(err)
		}
		m.ownsBackend = true
		if err := w.install(m, false); err != nil {
			t.Fatal(err)
		}
		if err := recomputeBatchNorm(m, trainData, indices, 16); err != nil {
			t.Fatalf("%s: recomputeBatchNorm() = %v", backend, err)
		}
		averages[backend] = map[string][]float32{}
		for v := range m.store.IterVariables() {
			if !strings.Contains(v.Path(), "/bn/") || v.Trainable {
				continue
			}
			val, err := v.Value()
			if err != nil {
				t.Fatal(err)
			}
			flat, err := tensors.CopyFlatData[float32](val)
			if err != nil {
				t.Fatal(err)
			}
			averages[backend][v.Path()] = flat
			if strings.HasSuffix(v.Path(), "/avg_weight") && flat[0] != 4 {
				t.Errorf("%s: %s = %v after 4 batches; want 4", backend, v.Path(), flat[0])
			}
		}
		m.Close()
	}
	if len(averages[BackendGo]) == 0 {
		t.Fatal("no batch-norm averages found")
	}
	for path, want := range averages[BackendGo] {
		got := averages[BackendONNX][path]
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Max(1, math.Abs(float64(want[i]))) {
				t.Errorf("%s[%d]: ONNX Runtime %v, pure Go %v", path, i, got[i], want[i])
				break
			}
		}
	}
}

// newTestBackend starts the named backend (BackendGo or BackendONNX, the
// latter on the test's ONNX Runtime); the model built on it finalises it.
func newTestBackend(t *testing.T, name string) compute.Backend {
	t.Helper()
	var lib string
	if name == BackendONNX {
		var err error
		if lib, err = ortLibrary(t).LibraryPath(); err != nil {
			t.Fatal(err)
		}
	}
	config, err := BackendConfig(name, lib)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBackend(config)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
