package ml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"

	"github.com/shoalml/shoal/internal/ml/mltest"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// partialCases are the exports make test unfreezes, with their stages.
var partialCases = []struct {
	export string
	stages int
}{
	// Stem, layer1 (with the max pool), layer2, layer3, layer4.
	{"resnet18-opset13-dyn-logits", 5},
	// Five resolutions: /2, /4, /8, /16, /32.
	{"mobilenetv2-opset13-dyn-softmax", 5},
}

// TestPartialUnfreezing trains the last stage and the classification layer
// of PyTorch's ResNet-18 and MobileNetV2 on the frozen part's outputs,
// computed in ONNX Runtime (see fineTunePartial), and refuses stage counts
// out of range.
func TestPartialUnfreezing(t *testing.T) {
	needsGoMLX(t)
	rt := ortLibrary(t)
	for _, tc := range partialCases {
		t.Run(tc.export, func(t *testing.T) {
			e := mltest.FindPyTorchExport(t, tc.export)
			data := e.Read(t)
			for _, bad := range []int{0, tc.stages, tc.stages + 3} {
				_, err := NewPartial(rt, data, exportSpec(e), 3, true, 1, bad)
				if !errors.Is(err, ErrImport) || !strings.Contains(err.Error(), fmt.Sprintf("the graph has %d stages", tc.stages)) {
					t.Errorf("NewPartial(%d unfrozen stages) = %v; want ErrImport naming the %d stages", bad, err, tc.stages)
				}
			}
			p, detail, err := fineTunePartial(t, e, rt, 1)
			if err != nil {
				t.Fatal(err)
			}
			// At 32 px the last stage runs at 1x1, the one before at 2x2.
			if p.Stages != tc.stages || p.CutShape.Height != 2 || p.CutShape.Width != 2 {
				t.Errorf("NewPartial() found %d stages and cut at %q of shape %s; want %d stages, cut at the 2x2 end of the stage before the last",
					p.Stages, p.Cut, p.CutShape, tc.stages)
			}
			t.Log(detail)
		})
	}
}

// TestPartialExports unfreezes the last stage of every other export of
// the manifest (scripts/test-exports.sh runs the whole corpus): the
// ResNets, MobileNets and EfficientNet must train that way, with five
// stages at their 32 px; other networks either do or are refused with the
// reason, and the import's refusals stay refusals.
func TestPartialExports(t *testing.T) {
	needsGoMLX(t)
	rt := ortLibrary(t)
	staged := []string{"resnet18", "resnet34", "resnet50", "mobilenetv2", "mobilenetv3small", "efficientnetb0"}
	for _, e := range mltest.PyTorchExports(t) {
		if slices.ContainsFunc(partialCases, func(c struct {
			export string
			stages int
		}) bool {
			return c.export == e.Name
		}) {
			continue // TestPartialUnfreezing's
		}
		t.Run(e.Name, func(t *testing.T) {
			p, detail, err := fineTunePartial(t, e, rt, 1)
			_, refused := refusedNets[e.Net]
			switch {
			case refused && !errors.Is(err, ErrImport):
				t.Errorf("partial fine-tuning of %s = %v; want a refusal", e.Name, err)
			case err != nil && (!errors.Is(err, ErrImport) || slices.Contains(staged, e.Net)):
				t.Errorf("partial fine-tuning of %s: %v", e.Name, err)
			case err != nil:
				t.Logf("refused: %v", err)
			case slices.Contains(staged, e.Net) && p.Stages != 5:
				t.Errorf("%s: %d stages; want 5", e.Name, p.Stages)
			default:
				t.Log(detail)
			}
		})
	}
}

func exportSpec(e mltest.PyTorchExport) ImportSpec {
	return ImportSpec{Shape: InputShape{Channels: e.Channels, Height: e.Size, Width: e.Size}, Mean: e.Mean, Std: e.Std,
		InputName: e.Input, OutputName: e.Output, Classes: e.Classes}
}

