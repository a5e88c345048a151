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
