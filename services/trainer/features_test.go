package trainer_test

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// runJob starts a job, follows it to its end and returns its events.
func runJob(t testing.TB, e *env, spec *trainerpb.JobSpec) (*trainerpb.Job, []*trainerpb.WatchJobResponse) {
	t.Helper()
	j := e.start(t, spec)
	evs, err := e.watch(t, j.GetId(), 0)
	if err != nil {
		t.Fatalf("WatchJob() = %v", err)
	}
	got, err := e.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if st := got.GetJob().GetState(); st != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job ended %s (%s); want SUCCEEDED", st, got.GetJob().GetError())
	}
	return got.GetJob(), evs
}

func logs(evs []*trainerpb.WatchJobResponse) string {
	var b strings.Builder
	for _, ev := range evs {
		if l := ev.GetLog(); l != nil {
			b.WriteString(l.GetMessage() + "\n")
		}
	}
	return b.String()
}

func (e *env) version(t testing.TB, ref *registrypb.VersionRef) *registrypb.Version {
	t.Helper()
	e.registry.mu.Lock()
	defer e.registry.mu.Unlock()
	for _, v := range e.registry.versions {
		if v.GetModel() == ref.GetModel() && v.GetVersion() == ref.GetVersion() {
			return v
		}
	}
	t.Fatalf("version %v not registered", ref)
	return nil
}

func TestJobFollowsScheduleAndRecordsSettings(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	job, _ := runJob(t, e, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 4, BatchSize: 8, LearningRate: 4e-3, Seed: 1,
		Schedule: trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_STEP, Optimizer: trainerpb.Optimizer_OPTIMIZER_SGD,
		WeightDecay: 1e-4, Augmentation: &trainerpb.Augmentation{HorizontalFlip: true, CropMinScale: 0.8, ColorJitter: 0.1}})
	want := []float64{4e-3, 4e-3, 4e-4, 4e-5}
	if len(job.GetEpochs()) != 4 {
		t.Fatalf("%d epochs; want 4", len(job.GetEpochs()))
	}
	for i, ep := range job.GetEpochs() {
		if math.Abs(ep.GetLearningRate()-want[i]) > 1e-12 {
			t.Errorf("epoch %d learning rate = %g; want %g (step schedule)", i+1, ep.GetLearningRate(), want[i])
		}
	}
	hp := e.version(t, job.GetResult()).GetHyperParameters()
	for k, v := range map[string]string{"schedule": "step", "optimizer": "sgd", "weight_decay": "0.0001", "augmentation": "hflip,crop=0.8,jitter=0.1"} {
		if hp[k] != v {
			t.Errorf("hyper-parameter %s = %q; want %q", k, hp[k], v)
		}
	}

	// Defaults: the ml package's, recorded in the spec.
	d := e.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1}).GetSpec()
	if d.GetOptimizer() != trainerpb.Optimizer_OPTIMIZER_ADAM || d.GetSchedule() != trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_COSINE ||
		!d.GetAugmentation().GetHorizontalFlip() || d.GetLearningRate() != ml.Defaults().LearningRate {
		t.Errorf("default spec = %v; want Adam, cosine, horizontal flips", d)
	}
}

func TestJobStopsEarly(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	job, evs := runJob(t, e, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 40, BatchSize: 8, LearningRate: 3e-3, Seed: 1,
		EarlyStoppingPatience: 1, Augmentation: &trainerpb.Augmentation{}})
	n := len(job.GetEpochs())
	if n >= 40 {
		t.Fatalf("trained all %d epochs; want an early stop", n)
	}
	best := 0
	for _, ep := range job.GetEpochs() {
		if ep.GetBest() {
			best = int(ep.GetEpoch())
		}
	}
	if n != best+1 {
		t.Errorf("stopped after %d epochs with the best at %d; want one epoch (the patience) after the best", n, best)
	}
	if l := logs(evs); !strings.Contains(l, "early stopping after epoch") {
		t.Errorf("job log does not mention early stopping:\n%s", l)
	}
	if hp := e.version(t, job.GetResult()).GetHyperParameters(); hp["epochs_trained"] != strconv.Itoa(n) || hp["epochs"] != "40" {
		t.Errorf("hyper-parameters epochs %q, epochs_trained %q; want 40 and %d", hp["epochs"], hp["epochs_trained"], n)
	}
}