// fineTunePartial unfreezes e's last stages with a new head for 3 classes,
// computes the frozen part's outputs in ONNX Runtime, trains a few steps
// and exports: the training loss must go down, the exported model must be
// the whole network whose frozen initialisers are the base's bytes, and
// ONNX Runtime on it must answer as the trained part does on the cached
// outputs. An error wrapping ErrImport is a refusal.
func fineTunePartial(t *testing.T, e mltest.PyTorchExport, rt onnxrt.Config, unfrozen int) (*Partial, string, error) {
	t.Helper()
	data := e.Read(t)
	spec := exportSpec(e)
	p, err := NewPartial(rt, data, spec, 3, true, 1, unfrozen)
	if err != nil {
		return nil, "", err
	}
	if err := CheckImport(p.Suffix); err != nil {
		return nil, "", err
	}
	batch := 8
	if !e.DynamicBatch {
		batch = 1
	}
	ex, err := p.Frozen.Extractor(rt, batch, onnxrt.SessionOptions{})
	if err != nil {
		return nil, "", err
	}
	defer ex.Close()
	images, test := stripes(24, spec.Shape, 1), stripes(9, spec.Shape, 9)
	train, err := ex.Extract(context.Background(), images, nil, nil)
	if err != nil {
		return nil, "", err
	}
	testOutputs, err := ex.Extract(context.Background(), test, nil, nil)
	if err != nil {
		return nil, "", err
	}
	cfg := Config{NumClasses: 3, Epochs: 3, BatchSize: 12, LearningRate: 1e-3, Seed: 3, Backend: "go"}
	res, err := TrainPartial(context.Background(), cfg, p, train, nil, nil)
	if err != nil {
		return nil, "", fmt.Errorf("TrainPartial() = %w", err)
	}
	defer res.Model.Close()
	first, last := res.Epochs[0].TrainLoss, res.Epochs[len(res.Epochs)-1].TrainLoss
	if !(last < first) {
		return nil, "", fmt.Errorf("TrainPartial() loss %.3g -> %.3g; want it down", first, last)
	}
	out, err := p.Export(res.Model)
	if err != nil {
		return nil, "", fmt.Errorf("Export() = %w", err)
	}
	want, err := res.Model.Probabilities(testOutputs.Images)
	if err != nil {
		return nil, "", err
	}
	got, err := p.RunONNX(rt, out, 4, test.Images)
	if err != nil {
		return nil, "", fmt.Errorf("ONNX Runtime on the export: %w", err)
	}
	d, err := CompareProbabilities(want, got, 3)
	if err != nil {
		return nil, "", err
	}
	if !d.Acceptable(1e-4) {
		return nil, "", fmt.Errorf("ONNX Runtime on the whole exported network differs from the trained part on the cached outputs: %+v", d)
	}

	// Frozen initialisers are the base's bytes; the trained part's changed.
	base, _ := initializers(t, data)
	exported, _ := initializers(t, out)
	var suffix onnxpb.ModelProto
	if err := proto.Unmarshal(p.Suffix.graph, &suffix); err != nil {
		return nil, "", err
	}
	trainedPart := map[string]bool{}
	for _, in := range suffix.GetGraph().GetInitializer() {
		trainedPart[in.GetName()] = true
	}
	frozen, changed := 0, 0
	for name, raw := range exported {
		old, inBase := base[name]
		switch {
		case trainedPart[name]:
			if !inBase || !bytes.Equal(old, raw) {
				changed++
			}
		case inBase:
			frozen++
			if !bytes.Equal(old, raw) {
				return nil, "", fmt.Errorf("the frozen initialiser %s changed", name)
			}
		}
	}
	if frozen == 0 || changed < 2 {
		return nil, "", fmt.Errorf("export: %d frozen initialisers kept, %d of the trained part's changed; want some of each", frozen, changed)
	}
	return p, fmt.Sprintf("%d stages, cut at %q %s; loss %.3g -> %.3g; %d frozen initialisers kept, %d trained ones changed; export vs training max |Δp| %.2g",
		p.Stages, p.Cut, p.CutShape, first, last, frozen, changed, d.MaxAbsDiff), nil
}

// TestPartialAugmented: with augmentation, every epoch's training images,
// augmented, go through the frozen part again; without the images and an
// extractor, such a run is refused.
func TestPartialAugmented(t *testing.T) {
	needsGoMLX(t)
	rt := ortLibrary(t)
	c := mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Seed: 1}
	p, err := NewPartial(rt, mustBuild(t, c), importSpec(c), 3, false, 1, 2)
	if err != nil {
		t.Fatalf("NewPartial(2 of the small CNN's 3 stages) = %v", err)
	}
	if p.Stages != 3 {
		t.Errorf("NewPartial() found %d stages in Conv, MaxPool, Conv, MaxPool; want 3", p.Stages)
	}
	ex, err := p.Frozen.Extractor(rt, 8, onnxrt.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	images := stripes(16, importSpec(c).Shape, 1)
	train, err := ex.Extract(context.Background(), images, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{NumClasses: 3, Epochs: 2, BatchSize: 8, LearningRate: 1e-2, Seed: 3, Backend: "go", Augment: Augmentation{HorizontalFlip: true}}
	if _, err := TrainPartial(context.Background(), cfg, p, train, nil, nil); err == nil || !strings.Contains(err.Error(), "augmentation needs") {
		t.Errorf("TrainPartial(augmented, no images) = %v; want a refusal", err)
	}
	var passes []int
	aug := &HeadAugmentation{Images: images, Extractor: ex, OnEpochFeatures: func(epoch, done, total int) {
		if done == total {
			passes = append(passes, epoch)
		}
	}}
	res, err := TrainPartial(context.Background(), cfg, p, train, nil, aug)
	if err != nil {
		t.Fatalf("TrainPartial(augmented) = %v", err)
	}
	res.Model.Close()
	if !slices.Equal(passes, []int{1, 2}) {
		t.Errorf("the frozen part ran on the augmented images in epochs %v; want [1 2]", passes)
	}
}
