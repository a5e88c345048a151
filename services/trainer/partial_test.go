package trainer_test

import (
	"bytes"
	"math"
	"strings"
	"testing"

	onnxpb "github.com/gomlx/compute-onnx/support/protos"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/ml/mltest"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// initialisers maps an ONNX model's initialisers to their raw bytes.
func initialisers(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, in := range mp.GetGraph().GetInitializer() {
		out[in.GetName()] = in.GetRawData()
	}
	return out
}

// TestPartialTraining trains the last stage and a new head of PyTorch's
// ResNet-18 (uploaded as its ONNX export) with a warm-up and a lower rate
// for the backbone: the frozen part runs once per image in ONNX Runtime,
// the export is the whole network with only the trained part's weights
// changed, and the warm-up shows in the epochs' rates. Specs that cannot
// train that way are refused up front, with the reason.
func TestPartialTraining(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	x := mltest.FindPyTorchExport(t, "resnet18-opset13-dyn-logits")
	in := &registrypb.InputSpec{
		Channels: int32(x.Channels), Height: int32(x.Size), Width: int32(x.Size), Mean: x.Mean, Std: x.Std,
		ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW,
		InputName: x.Input, OutputName: x.Output, OutputIsProbabilities: x.Softmax,
	}
	data := x.Read(t)
	base := e.registry.upload("resnet", []string{"a", "b", "c", "d", "e"}[:x.Classes], in, "resnet18", data)
	last := trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES
	const rate = 1e-3
	spec := &trainerpb.JobSpec{Dataset: "shapes", Model: "tuned", Epochs: 3, BatchSize: 8, LearningRate: rate, Seed: 1,
		BaseVersion: base, TrainLayers: last, UnfrozenStages: 1, WarmupEpochs: 1, BackboneLearningRateScale: 0.1}

	job, evs := runJob(t, e, spec)
	l := logs(evs)
	for _, want := range []string{"partial: resnet version 1 has 5 stages; the last 1 and a new classification layer", "running the backbone in ONNX Runtime on 60 images",
		"equal the trained part's on the cached outputs"} {
		if !strings.Contains(l, want) {
			t.Errorf("job log does not say %q:\n%s", want, l)
		}
	}
	got := job.GetSpec()
	if got.GetBatchNorm() != trainerpb.BatchNorm_BATCH_NORM_FROZEN || got.GetAugmentation().GetHorizontalFlip() || got.GetArchitecture() != "onnx" {
		t.Errorf("normalised spec = %v; want frozen batch norm, no augmentation, architecture onnx", got)
	}
	// Epoch 1 warms up at half the rate; the cosine schedule then runs
	// over epochs 2 and 3.
	want := []float64{rate / 2, rate, rate / 2}
	for i, ep := range job.GetEpochs() {
		if math.Abs(ep.GetLearningRate()-want[i]) > 1e-12 {
			t.Errorf("epoch %d learning rate = %g; want %g (warm-up, then cosine)", ep.GetEpoch(), ep.GetLearningRate(), want[i])
		}
	}
	v := e.version(t, job.GetResult())
	hp := v.GetHyperParameters()
	if hp["train_layers"] != "last 1 stage(s)" || hp["warmup_epochs"] != "1" || hp["backbone_lr_scale"] != "0.1" || hp["batch_norm"] != "frozen" ||
		v.GetArchitecture() != "resnet18" || len(v.GetLabels()) != 3 {
		t.Errorf("version = %v; want the settings in its hyper-parameters, the base's architecture, 3 labels", v)
	}
	// The export is the whole network: every initialiser of the base is
	// there; only some (layer4's and the new head's) changed.
	before, after := initialisers(t, data), initialisers(t, e.artifact(job.GetResult()))
	kept, changed := 0, 0
	for name, raw := range before {
		now, ok := after[name]
		switch {
		case !ok:
			t.Errorf("the export lost the initialiser %s", name)
		case bytes.Equal(raw, now):
			kept++
		default:
			changed++
		}
	}
	if kept == 0 || changed == 0 || changed > kept {
		t.Errorf("export: %d of the base's initialisers kept, %d changed; want most kept and some changed", kept, changed)
	}
	t.Logf("partial ResNet-18: %d initialisers kept, %d trained; served accuracy %.2f", kept, changed, serveAccuracy(t, e, e.dataset, job.GetResult()))

	// The same job again: the frozen part's outputs come from the cache,
	// and give the same model.
	again, evs := runJob(t, e, spec)
	if l := logs(evs); !strings.Contains(l, "cached: the backbone does not run") || strings.Contains(l, "running the backbone") {
		t.Errorf("second job's log does not say the frozen outputs were cached:\n%s", l)
	}
	if a, b := e.artifact(job.GetResult()), e.artifact(again.GetResult()); !bytes.Equal(a, b) {
		t.Errorf("the same job on cached outputs registered a different model")
	}

	// The same through the CLI.
	out, errOut, code := runCLI(t, e.addr, "train", "--dataset", "shapes", "--base", "resnet:1", "--unfreeze-stages", "2",
		"--epochs", "1", "--batch-size", "8", "--follow")
	if code != cli.ExitOK || !strings.Contains(out, "queued: the last 2 stage(s) and the head of resnet:1") || !strings.Contains(out, "SUCCEEDED") {
		t.Errorf("shoal train --unfreeze-stages 2 --follow = exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	for _, tc := range []struct {
		name string
		spec *trainerpb.JobSpec
		want codes.Code
		msg  string
	}{
		{"more stages than the base has", &trainerpb.JobSpec{TrainLayers: last, UnfrozenStages: 5, BaseVersion: base}, codes.FailedPrecondition, "the graph has 5 stages"},
		{"no stage count", &trainerpb.JobSpec{TrainLayers: last, BaseVersion: base}, codes.InvalidArgument, "needs spec.unfrozenStages"},
		{"a stage count without last stages", &trainerpb.JobSpec{UnfrozenStages: 2, BaseVersion: base}, codes.InvalidArgument, "spec.unfrozenStages = 2"},
		{"no base version", &trainerpb.JobSpec{TrainLayers: last, UnfrozenStages: 1}, codes.InvalidArgument, "needs spec.baseVersion"},
		{"batch-norm update on an imported graph", &trainerpb.JobSpec{TrainLayers: last, UnfrozenStages: 1, BaseVersion: base,
			BatchNorm: trainerpb.BatchNorm_BATCH_NORM_UPDATE}, codes.FailedPrecondition, "inference mode"},
		{"warm-up as long as training", &trainerpb.JobSpec{Epochs: 2, WarmupEpochs: 2}, codes.InvalidArgument, "spec.warmupEpochs"},
		{"a backbone rate above the head's", &trainerpb.JobSpec{BackboneLearningRateScale: 1.5}, codes.InvalidArgument, "spec.backboneLearningRateScale"},
		{"a negative backbone rate", &trainerpb.JobSpec{BackboneLearningRateScale: -0.5}, codes.InvalidArgument, "spec.backboneLearningRateScale"},
		{"a backbone rate for head-only training", &trainerpb.JobSpec{TrainLayers: trainerpb.TrainLayers_TRAIN_LAYERS_HEAD, BaseVersion: base,
			BackboneLearningRateScale: 0.5}, codes.InvalidArgument, "trains no backbone weights"},
		{"an unknown batch-norm choice", &trainerpb.JobSpec{BatchNorm: 7}, codes.InvalidArgument, "spec.batchNorm"},
		{"negative warm-up", &trainerpb.JobSpec{WarmupEpochs: -1}, codes.InvalidArgument, "spec.warmupEpochs = -1"},
	} {
		tc.spec.Dataset = "shapes"
		_, err := e.client.StartTraining(t.Context(), &trainerpb.StartTrainingRequest{Spec: tc.spec})
		wantCode(t, "StartTraining("+tc.name+")", err, tc.want)
		if err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("StartTraining(%s) = %v; want a message naming %q", tc.name, err, tc.msg)
		}
	}
}
