package trainer

import (
	"context"
	"fmt"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
)

// Defaults for JobSpec fields left zero (proto3 cannot tell unset from 0);
// the training defaults are internal/ml's, which the Fashion-MNIST
// benchmark measures.
var (
	defaultEpochs       = int32(ml.Defaults().Epochs)
	defaultBatchSize    = int32(ml.Defaults().BatchSize)
	defaultLearningRate = ml.Defaults().LearningRate
)

const defaultValidationFraction = 0.2 // the original's 80/20 split.

// defaultOptimizer and defaultSchedule are what UNSPECIFIED means.
func defaultOptimizer() trainerpb.Optimizer {
	for o, name := range optimizerNames {
		if name == ml.Defaults().Optimizer {
			return o
		}
	}
	return trainerpb.Optimizer_OPTIMIZER_ADAM
}

func defaultSchedule() trainerpb.LearningRateSchedule {
	for sch, name := range scheduleNames {
		if name == ml.Defaults().Schedule {
			return sch
		}
	}
	return trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_CONSTANT
}

func defaultAugmentation() *trainerpb.Augmentation {
	a := ml.Defaults().Augment
	return &trainerpb.Augmentation{
		HorizontalFlip: a.HorizontalFlip, VerticalFlip: a.VerticalFlip,
		CropMinScale: float32(a.CropMinScale), ColorJitter: float32(a.ColorJitter),
	}
}

var optimizerNames = map[trainerpb.Optimizer]ml.Optimizer{
	trainerpb.Optimizer_OPTIMIZER_ADAM:  ml.OptimizerAdam,
	trainerpb.Optimizer_OPTIMIZER_ADAMW: ml.OptimizerAdamW,
	trainerpb.Optimizer_OPTIMIZER_SGD:   ml.OptimizerSGD,
}

var scheduleNames = map[trainerpb.LearningRateSchedule]ml.Schedule{
	trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_CONSTANT: ml.ScheduleConstant,
	trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_COSINE:   ml.ScheduleCosine,
	trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_STEP:     ml.ScheduleStep,
}

// augmentation converts a normalised spec's augmentation.
func augmentation(a *trainerpb.Augmentation) ml.Augmentation {
	return ml.Augmentation{
		HorizontalFlip: a.GetHorizontalFlip(), VerticalFlip: a.GetVerticalFlip(),
		CropMinScale: float64(a.GetCropMinScale()), ColorJitter: float64(a.GetColorJitter()),
	}
}

