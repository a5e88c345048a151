package ml

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// parityMeta is meta.json of the directory scripts/bench-train-parity.py
// prepares.
type parityMeta struct {
	Size      int       `json:"size"`
	Mean      []float32 `json:"mean"`
	Std       []float32 `json:"std"`
	AClasses  int       `json:"a_classes"`
	BClasses  int       `json:"b_classes"`
	TrainSize int       `json:"b_train"`
	TestSize  int       `json:"b_test"`
}

// readParitySplit reads name.f32 (float32 NCHW images in [0, 1]) and
// name.i32 (int32 labels) from dir.
func readParitySplit(dir, name string, shape InputShape) (*Data, error) {
	raw, err := os.ReadFile(filepath.Join(dir, name+".f32"))
	if err != nil {
		return nil, err
	}
	rawLabels, err := os.ReadFile(filepath.Join(dir, name+".i32"))
	if err != nil {
		return nil, err
	}
	n := len(rawLabels) / 4
	if len(raw) != 4*n*shape.Size() {
		return nil, fmt.Errorf("%s: %d bytes of images for %d labels of %s", name, len(raw), n, shape)
	}
	d := &Data{Shape: shape, Images: make([]float32, n*shape.Size()), Labels: make([]int32, n)}
	for i := range d.Images {
		d.Images[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	for i := range d.Labels {
		d.Labels[i] = int32(binary.LittleEndian.Uint32(rawLabels[4*i:]))
	}
	return d, nil
}

// BenchmarkFineTuneParity fine-tunes the ResNet-18 export in
// $SHOAL_PARITY_DIR (base.onnx, pretrained by PyTorch on another dataset,
// or with SHOAL_PARITY_EXPORT=bn base-bn.onnx, the same export with its
// batch norms kept as nodes; scripts/bench-train-parity.py prepare writes
// the directory) on its
// dataset B with PyTorch's side's recipe: a new head (seed
// $SHOAL_PARITY_SEED), Adam at $SHOAL_PARITY_LR, batch $SHOAL_PARITY_BATCH,
// $SHOAL_PARITY_EPOCHS epochs, constant rate, no augmentation, batch norms
// frozen. $SHOAL_PARITY_MODES lists the modes (head-only, last-stage,
// full). It prints the test accuracy after every epoch: the test split is
// the validation set, which only measures (Train keeps the weights of the
// best validation epoch, but every epoch's figure is logged, and the last
// is the one compared). scripts/bench-train.sh accuracy-parity runs it.
func BenchmarkFineTuneParity(b *testing.B) {
	dir := os.Getenv("SHOAL_PARITY_DIR")
	if dir == "" {
		b.Skip("SHOAL_PARITY_DIR names the directory scripts/bench-train-parity.py prepares (scripts/bench-train.sh accuracy-parity)")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		b.Fatal(err)
	}
	var meta parityMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		b.Fatal(err)
	}
	export := "base.onnx"
	if os.Getenv("SHOAL_PARITY_EXPORT") == "bn" {
		export = "base-bn.onnx" // batch norms kept as nodes, not folded
	}
	b.Logf("fine-tuning %s", export)
	base, err := os.ReadFile(filepath.Join(dir, export))
	if err != nil {
		b.Fatal(err)
	}
	shape := InputShape{Channels: 3, Height: meta.Size, Width: meta.Size}
	train, err := readParitySplit(dir, "b_train", shape)
	if err != nil {
		b.Fatal(err)
	}
	test, err := readParitySplit(dir, "b_test", shape)
	if err != nil {
		b.Fatal(err)
	}
	spec := ImportSpec{Shape: shape, Mean: meta.Mean, Std: meta.Std, InputName: "input", OutputName: "output", Classes: meta.AClasses}
	seed := int64(envInt("SHOAL_PARITY_SEED", 1))
	lr := 1e-3
	if v := os.Getenv("SHOAL_PARITY_LR"); v != "" {
		if _, err := fmt.Sscan(v, &lr); err != nil {
			b.Fatalf("SHOAL_PARITY_LR: %v", err)
		}
	}
	cfg := Config{NumClasses: meta.BClasses, Epochs: envInt("SHOAL_PARITY_EPOCHS", 8), BatchSize: envInt("SHOAL_PARITY_BATCH", 16),
		LearningRate: lr, Optimizer: OptimizerAdam, Schedule: ScheduleConstant, Seed: seed}
	// The Trainer's backend where ONNX Runtime is installed.
	lib, err := onnxrt.Config{}.LibraryPath()
	if err != nil {
		b.Fatal(err)
	}
	if cfg.Backend, err = BackendConfig(BackendONNX, lib); err != nil {
		b.Fatal(err)
	}
	modes := strings.Fields(os.Getenv("SHOAL_PARITY_MODES"))
	if len(modes) == 0 {
		modes = []string{"head-only", "last-stage"}
	}
	ctx := context.Background()
	rt := onnxrt.Config{}
	frozenPass := func(bb *Backbone, d *Data) *Data {
		ex, err := bb.Extractor(rt, 50, onnxrt.SessionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Close()
		out, err := ex.Extract(ctx, d, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	report := func(mode string, res *Result, err error) {
		if err != nil {
			b.Fatalf("%s: %v", mode, err)
		}
		res.Model.Close()
		b.ReportMetric(res.Epochs[len(res.Epochs)-1].ValAcc*100, "test-acc-%-"+mode)
	}
	for range b.N {
		for _, mode := range modes {
			// Every epoch's figure as it comes: a slow mode shows progress.
			cfg.OnEpoch = func(e EpochMetrics) {
				fmt.Printf("shoal %s epoch %d test-acc %.4f (train loss %.4f, %.1f images/s)\n", mode, e.Epoch, e.ValAcc, e.TrainLoss, e.ImagesPerSecond)
			}
			switch mode {
			case "head-only":
				bb, err := NewBackbone(base, spec)
				if err != nil {
					b.Fatal(err)
				}
				res, err := TrainHead(ctx, cfg, frozenPass(bb, train), frozenPass(bb, test), nil)
				report(mode, res, err)
			case "last-stage":
				p, err := NewPartial(rt, base, spec, meta.BClasses, true, seed, 1)
				if err != nil {
					b.Fatal(err)
				}
				res, err := TrainPartial(ctx, cfg, p, frozenPass(p.Frozen, train), frozenPass(p.Frozen, test), nil)
				report(mode, res, err)
			case "full":
				imp, err := ImportONNX(base, spec, meta.BClasses, true, seed)
				if err != nil {
					b.Fatal(err)
				}
				full := cfg
				full.Import = imp
				res, err := Train(ctx, full, train, test)
				report(mode, res, err)
			default:
				b.Fatalf("SHOAL_PARITY_MODES: unknown mode %q (head-only, last-stage, full)", mode)
			}
		}
	}
}
