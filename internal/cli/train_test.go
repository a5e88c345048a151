package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

// Flag handling; the command against a real trainer is tested in
// services/trainer (cli_test.go).
func TestTrainSpec(t *testing.T) {
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	f := registerTrainFlags(fs)
	if err := fs.Parse([]string{"--dataset", "fish", "--snapshot", "3", "--architecture", "resnet-small",
		"--epochs", "5", "--batch-size", "32", "--learning-rate", "0.01", "--image-size", "64", "--promote", "if-better", "--follow"}); err != nil {
		t.Fatal(err)
	}
	s, err := f.spec()
	if err != nil {
		t.Fatal(err)
	}
	if s.GetDataset() != "fish" || s.GetSnapshotVersion() != 3 || s.GetArchitecture() != "resnet-small" || s.GetEpochs() != 5 ||
		s.GetBatchSize() != 32 || s.GetLearningRate() != 0.01 || s.GetImageSize() != 64 ||
		s.GetPromotion() != trainerpb.PromotionPolicy_PROMOTION_POLICY_IF_BETTER || !f.follow {
		t.Errorf("spec() = %v", s)
	}
	if s.GetAugmentation() != nil || s.GetBaseVersion() != nil || s.GetOptimizer() != trainerpb.Optimizer_OPTIMIZER_UNSPECIFIED {
		t.Errorf("spec() = %v; want the server's defaults for what was not given", s)
	}
}

func TestTrainSpecTrainingSettings(t *testing.T) {
	parse := func(args ...string) (*trainerpb.JobSpec, error) {
		fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
		f := registerTrainFlags(fs)
		if err := fs.Parse(append([]string{"--dataset", "fish"}, args...)); err != nil {
			return nil, err
		}
		return f.spec()
	}
	s, err := parse("--optimizer", "sgd", "--schedule", "step", "--weight-decay", "0.0005", "--augment", "hflip,crop=0.8,jitter=0.2",
		"--early-stopping-patience", "3", "--base", "fish:4")
	if err != nil {
		t.Fatal(err)
	}
	a := s.GetAugmentation()
	if s.GetOptimizer() != trainerpb.Optimizer_OPTIMIZER_SGD || s.GetSchedule() != trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_STEP ||
		s.GetWeightDecay() != 0.0005 || !a.GetHorizontalFlip() || a.GetVerticalFlip() || a.GetCropMinScale() != 0.8 || a.GetColorJitter() != 0.2 ||
		s.GetEarlyStoppingPatience() != 3 || s.GetBaseVersion().GetModel() != "fish" || s.GetBaseVersion().GetVersion() != 4 {
		t.Errorf("spec() = %v", s)
	}
	if s, err := parse("--base", "fish:4", "--freeze", "backbone"); err != nil || s.GetTrainLayers() != trainerpb.TrainLayers_TRAIN_LAYERS_HEAD {
		t.Errorf("--freeze backbone: spec() = %v, %v; want train layers HEAD", s, err)
	}
	if s.GetTrainLayers() != trainerpb.TrainLayers_TRAIN_LAYERS_UNSPECIFIED {
		t.Errorf("spec() = %v; want every layer trained without --freeze", s)
	}
	s, err = parse("--base", "fish:4", "--unfreeze-stages", "2", "--backbone-lr-scale", "0.1", "--warmup-epochs", "2", "--batch-norm", "frozen")
	if err != nil || s.GetTrainLayers() != trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES || s.GetUnfrozenStages() != 2 ||
		s.GetBackboneLearningRateScale() != 0.1 || s.GetWarmupEpochs() != 2 || s.GetBatchNorm() != trainerpb.BatchNorm_BATCH_NORM_FROZEN {
		t.Errorf("--unfreeze-stages 2 --backbone-lr-scale 0.1 --warmup-epochs 2 --batch-norm frozen: spec() = %v, %v", s, err)
	}
	if s, err := parse("--batch-norm", "update"); err != nil || s.GetBatchNorm() != trainerpb.BatchNorm_BATCH_NORM_UPDATE {
		t.Errorf("--batch-norm update: spec() = %v, %v; want BATCH_NORM_UPDATE", s, err)
	}
	if s, err := parse("--augment", "none"); err != nil || s.GetAugmentation() == nil || s.GetAugmentation().GetHorizontalFlip() {
		t.Errorf("--augment none: spec() = %v, %v; want an empty augmentation", s, err)
	}
	for _, bad := range [][]string{
		{"--optimizer", "lbfgs"}, {"--schedule", "linear"}, {"--augment", "rotate"}, {"--augment", "crop=x"},
		{"--base", "fish"}, {"--base", "fish:0"}, {"--base", ":3"}, {"--freeze", "backbone"}, {"--freeze", "head", "--base", "fish:1"},
		{"--unfreeze-stages", "2"}, {"--unfreeze-stages", "-1", "--base", "fish:1"},
		{"--unfreeze-stages", "1", "--base", "fish:1", "--freeze", "backbone"}, {"--batch-norm", "train"},
	} {
		if _, err := parse(bad...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("shoal train %q = %v; want an error naming %s", bad, err, bad[0])
		}
	}
}

// On a terminal the running epoch's progress is a line redrawn in place;
// anywhere else (a pipe, a log) only plain lines reach the output.
func TestJobPrinter(t *testing.T) {
	events := []*trainerpb.WatchJobResponse{
		{Event: &trainerpb.WatchJobResponse_Progress{Progress: &trainerpb.StepProgress{Epoch: 1, Epochs: 2, Step: 5, Steps: 10, TrainLoss: 0.5, ImagesPerSecond: 900, Eta: durationpb.New(90 * time.Second)}}},
		{Event: &trainerpb.WatchJobResponse_Epoch{Epoch: &trainerpb.EpochMetrics{Epoch: 1, LearningRate: 0.00075, TrainLoss: 0.5, ValAccuracy: 0.8, Best: true}}},
		{Event: &trainerpb.WatchJobResponse_Progress{Progress: &trainerpb.StepProgress{Epoch: 2, Epochs: 2, Step: 1, Steps: 10}}},
		{Event: &trainerpb.WatchJobResponse_State{State: &trainerpb.StateChange{State: trainerpb.JobState_JOB_STATE_FAILED, Reason: "registry is down"}}},
	}
	for _, terminal := range []bool{true, false} {
		var out bytes.Buffer
		p := &jobPrinter{out: &out, terminal: terminal, id: "j1"}
		for i, ev := range events {
			done, err := p.event(ev)
			last := i == len(events)-1
			var ended *jobEndedError
			if done != last || (last && (!errors.As(err, &ended) || ExitCode(err) != ExitJobFailed ||
				err.Error() != "job j1 failed: registry is down")) {
				t.Errorf("terminal=%v: event(%v) = %v, %v", terminal, ev, done, err)
			}
		}
		got := out.String()
		for _, want := range []string{"rate", "train loss", "0.00075", "0.8000", "FAILED: registry is down"} {
			if !strings.Contains(got, want) {
				t.Errorf("terminal=%v: output lacks %q:\n%s", terminal, want, got)
			}
		}
		progress := "epoch 1/2  step 5/10  [==========          ]  loss 0.5000  900 img/s  ETA 1m30s"
		if terminal != strings.Contains(got, progress) || terminal != strings.Contains(got, "\r\033[K") {
			t.Errorf("terminal=%v: output %q; want the progress line and its redraw only on a terminal", terminal, got)
		}
		if !terminal && strings.ContainsAny(got, "\r\033") {
			t.Errorf("off a terminal the output has control characters: %q", got)
		}
	}
}
