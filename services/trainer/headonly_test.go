package trainer_test

import (
	"crypto/sha256"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/ml/mltest"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// artifact returns a registered version's ONNX file.
func (e *env) artifact(ref *registrypb.VersionRef) []byte {
	e.registry.mu.Lock()
	defer e.registry.mu.Unlock()
	for i, v := range e.registry.versions {
		if v.GetModel() == ref.GetModel() && v.GetVersion() == ref.GetVersion() {
			return e.registry.artifacts[i]
		}
	}
	return nil
}

// TestHeadOnlyTraining trains only a new head on the frozen backbone of an
// uploaded classifier: the features are computed once in ONNX Runtime and
// cached, the result is the base graph with the new head, served as the
// base is; jobs that cannot be head-only are refused up front.
func TestHeadOnlyTraining(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	in := &registrypb.InputSpec{
		Channels: 1, Height: 16, Width: 16, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH,
		Mean: []float32{0.3}, Std: []float32{0.3}, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW,
		InputName: "input", OutputName: "output", OutputIsProbabilities: true,
	}
	// A base with other labels (5 classes): the head is new either way.
	classifier := mltest.Classifier{Channels: 1, Size: 16, Classes: 5, Input: "input", Output: "output", Softmax: true, Seed: 4}
	data, err := classifier.Build()
	if err != nil {
		t.Fatal(err)
	}
	base := e.registry.upload("tiny", []string{"a", "b", "c", "d", "e"}, in, "tiny-cnn", data)
	head := trainerpb.TrainLayers_TRAIN_LAYERS_HEAD
	spec := func(seed int64) *trainerpb.JobSpec {
		return &trainerpb.JobSpec{Dataset: "shapes", Model: "tuned", Epochs: 6, BatchSize: 8, LearningRate: 1e-2, Seed: seed,
			Backend: "go", BaseVersion: base, TrainLayers: head}
	}

	job, evs := runJob(t, e, spec(1))
	l := logs(evs)
	for _, want := range []string{"head-only", "Gemm", "running the backbone in ONNX Runtime on 60 images", "cached the features", "equal the cached features × the head"} {
		if !strings.Contains(l, want) {
			t.Errorf("job log does not say %q:\n%s", want, l)
		}
	}
	if strings.Contains(l, "augmented") {
		t.Errorf("job log mentions augmentation, which head-only jobs leave off by default:\n%s", l)
	}
	if got := job.GetSpec(); got.GetAugmentation() == nil || got.GetAugmentation().GetHorizontalFlip() || got.GetArchitecture() != "onnx" || got.GetImageSize() != 16 {
		t.Errorf("normalised spec = %v; want no augmentation, architecture onnx, the base's 16x16 input", got)
	}
	v := e.version(t, job.GetResult())
	if p := v.GetLineage().GetParent(); p.GetModel() != "tiny" || p.GetVersion() != base.GetVersion() {
		t.Errorf("lineage parent = %v; want %v", p, base)
	}
	if got := v.GetInputSpec(); got.GetInputName() != "input" || got.GetOutputName() != "output" || got.GetMean()[0] != 0.3 ||
		!got.GetOutputIsProbabilities() || v.GetArchitecture() != "tiny-cnn" || len(v.GetLabels()) != 3 ||
		got.GetJpegDecode() != registrypb.JpegDecode_JPEG_DECODE_FULL || v.GetHyperParameters()["train_layers"] != "head" || v.GetHyperParameters()["augmentation"] != "none" {
		t.Errorf("head-only version = %v; want the base's input spec and architecture, 3 labels, train_layers head, no augmentation", v)
	}
	acc := serveAccuracy(t, e, e.dataset, job.GetResult())
	t.Logf("head-only version served by ONNX Runtime: test accuracy %.2f", acc)
	if acc < 0.75 {
		t.Errorf("head-only version served by ONNX Runtime: test accuracy %.2f; want >= 0.75", acc)
	}

	// The same images and base again: the features come from the cache,
	// and give the same model as the backbone's own pass did.
	again, evs := runJob(t, e, spec(1))
	l = logs(evs)
	if !strings.Contains(l, "cached: the backbone does not run") || strings.Contains(l, "running the backbone") {
		t.Errorf("second job's log does not say the features were cached:\n%s", l)
	}
	if a, b := sha256.Sum256(e.artifact(job.GetResult())), sha256.Sum256(e.artifact(again.GetResult())); a != b {
		t.Errorf("the same job on cached features registered a different model")
	}

	// Augmentation, when asked for, runs the backbone every epoch.
	aug := spec(2)
	aug.Augmentation = &trainerpb.Augmentation{HorizontalFlip: true}
	aug.Epochs = 3
	_, evs = runJob(t, e, aug)
	if l := logs(evs); !strings.Contains(l, "runs again on the 39 augmented training images every epoch (3 passes)") {
		t.Errorf("augmented job's log does not say the backbone runs every epoch:\n%s", l)
	}

	// The same through the CLI: shoal train --freeze backbone.
	out, errOut, code := runCLI(t, e.addr, "train", "--dataset", "shapes", "--base", "tiny:1", "--freeze", "backbone",
		"--epochs", "2", "--batch-size", "8", "--follow")
	if code != cli.ExitOK || !strings.Contains(out, "queued: a new head on the frozen backbone of tiny:1") || !strings.Contains(out, "SUCCEEDED") {
		t.Errorf("shoal train --freeze backbone --follow = exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if shown, _, _ := runCLI(t, e.addr, "jobs", "show", jobIDPattern.FindStringSubmatch(out)[1]); !strings.Contains(shown, "backbone frozen (head only)") {
		t.Errorf("shoal jobs show of a head-only job:\n%s\nwant the frozen backbone named", shown)
	}

	// What cannot be head-only is refused before a job is queued.
	sigmoid := classifier
	sigmoid.Softmax, sigmoid.Tail = false, "Sigmoid"
	noHead, err := sigmoid.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec *trainerpb.JobSpec
		want codes.Code
		msg  string
	}{
		{"no base version", &trainerpb.JobSpec{TrainLayers: head}, codes.InvalidArgument, "needs spec.baseVersion"},
		{"a base without a recognisable head", &trainerpb.JobSpec{TrainLayers: head,
			BaseVersion: e.registry.upload("sigmoid", []string{"a", "b", "c", "d", "e"}, in, "", noHead)}, codes.FailedPrecondition, "no classification layer"},
		{"a base that is not ONNX", &trainerpb.JobSpec{TrainLayers: head,
			BaseVersion: e.registry.upload("junk", []string{"a", "b"}, in, "", []byte("not a model"))}, codes.FailedPrecondition, "not an ONNX model"},
		{"another architecture", &trainerpb.JobSpec{TrainLayers: head, BaseVersion: base, Architecture: "small-cnn"}, codes.InvalidArgument, "leave spec.architecture empty"},
		{"unknown layers", &trainerpb.JobSpec{TrainLayers: 7, BaseVersion: base}, codes.InvalidArgument, "spec.trainLayers"},
	} {
		tc.spec.Dataset = "shapes"
		_, err := e.client.StartTraining(t.Context(), &trainerpb.StartTrainingRequest{Spec: tc.spec})
		wantCode(t, "StartTraining("+tc.name+")", err, tc.want)
		if err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("StartTraining(%s) = %v; want a message naming %q", tc.name, err, tc.msg)
		}
	}
}