func TestFineTuning(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	cfg := dbtest.Config(t, db.SQLite)
	e := newEnv(t, cfg, envOptions{})
	base, _ := runJob(t, e, &trainerpb.JobSpec{Dataset: "shapes", Model: "shapes", Epochs: 3, BatchSize: 8, LearningRate: 3e-3, Seed: 1})
	baseRef := base.GetResult()
	baseVal := 0.0
	for _, ep := range base.GetEpochs() {
		if ep.GetBest() {
			baseVal = ep.GetValAccuracy()
		}
	}

	// At a rate too small to learn in one epoch, the fine-tuned job starts
	// where the base ended; a fresh one does not.
	slow := func(ref *registrypb.VersionRef) float64 {
		job, _ := runJob(t, e, &trainerpb.JobSpec{Dataset: "shapes", Model: "shapes", Epochs: 1, BatchSize: 8, LearningRate: 1e-7, Seed: 2, BaseVersion: ref})
		if ref != nil {
			if p := e.version(t, job.GetResult()).GetLineage().GetParent(); p.GetModel() != ref.GetModel() || p.GetVersion() != ref.GetVersion() {
				t.Errorf("lineage parent = %v; want %v", p, ref)
			}
		}
		return job.GetEpochs()[0].GetValAccuracy()
	}
	tuned, fresh := slow(baseRef), slow(nil)
	if !(tuned >= baseVal-0.1 && tuned >= fresh+0.3) {
		t.Errorf("first-epoch validation accuracy: fine-tuned %.2f, fresh %.2f, base %.2f; want the base's, far above fresh", tuned, fresh, baseVal)
	}

	// Other labels: a new head on the base's features. The second service
	// shares the first one's database, so the first one's workers stop
	// before they could claim a job for a dataset they do not know.
	e.stop()
	two := &fakeDataset{name: "two", images: synthetic([]string{"left", "top"}, 16, 4)}
	e2 := newEnv(t, cfg, envOptions{dataset: two, reg: e.registry, blobs: e.blobs})
	job, evs := runJob(t, e2, &trainerpb.JobSpec{Dataset: "two", Epochs: 5, BatchSize: 8, LearningRate: 1e-2, Seed: 1, BaseVersion: baseRef})
	if l := logs(evs); !strings.Contains(l, "new head") {
		t.Errorf("job log does not mention the new head:\n%s", l)
	}
	if v := e.version(t, job.GetResult()); len(v.GetLabels()) != 2 || v.GetArchitecture() != "small-cnn" {
		t.Errorf("fine-tuned version = %v; want 2 labels, small-cnn", v)
	}
	if acc := job.GetTestMetrics().GetTestAccuracy(); acc < 0.6 {
		t.Errorf("new-head test accuracy %.2f; want >= 0.6", acc)
	}

	// Bases that cannot be fine-tuned (for uploaded models, see
	// TestFineTuningImportedONNX).
	for _, tc := range []struct {
		name string
		spec *trainerpb.JobSpec
		want codes.Code
		msg  string
	}{
		{"other architecture", &trainerpb.JobSpec{Dataset: "shapes", Architecture: "small-cnn-wide", BaseVersion: baseRef}, codes.InvalidArgument, "spec.architecture"},
		{"imported architecture", &trainerpb.JobSpec{Dataset: "shapes", Architecture: ml.ImportedArchitecture, BaseVersion: baseRef}, codes.InvalidArgument, "spec.architecture"},
		{"other input size", &trainerpb.JobSpec{Dataset: "shapes", ImageSize: 32, BaseVersion: baseRef}, codes.InvalidArgument, "spec.imageSize"},
		{"other channels", &trainerpb.JobSpec{Dataset: "shapes", Channels: 3, BaseVersion: baseRef}, codes.InvalidArgument, "spec.imageSize/channels"},
	} {
		_, err := e.client.StartTraining(t.Context(), &trainerpb.StartTrainingRequest{Spec: tc.spec})
		wantCode(t, "StartTraining("+tc.name+")", err, tc.want)
		if err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("StartTraining(%s) = %v; want a message naming %q", tc.name, err, tc.msg)
		}
	}
}