// normalizeSpec returns a copy of spec with the defaults filled in, or
// rejects what cannot train, with the code and message the caller sees.
// The spec has kept the rules of proto/shoal/trainer/v1 (a dataset, ranges
// of numbers, known enum values: see internal/server's validation); what
// is checked here depends on other fields or on the architecture.
func normalizeSpec(in *trainerpb.JobSpec) (*trainerpb.JobSpec, error) {
	spec := proto.Clone(in).(*trainerpb.JobSpec)
	headOnly := spec.TrainLayers == trainerpb.TrainLayers_TRAIN_LAYERS_HEAD
	if headOnly && spec.GetBaseVersion() == nil {
		return nil, status.Error(codes.InvalidArgument, "spec.trainLayers = TRAIN_LAYERS_HEAD needs spec.baseVersion: the frozen backbone is the base version's graph")
	}
	partial := spec.TrainLayers == trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES
	switch {
	case partial && spec.GetBaseVersion() == nil:
		return nil, status.Error(codes.InvalidArgument, "spec.trainLayers = TRAIN_LAYERS_LAST_STAGES needs spec.baseVersion: the stages are the base version's graph")
	case partial && spec.UnfrozenStages <= 0:
		return nil, status.Error(codes.InvalidArgument, "spec.trainLayers = TRAIN_LAYERS_LAST_STAGES needs spec.unfrozenStages, how many of the last stages train (at least 1)")
	case !partial && spec.UnfrozenStages != 0:
		return nil, status.Errorf(codes.InvalidArgument, "spec.unfrozenStages = %d applies to spec.trainLayers = TRAIN_LAYERS_LAST_STAGES only", spec.UnfrozenStages)
	}
	if spec.GetArchitecture() == ml.ImportedArchitecture {
		// resolveBase set it, with the input shape, from an imported base.
		if spec.GetBaseVersion() == nil {
			return nil, status.Errorf(codes.InvalidArgument, "spec.architecture = %q only fine-tunes a spec.baseVersion imported from ONNX", ml.ImportedArchitecture)
		}
		if spec.Channels != 1 && spec.Channels != 3 {
			return nil, status.Errorf(codes.InvalidArgument, "spec.channels = %d; want 1 (grayscale) or 3 (RGB)", spec.Channels)
		}
		if spec.ImageSize <= 0 {
			return nil, status.Errorf(codes.InvalidArgument, "spec.imageSize = %d; must be positive", spec.ImageSize)
		}
	} else {
		arch, err := ml.LookupArchitecture(spec.GetArchitecture())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "spec.architecture: %v", err)
		}
		spec.Architecture = arch.Name
		if spec.ImageSize == 0 {
			spec.ImageSize = int32(arch.DefaultSize)
		}
		if spec.Channels == 0 {
			spec.Channels = int32(arch.DefaultChannels)
		}
		if spec.Channels != 1 && spec.Channels != 3 {
			return nil, status.Errorf(codes.InvalidArgument, "spec.channels = %d; want 1 (grayscale) or 3 (RGB)", spec.Channels)
		}
		shape := ml.InputShape{Channels: int(spec.Channels), Height: int(spec.ImageSize), Width: int(spec.ImageSize)}
		if err := arch.CheckInput(shape); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "spec.imageSize = %d: %v", spec.ImageSize, err)
		}
	}
	if spec.Epochs == 0 {
		spec.Epochs = defaultEpochs
	}
	if spec.BatchSize == 0 {
		spec.BatchSize = defaultBatchSize
	}
	if spec.LearningRate == 0 {
		spec.LearningRate = defaultLearningRate
	}
	if spec.ValidationFraction == 0 {
		spec.ValidationFraction = defaultValidationFraction
	}
	switch spec.Backend {
	case "", ml.BackendGo, ml.BackendONNX:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "spec.backend = %q; want %q, %q or empty for the server's default", spec.Backend, ml.BackendGo, ml.BackendONNX)
	}
	if spec.Model == "" {
		spec.Model = spec.Dataset
	}
	if spec.Promotion == trainerpb.PromotionPolicy_PROMOTION_POLICY_UNSPECIFIED {
		spec.Promotion = trainerpb.PromotionPolicy_PROMOTION_POLICY_NEVER
	}
	if spec.Optimizer == trainerpb.Optimizer_OPTIMIZER_UNSPECIFIED {
		spec.Optimizer = defaultOptimizer()
	}
	if _, ok := optimizerNames[spec.Optimizer]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "spec.optimizer = %d is not a known optimizer", spec.Optimizer)
	}
	if spec.Schedule == trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_UNSPECIFIED {
		spec.Schedule = defaultSchedule()
	}
	if _, ok := scheduleNames[spec.Schedule]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "spec.schedule = %d is not a known learning-rate schedule", spec.Schedule)
	}
	if spec.WarmupEpochs >= spec.Epochs {
		return nil, status.Errorf(codes.InvalidArgument, "spec.warmupEpochs = %d; must be fewer than spec.epochs (%d)", spec.WarmupEpochs, spec.Epochs)
	}
	if spec.BackboneLearningRateScale == 0 {
		spec.BackboneLearningRateScale = 1
	}
	if headOnly && spec.BackboneLearningRateScale != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "spec.backboneLearningRateScale = %g: head-only training trains no backbone weights", spec.BackboneLearningRateScale)
	}
	// An imported graph's batch norms run in inference mode (its
	// statistics frozen); a Shoal architecture's follow the data unless
	// asked.
	imported := spec.Architecture == ml.ImportedArchitecture
	switch {
	case spec.BatchNorm == trainerpb.BatchNorm_BATCH_NORM_UNSPECIFIED && imported:
		spec.BatchNorm = trainerpb.BatchNorm_BATCH_NORM_FROZEN
	case spec.BatchNorm == trainerpb.BatchNorm_BATCH_NORM_UNSPECIFIED:
		spec.BatchNorm = trainerpb.BatchNorm_BATCH_NORM_UPDATE
	case spec.BatchNorm == trainerpb.BatchNorm_BATCH_NORM_UPDATE && imported:
		return nil, status.Error(codes.FailedPrecondition, "spec.batchNorm = BATCH_NORM_UPDATE: the base version is fine-tuned from its ONNX graph, whose batch norms (if PyTorch did not fold them into the convolutions) run in inference mode; their statistics stay frozen")
	}
	// An absent augmentation takes the defaults; a present one is taken as
	// it is, so {} turns augmentation off. Head-only and partial training
	// augment nothing unless asked: augmenting runs the frozen part again
	// every epoch.
	if spec.Augmentation == nil && (headOnly || partial) {
		spec.Augmentation = &trainerpb.Augmentation{}
	}
	if spec.Augmentation == nil {
		spec.Augmentation = defaultAugmentation()
	}
	return spec, nil
}