// TestHeadOnlyOnShoalVersion trains a new head on a version a Shoal job
// registered: its export's classification layer (MatMul, then Add of a
// bias GoMLX broadcasts with Reshape and Expand) is found and replaced.
func TestHeadOnlyOnShoalVersion(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	base, _ := runJob(t, e, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 2, BatchSize: 8, Seed: 1})
	job, evs := runJob(t, e, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 4, BatchSize: 8, LearningRate: 1e-2, Seed: 1,
		BaseVersion: base.GetResult(), TrainLayers: trainerpb.TrainLayers_TRAIN_LAYERS_HEAD})
	if l := logs(evs); !strings.Contains(l, "MatMul+Add") || !strings.Contains(l, "running the backbone") {
		t.Errorf("job log does not name the MatMul+Add head and the backbone's pass:\n%s", l)
	}
	v := e.version(t, job.GetResult())
	if v.GetArchitecture() != "small-cnn" || v.GetInputSpec().GetInputName() != "images" || v.GetHyperParameters()["train_layers"] != "head" ||
		v.GetInputSpec().GetJpegDecode() != registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED {
		t.Errorf("head-only version = %v; want the base's architecture small-cnn and input spec", v)
	}
	if acc := serveAccuracy(t, e, e.dataset, job.GetResult()); acc < 0.75 {
		t.Errorf("head-only version served by ONNX Runtime: test accuracy %.2f; want >= 0.75", acc)
	}
	// Its last stages are not cut: it fine-tunes whole, from its weights.
	_, err := e.client.StartTraining(t.Context(), &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{Dataset: "shapes",
		BaseVersion: base.GetResult(), TrainLayers: trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES, UnfrozenStages: 1}})
	wantCode(t, "StartTraining(last stages of a Shoal version)", err, codes.FailedPrecondition)
	if err != nil && !strings.Contains(err.Error(), "fine-tune it whole") {
		t.Errorf("StartTraining(last stages of a Shoal version) = %v; want it told to fine-tune the version whole", err)
	}
}

