package ml

import (
	"context"
	"math"
	"strings"
	"testing"
)

func TestTrainResumesFromCheckpoint(t *testing.T) {
	needsGoMLX(t)
	shape := InputShape{1, 12, 12}
	trainData, valData := stripes(64, shape, 1), stripes(24, shape, 2)
	base := Config{NumClasses: 3, BatchSize: 16, LearningRate: 1e-2, Seed: 5, Backend: "go", BatchNormImages: 32}

	whole := base
	whole.Epochs = 3
	want, err := Train(context.Background(), whole, trainData, valData)
	if err != nil {
		t.Fatalf("Train(3 epochs) = %v", err)
	}
	want.Model.Close()

	dir := t.TempDir()
	first := base
	first.Epochs, first.CheckpointDir = 2, dir
	res, err := Train(context.Background(), first, trainData, valData)
	if err != nil {
		t.Fatalf("Train(2 epochs) = %v", err)
	}
	res.Model.Close()

	// A "restarted process": same config, 3 epochs, same checkpoint dir.
	resumed := first
	resumed.Epochs = 3
	var ran []int
	resumed.OnEpoch = func(m EpochMetrics) { ran = append(ran, m.Epoch) }
	got, err := Train(context.Background(), resumed, trainData, valData)
	if err != nil {
		t.Fatalf("resumed Train() = %v", err)
	}
	defer got.Model.Close()
	if len(ran) != 1 || ran[0] != 3 {
		t.Errorf("resumed run trained epochs %v; want [3]", ran)
	}
	if len(got.Epochs) != 3 {
		t.Fatalf("resumed run reports %d epochs; want 3 (history kept)", len(got.Epochs))
	}
	// Same batches, same restored optimizer state: the third epoch matches
	// the uninterrupted run (up to parallel floating-point reordering).
	if g, w := got.Epochs[2].TrainLoss, want.Epochs[2].TrainLoss; math.Abs(g-w) > 1e-3*math.Max(1, math.Abs(w)) {
		t.Errorf("epoch 3 train loss after resume = %.6f; uninterrupted run %.6f", g, w)
	}

	mismatched := resumed
	mismatched.Seed = 6
	if _, err := Train(context.Background(), mismatched, trainData, valData); err == nil || !strings.Contains(err.Error(), "checkpoint in") {
		t.Errorf("Train() with another seed on the checkpoint = %v; want a checkpoint mismatch error", err)
	}
}

// TestResumeKeepsScheduleAugmentationAndMomentum interrupts a run with a
// cosine schedule, every augmentation and SGD's momentum after epoch 2 and
// resumes it: the last epoch trains at the same rate, on the same augmented
// batches, from the same velocities as the uninterrupted run's.
func TestResumeKeepsScheduleAugmentationAndMomentum(t *testing.T) {
	needsGoMLX(t)
	shape := InputShape{3, 12, 12}
	trainData, valData := stripes(64, shape, 1), stripes(24, shape, 2)
	cfg := Config{NumClasses: 3, Epochs: 3, BatchSize: 16, LearningRate: 2e-2, Seed: 5, Backend: "go",
		Optimizer: OptimizerSGD, WeightDecay: 1e-3, Schedule: ScheduleCosine,
		Augment: Augmentation{HorizontalFlip: true, VerticalFlip: true, CropMinScale: 0.6, ColorJitter: 0.3}}
	want, err := Train(context.Background(), cfg, trainData, valData)
	if err != nil {
		t.Fatalf("Train() = %v", err)
	}
	want.Model.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := cfg
	interrupted.CheckpointDir = t.TempDir()
	interrupted.OnEpoch = func(m EpochMetrics) {
		if m.Epoch == 2 {
			cancel()
		}
	}
	if _, err := Train(ctx, interrupted, trainData, valData); err == nil {
		t.Fatal("interrupted Train() = nil error; want it stopped after epoch 2")
	}
	resumed := interrupted
	resumed.OnEpoch = nil
	got, err := Train(context.Background(), resumed, trainData, valData)
	if err != nil {
		t.Fatalf("resumed Train() = %v", err)
	}
	defer got.Model.Close()
	g, w := got.Epochs[2], want.Epochs[2]
	if g.LearningRate != w.LearningRate || math.Abs(g.TrainLoss-w.TrainLoss) > 1e-3*math.Max(1, math.Abs(w.TrainLoss)) {
		t.Errorf("epoch 3 after resume: rate %g, train loss %.6f; uninterrupted: rate %g, train loss %.6f",
			g.LearningRate, g.TrainLoss, w.LearningRate, w.TrainLoss)
	}
}