// snapshotLabels checks a snapshot's label counts and returns its labels,
// sorted: every label needs training images, and there must be at least two
// and some test images.
func snapshotLabels(snap *datasetpb.Snapshot) ([]string, error) {
	train := map[string]int64{}
	all := map[string]bool{}
	var test int64
	for _, c := range snap.GetCounts() {
		if c.GetCount() <= 0 {
			continue
		}
		all[c.GetLabel()] = true
		switch c.GetSplit() {
		case datasetpb.Split_SPLIT_TRAIN:
			train[c.GetLabel()] += c.GetCount()
		case datasetpb.Split_SPLIT_TEST:
			test += c.GetCount()
		}
	}
	labels := make([]string, 0, len(all))
	for l := range all {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		if train[l] == 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "dataset %q snapshot %d: label %q has no training images", snap.GetDataset(), snap.GetVersion(), l)
		}
	}
	if len(labels) < 2 {
		return nil, status.Errorf(codes.FailedPrecondition, "dataset %q snapshot %d has %d label(s); a classifier needs at least 2", snap.GetDataset(), snap.GetVersion(), len(labels))
	}
	if test == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "dataset %q snapshot %d has no test images to evaluate on", snap.GetDataset(), snap.GetVersion())
	}
	return labels, nil
}

// resolveSnapshot uses the newest snapshot when the spec names none and the
// dataset has not changed since it was taken, or takes a new one; then it
// checks the snapshot's labels.
func (s *Service) resolveSnapshot(ctx context.Context, spec *trainerpb.JobSpec) error {
	var snap *datasetpb.Snapshot
	if spec.SnapshotVersion == 0 {
		resp, err := s.deps.Datasets.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{
			Dataset: spec.Dataset, Description: "taken by the trainer for a training job", ReuseUnchanged: true,
		})
		if err != nil {
			return downstream("Dataset.CreateSnapshot", err)
		}
		snap = resp.GetSnapshot()
		spec.SnapshotVersion = snap.GetVersion()
	} else {
		resp, err := s.deps.Datasets.GetSnapshot(ctx, &datasetpb.GetSnapshotRequest{Dataset: spec.Dataset, Version: spec.SnapshotVersion})
		if err != nil {
			return downstream("Dataset.GetSnapshot", err)
		}
		snap = resp.GetSnapshot()
	}
	_, err := snapshotLabels(snap)
	return err
}

// downstream passes another service's answer on when it means something
// to the caller, and wraps anything else as an internal error.
func downstream(call string, err error) error {
	st, ok := status.FromError(err)
	if ok {
		switch st.Code() {
		case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.Unavailable,
			codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled, codes.PermissionDenied:
			return status.Errorf(st.Code(), "%s: %s", call, st.Message())
		}
	}
	return fmt.Errorf("%s: %w", call, err)
}