// TestHeadOnlyJobResumesOnCachedFeatures stops a head-only job's trainer
// mid-training: the next trainer resumes the job from its checkpoint, with
// the features the first one cached, and the backbone does not run again.
func TestHeadOnlyJobResumesOnCachedFeatures(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	cfg := dbtest.Config(t, db.SQLite)
	a := newEnv(t, cfg, envOptions{})
	in := &registrypb.InputSpec{Channels: 1, Height: 16, Width: 16, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH,
		Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW, InputName: "input", OutputName: "output"}
	data, err := mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Seed: 5}.Build()
	if err != nil {
		t.Fatal(err)
	}
	base := a.registry.upload("tiny", []string{"bottom", "left", "top"}, in, "", data)
	// Enough epochs (tens of milliseconds each) for the stop to land mid-training.
	j := a.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 60, BatchSize: 8, Seed: 3, BaseVersion: base,
		TrainLayers: trainerpb.TrainLayers_TRAIN_LAYERS_HEAD})
	next := follow(t, a, j.GetId())
	until(t, next, func(ev *trainerpb.WatchJobResponse) bool { return ev.GetEpoch().GetEpoch() == 2 })
	a.stop()
	got, err := a.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetJob().GetState() != trainerpb.JobState_JOB_STATE_RUNNING {
		t.Skipf("the job was %s when the shutdown reached it", got.GetJob().GetState())
	}
	b := newEnv(t, cfg, envOptions{gdb: a.gdb, workDir: a.workDir, dataset: a.dataset, reg: a.registry, blobs: a.blobs})
	evs, err := b.watch(t, j.GetId(), got.GetJob().GetLastSequence())
	if err != nil {
		t.Fatalf("WatchJob() on the new trainer = %v", err)
	}
	if last := evs[len(evs)-1]; last.GetState().GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("last event = %v; want SUCCEEDED", last)
	}
	l := logs(evs)
	if !strings.Contains(l, "resuming") || !strings.Contains(l, "cached: the backbone does not run") || strings.Contains(l, "running the backbone") {
		t.Errorf("the resumed job's log does not say it resumed on cached features:\n%s", l)
	}
}

// TestHeadOnlyJobFailsOnACorruptImage: an image that does not decode fails
// the job, naming it, and nothing is cached or registered.
func TestHeadOnlyJobFailsOnACorruptImage(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	images := synthetic([]string{"left", "bottom", "top"}, 16, 4)
	images[40].content = images[40].content[:len(images[40].content)/2]
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{dataset: &fakeDataset{name: "shapes", images: images}})
	in := &registrypb.InputSpec{Channels: 1, Height: 16, Width: 16, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH,
		Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW, InputName: "input", OutputName: "output"}
	data, err := mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Seed: 5}.Build()
	if err != nil {
		t.Fatal(err)
	}
	base := e.registry.upload("tiny", []string{"bottom", "left", "top"}, in, "", data)
	j := e.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 2, BatchSize: 8, BaseVersion: base, TrainLayers: trainerpb.TrainLayers_TRAIN_LAYERS_HEAD})
	if _, err := e.watch(t, j.GetId(), 0); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetJob().GetState() != trainerpb.JobState_JOB_STATE_FAILED || !strings.Contains(got.GetJob().GetError(), "x.png") {
		t.Errorf("job = %s (%q); want FAILED naming the image", got.GetJob().GetState(), got.GetJob().GetError())
	}
	cached := 0
	if err := e.blobs.List(t.Context(), "trainer/features/", func(blob.Info) error { cached++; return nil }); err != nil || cached != 0 {
		t.Errorf("cached feature files = %d (%v); want none", cached, err)
	}
}
