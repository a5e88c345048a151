package ml

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/protobuf/proto"

	"github.com/shoalml/shoal/internal/ml/mltest"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// TestPartialUnfreezing trains the last stage and the classification layer
// of PyTorch's ResNet-18 and MobileNetV2 on the frozen part's outputs,
// computed in ONNX Runtime: the exported model is the whole network, whose
// frozen initialisers are the base's bytes and which answers in ONNX
// Runtime as the trained part does on the cached outputs.
func TestPartialUnfreezing(t *testing.T) {
	needsGoMLX(t)
	rt := ortLibrary(t)
	for _, tc := range []struct {
		export string
		stages int
	}{
		// Stem, layer1 (with the max pool), layer2, layer3, layer4.
		{"resnet18-opset13-dyn-logits", 5},
		// Five resolutions: /2, /4, /8, /16, /32.
		{"mobilenetv2-opset13-dyn-softmax", 5},
	} {
		t.Run(tc.export, func(t *testing.T) {
			e := mltest.FindPyTorchExport(t, tc.export)
			data := e.Read(t)
			spec := ImportSpec{Shape: InputShape{Channels: e.Channels, Height: e.Size, Width: e.Size}, Mean: e.Mean, Std: e.Std,
				InputName: e.Input, OutputName: e.Output, Classes: e.Classes}
			for _, bad := range []int{0, tc.stages, tc.stages + 3} {
				_, err := NewPartial(rt, data, spec, 3, true, 1, bad)
				if !errors.Is(err, ErrImport) || !strings.Contains(err.Error(), "stages") {
					t.Errorf("NewPartial(%d unfrozen stages) = %v; want ErrImport naming the stages", bad, err)
				}
			}
			p, err := NewPartial(rt, data, spec, 3, true, 1, 1)
			if err != nil {
				t.Fatalf("NewPartial(1 stage) = %v", err)
			}
			if p.Stages != tc.stages {
				t.Errorf("NewPartial() found %d stages; want %d", p.Stages, tc.stages)
			}
			// At 32 px the last stage runs at 1x1.
			if p.CutShape.Height != 2 || p.CutShape.Width != 2 {
				t.Errorf("NewPartial() cut at %q of shape %s; want the 2x2 end of the stage before the last", p.Cut, p.CutShape)
			}
			if err := CheckImport(p.Suffix); err != nil {
				t.Fatalf("CheckImport(suffix) = %v", err)
			}
			ex, err := p.Frozen.Extractor(rt, 8, onnxrt.SessionOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			images, test := stripes(24, spec.Shape, 1), stripes(9, spec.Shape, 9)
			train, err := ex.Extract(context.Background(), images, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			testFeatures, err := ex.Extract(context.Background(), test, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{NumClasses: 3, Epochs: 3, BatchSize: 12, LearningRate: 1e-3, Seed: 3, Backend: "go"}
			res, err := TrainPartial(context.Background(), cfg, p, train, nil, nil)
			if err != nil {
				t.Fatalf("TrainPartial() = %v", err)
			}
			defer res.Model.Close()
			if first, last := res.Epochs[0].TrainLoss, res.Epochs[len(res.Epochs)-1].TrainLoss; !(last < first) {
				t.Errorf("TrainPartial() loss %.3g -> %.3g; want it down", first, last)
			}
			out, err := p.Export(res.Model)
			if err != nil {
				t.Fatalf("Export() = %v", err)
			}
			want, err := res.Model.Probabilities(testFeatures.Images)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.RunONNX(rt, out, 4, test.Images)
			if err != nil {
				t.Fatalf("ONNX Runtime on the export: %v", err)
			}
			d, err := CompareProbabilities(want, got, 3)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Acceptable(1e-4) {
				t.Errorf("ONNX Runtime on the whole exported network differs from the trained part on the cached outputs: %+v", d)
			}

			// Frozen initialisers are the base's bytes; the trained part's
			// changed.
			base, _ := initializers(t, data)
			exported, _ := initializers(t, out)
			trainedPart := map[string]bool{}
			var suffix onnxpb.ModelProto
			if err := proto.Unmarshal(p.Suffix.graph, &suffix); err != nil {
				t.Fatal(err)
			}
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
						t.Errorf("the frozen initialiser %s changed", name)
					}
				}
			}
			if frozen == 0 || changed < 2 {
				t.Errorf("export: %d frozen initialisers kept, %d of the trained part's changed; want some of each", frozen, changed)
			}
			t.Logf("%d stages, cut at %q %s; %d frozen initialisers kept, %d trained ones changed; export vs training max |Δp| %.2g",
				p.Stages, p.Cut, p.CutShape, frozen, changed, d.MaxAbsDiff)
		})
	}
}
