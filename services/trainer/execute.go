package trainer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/ml"
)

const (
	// verifyBatch is how many test images one ONNX Runtime run of the
	// exported (batch-dynamic) model checks; the last run takes the rest,
	// so the check also proves the batch dimension is really free.
	verifyBatch = 64
	// verifyTolerance bounds |p_onnx - p_gomlx| on every test image.
	verifyTolerance = 1e-4
	// uploadChunk is the size of CreateVersion's chunks.
	uploadChunk     = 1 << 20
	productionAlias = "production"
)

// outcome is what a successful job records.
type outcome struct {
	metrics *registrypb.Metrics
	version *registrypb.VersionRef
}

// jobData are a job's preprocessed images, decoded once and held for the
// whole run.
type jobData struct {
	labels           []string
	train, val, test *ml.Data
}

// execute trains, evaluates, exports, verifies and registers one job.
func (s *Service) execute(ctx context.Context, id string, spec *trainerpb.JobSpec) (*outcome, error) {
	if v, err := s.registeredVersion(ctx, spec.Model, id); err != nil || v != nil {
		if err != nil {
			return nil, err
		}
		return s.finishRegistered(ctx, id, spec, v)
	}
	shape := ml.InputShape{Channels: int(spec.Channels), Height: int(spec.ImageSize), Width: int(spec.ImageSize)}
	pre := imaging.Spec{Channels: shape.Channels, Height: shape.Height, Width: shape.Width, Resize: registrypb.ResizeMode_RESIZE_MODE_STRETCH}
	var base *registrypb.Version
	imported := false
	if spec.BaseVersion != nil {
		var shoal bool
		var err error
		if base, shoal, err = s.baseVersion(ctx, spec.BaseVersion); err != nil {
			return nil, err
		}
		if imported = !shoal; imported {
			// An imported model is trained on images prepared as it is
			// served: the base's size and resize mode.
			is, p, err := importSpec(base)
			if err != nil {
				return nil, err
			}
			if is.Shape != shape {
				return nil, status.Errorf(codes.FailedPrecondition, "spec.base_version takes %s images, the job %s", is.Shape, shape)
			}
			pre = p
		}
	}
	s.logf(ctx, id, "reading snapshot %d of dataset %q", spec.SnapshotVersion, spec.Dataset)
	data, err := s.load(ctx, spec, shape, pre)
	if err != nil {
		return nil, err
	}
	s.logf(ctx, id, "%d labels; %d training, %d validation, %d test images at %s",
		len(data.labels), data.train.Len(), data.val.Len(), data.test.Len(), shape)

	want := spec.Backend
	if imported {
		// ONNX Runtime's GoMLX backend cannot build the gradients of the
		// imported graphs' strided Conv/MaxPool (interior padding).
		want = ml.BackendGo
	}
	backendName, backend, err := s.backend(want)
	if err != nil {
		return nil, err
	}
	s.logf(ctx, id, "training %s on the %s backend", spec.Architecture, backendName)
	prog := &progressReporter{s: s, ctx: ctx, id: id, epochs: int(spec.Epochs)}
	cfg := ml.Config{
		Architecture: spec.Architecture, NumClasses: len(data.labels), Epochs: int(spec.Epochs),
		BatchSize: int(spec.BatchSize), LearningRate: spec.LearningRate, Seed: spec.Seed, Backend: backend,
		Optimizer: optimizerNames[spec.Optimizer], Schedule: scheduleNames[spec.Schedule], WeightDecay: spec.WeightDecay,
		Augment: augmentation(spec.Augmentation), EarlyStoppingPatience: int(spec.EarlyStoppingPatience),
		CheckpointDir: s.checkpointDir(id),
		OnStep:        prog.step,
		OnEpoch: func(e ml.EpochMetrics) {
			// The epoch is already checkpointed when this runs, so it must
			// reach the event log even while the job is being stopped;
			// otherwise the resumed job would never report it.
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			s.emit(ectx, id, &trainerpb.WatchJobResponse{Event: &trainerpb.WatchJobResponse_Epoch{Epoch: &trainerpb.EpochMetrics{
				Epoch: int32(e.Epoch), TrainLoss: e.TrainLoss, TrainAccuracy: e.TrainAcc, ValLoss: e.ValLoss, ValAccuracy: e.ValAcc,
				LearningRate: e.LearningRate, ImagesPerSecond: e.ImagesPerSecond, Duration: durationpb.New(e.Duration), Best: e.Best,
			}}})
		},
	}
	switch {
	case imported:
		newHead := !slices.Equal(base.GetLabels(), data.labels)
		if cfg.Import, err = s.importBase(ctx, base, len(data.labels), newHead, spec.Seed); err != nil {
			return nil, err
		}
		if newHead {
			s.logf(ctx, id, "fine-tuning %s version %d, imported from ONNX, with a new head in place of its %s: its labels %v differ from the dataset's %v",
				base.GetModel(), base.GetVersion(), cfg.Import.Head, base.GetLabels(), data.labels)
		} else {
			s.logf(ctx, id, "fine-tuning %s version %d, imported from ONNX (classification layer %s), labels unchanged; batch-norm statistics stay frozen",
				base.GetModel(), base.GetVersion(), cfg.Import.Head)
		}
	case base != nil:
		if cfg.Base, cfg.NewHead, err = s.loadBase(ctx, id, spec, base, data.labels); err != nil {
			return nil, err
		}
	}
	res, err := ml.Train(ctx, cfg, data.train, data.val)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("training: %w", err)
	}
	defer res.Model.Close()
	if res.StoppedEarly {
		last := res.Epochs[len(res.Epochs)-1].Epoch
		s.logf(ctx, id, "early stopping after epoch %d of %d: no better validation accuracy for %d epochs since epoch %d",
			last, spec.Epochs, spec.EarlyStoppingPatience, res.BestEpoch)
	}

	s.logf(ctx, id, "evaluating epoch %d's weights on %d test images", res.BestEpoch, data.test.Len())
	eval, err := ml.Evaluate(res.Model, data.test)
	if err != nil {
		return nil, fmt.Errorf("evaluating: %w", err)
	}
	metrics := toMetrics(eval, data.labels, res)
	s.emit(ctx, id, &trainerpb.WatchJobResponse{Event: &trainerpb.WatchJobResponse_Evaluation{Evaluation: metrics}})

	onnxModel, err := s.exportAndVerify(ctx, id, res.Model, cfg.Import, shape, len(data.labels), data.test)
	if err != nil {
		return nil, err
	}
	// An imported model's weights are its ONNX file's: a version trained
	// from it is fine-tuned by importing that file in turn.
	if !imported {
		if err := s.retryStorage(ctx, id, "saving the weights", func(int) error { return s.saveWeights(ctx, id, res.Model) }); err != nil {
			return nil, err
		}
	}
	var ref *registrypb.VersionRef
	err = s.retryStorage(ctx, id, "registering the model", func(attempt int) (err error) {
		if attempt > 0 {
			// The last attempt may have registered before it failed.
			if v, err := s.registeredVersion(ctx, spec.Model, id); err != nil || v != nil {
				ref = &registrypb.VersionRef{Model: v.GetModel(), Version: v.GetVersion()}
				return err
			}
		}
		ref, err = s.register(ctx, id, spec, base, cfg.Import, data.labels, metrics, res, backendName, onnxModel)
		return err
	})
	if err != nil {
		// No version names the job: its weights can never be a base.
		if derr := s.deps.Blobs.Delete(context.WithoutCancel(ctx), weightsKey(id)); derr != nil {
			s.deps.Log.Warn("deleting the weights of a job that did not register", "job", id, "err", derr)
		}
		return nil, err
	}
	s.emit(ctx, id, &trainerpb.WatchJobResponse{Event: &trainerpb.WatchJobResponse_Registered{Registered: ref}})
	if err := s.retryStorage(ctx, id, "promoting the model", func(int) error {
		return s.promote(ctx, id, spec.Promotion, ref, metrics.TestAccuracy)
	}); err != nil {
		return nil, err
	}
	return &outcome{metrics: metrics, version: ref}, nil
}

// backend picks the job's compute backend: the spec's, the server's
// default, or ONNX Runtime when it is installed (the faster one).
func (s *Service) backend(name string) (string, string, error) {
	if name == "" {
		name = s.cfg.Backend
	}
	lib, libErr := s.deps.ONNXRuntime.LibraryPath()
	if name == "" {
		name = ml.BackendGo
		if libErr == nil {
			name = ml.BackendONNX
		}
	}
	if name == ml.BackendONNX && libErr != nil {
		return "", "", fmt.Errorf("the onnx backend needs ONNX Runtime: %w", libErr)
	}
	cfg, err := ml.BackendConfig(name, lib)
	return name, cfg, err
}

// load reads the snapshot's three splits through the Dataset service and
// preprocesses every image once. Without a validation split, a stratified,
// seeded share of the train split validates.
func (s *Service) load(ctx context.Context, spec *trainerpb.JobSpec, shape ml.InputShape, pre imaging.Spec) (*jobData, error) {
	snap, err := s.deps.Datasets.GetSnapshot(ctx, &datasetpb.GetSnapshotRequest{Dataset: spec.Dataset, Version: spec.SnapshotVersion})
	if err != nil {
		return nil, downstream("Dataset.GetSnapshot", err)
	}
	labels, err := snapshotLabels(snap.GetSnapshot())
	if err != nil {
		return nil, err
	}
	index := make(map[string]int32, len(labels))
	for i, l := range labels {
		index[l] = int32(i)
	}
	read := func(split datasetpb.Split) (*ml.Data, error) {
		stream, err := s.deps.Datasets.ReadSnapshot(ctx, &datasetpb.ReadSnapshotRequest{
			Dataset: spec.Dataset, Version: spec.SnapshotVersion, Split: split, IncludeContent: true,
		})
		if err != nil {
			return nil, downstream("Dataset.ReadSnapshot", err)
		}
		d := &ml.Data{Shape: shape}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return d, nil
			}
			if err != nil {
				return nil, downstream("Dataset.ReadSnapshot", err)
			}
			img := msg.GetImage()
			label, ok := index[img.GetLabel()]
			if !ok {
				return nil, fmt.Errorf("image %s has label %q, which the snapshot's counts do not list", img.GetId(), img.GetLabel())
			}
			decoded, _, err := imaging.Decode(msg.GetContent(), imaging.Limits{})
			if err != nil {
				return nil, fmt.Errorf("image %s (%s): %w", img.GetId(), img.GetFileName(), err)
			}
			n := len(d.Images)
			d.Images = append(d.Images, make([]float32, shape.Size())...)
			if err := imaging.Preprocess(decoded, pre, d.Images[n:]); err != nil {
				return nil, fmt.Errorf("image %s (%s): %w", img.GetId(), img.GetFileName(), err)
			}
			d.Labels = append(d.Labels, label)
		}
	}
	out := &jobData{labels: labels}
	if out.train, err = read(datasetpb.Split_SPLIT_TRAIN); err != nil {
		return nil, err
	}
	if out.val, err = read(datasetpb.Split_SPLIT_VALIDATION); err != nil {
		return nil, err
	}
	if out.test, err = read(datasetpb.Split_SPLIT_TEST); err != nil {
		return nil, err
	}
	if out.val.Len() == 0 {
		trainIdx, valIdx, err := ml.StratifiedSplit(out.train.Labels, spec.ValidationFraction, spec.Seed)
		if err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "splitting the train split for validation: %v", err)
		}
		out.train, out.val = out.train.Subset(trainIdx), out.train.Subset(valIdx)
	}
	if out.train.Len() < int(spec.BatchSize) {
		return nil, status.Errorf(codes.FailedPrecondition, "%d training images are fewer than one batch of %d", out.train.Len(), spec.BatchSize)
	}
	return out, nil
}

// toMetrics converts an evaluation into the Registry's metrics.
func toMetrics(e *ml.Evaluation, labels []string, res *ml.Result) *registrypb.Metrics {
	m := &registrypb.Metrics{TestAccuracy: e.Accuracy, TestLoss: e.Loss}
	for _, ep := range res.Epochs {
		if ep.Epoch == res.BestEpoch {
			m.ValAccuracy, m.ValLoss = ep.ValAcc, ep.ValLoss
		}
	}
	cm := &registrypb.ConfusionMatrix{Size: int32(len(labels))}
	for _, row := range e.Confusion {
		for _, c := range row {
			cm.Counts = append(cm.Counts, int64(c))
			m.TestExamples += int64(c)
		}
	}
	m.ConfusionMatrix = cm
	for i, c := range e.Classes {
		m.PerClass = append(m.PerClass, &registrypb.ClassMetrics{
			Label: labels[i], Precision: c.Precision, Recall: c.Recall, F1: c.F1, Support: int64(c.Support),
		})
	}
	return m
}

// exportAndVerify exports the best weights to ONNX and checks that ONNX
// Runtime reproduces GoMLX on every test image; an imported model (imp) is
// run as it will be served, with its base's input spec.
func (s *Service) exportAndVerify(ctx context.Context, id string, m *ml.Model, imp *ml.Imported, shape ml.InputShape, k int, test *ml.Data) ([]byte, error) {
	lib, err := s.deps.ONNXRuntime.LibraryPath()
	if err != nil {
		return nil, fmt.Errorf("exporting ONNX: %w", err)
	}
	onnxModel, err := m.ExportONNX(lib)
	if err != nil {
		return nil, fmt.Errorf("exporting ONNX: %w", err)
	}
	want, err := m.Probabilities(test.Images)
	if err != nil {
		return nil, fmt.Errorf("GoMLX probabilities for verification: %w", err)
	}
	var got []float32
	if imp != nil {
		got, err = imp.RunONNX(s.deps.ONNXRuntime, onnxModel, verifyBatch, test.Images)
	} else {
		got, err = ml.RunONNX(s.deps.ONNXRuntime, onnxModel, shape, verifyBatch, k, test.Images)
	}
	if err != nil {
		return nil, fmt.Errorf("running the exported model: %w", err)
	}
	d, err := ml.CompareProbabilities(want, got, k)
	if err != nil {
		return nil, fmt.Errorf("verifying the exported model: %w", err)
	}
	if !d.Acceptable(verifyTolerance) {
		return nil, fmt.Errorf("the exported ONNX model does not reproduce GoMLX: %d of %d test images change their top class, max |Δp| = %.3g (tolerance %g); not registering it",
			d.Top1Differences, d.Images, d.MaxAbsDiff, verifyTolerance)
	}
	s.logf(ctx, id, "exported ONNX (%d bytes); ONNX Runtime matches GoMLX on %d test images (max |Δp| = %.2g)", len(onnxModel), d.Images, d.MaxAbsDiff)
	return onnxModel, nil
}

// register uploads the model to the Registry.
// A model fine-tuned from an imported base (imp) keeps the base's input
// spec, so that it is served exactly as the base is, and its architecture
// name when it has one.
func (s *Service) register(ctx context.Context, id string, spec *trainerpb.JobSpec, base *registrypb.Version, imp *ml.Imported, labels []string, metrics *registrypb.Metrics, res *ml.Result, backend string, onnxModel []byte) (*registrypb.VersionRef, error) {
	sum := sha256.Sum256(onnxModel)
	in := &registrypb.InputSpec{
		Channels: spec.Channels, Height: spec.ImageSize, Width: spec.ImageSize,
		ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW,
		InputName: ml.ONNXInput, OutputName: ml.ONNXOutput, OutputIsProbabilities: true,
	}
	arch := spec.Architecture
	if imp != nil {
		in = proto.Clone(base.GetInputSpec()).(*registrypb.InputSpec)
		in.OutputIsProbabilities = imp.OutputIsProbabilities()
		if a := base.GetArchitecture(); a != "" {
			arch = a
		}
	}
	vs := &registrypb.VersionSpec{
		Model:     spec.Model,
		Labels:    labels,
		InputSpec: in,
		Metrics:   metrics,
		HyperParameters: map[string]string{
			"architecture":            arch,
			"image_size":              strconv.Itoa(int(spec.ImageSize)),
			"channels":                strconv.Itoa(int(spec.Channels)),
			"epochs":                  strconv.Itoa(int(spec.Epochs)),
			"epochs_trained":          strconv.Itoa(len(res.Epochs)),
			"batch_size":              strconv.Itoa(int(spec.BatchSize)),
			"learning_rate":           strconv.FormatFloat(spec.LearningRate, 'g', -1, 64),
			"optimizer":               string(optimizerNames[spec.Optimizer]),
			"schedule":                string(scheduleNames[spec.Schedule]),
			"weight_decay":            strconv.FormatFloat(spec.WeightDecay, 'g', -1, 64),
			"augmentation":            augmentationText(spec.Augmentation),
			"early_stopping_patience": strconv.Itoa(int(spec.EarlyStoppingPatience)),
			"validation_fraction":     strconv.FormatFloat(spec.ValidationFraction, 'g', -1, 64),
			"seed":                    strconv.FormatInt(spec.Seed, 10),
			"backend":                 backend,
			"best_epoch":              strconv.Itoa(res.BestEpoch),
		},

		Lineage:           lineage(id, spec),
		Architecture:      arch,
		Creator:           "trainer",
		Description:       fmt.Sprintf("trained by job %s on %s snapshot %d", id, spec.Dataset, spec.SnapshotVersion),
		ArtifactSizeBytes: int64(len(onnxModel)),
		ArtifactSha256:    hex.EncodeToString(sum[:]),
	}
	stream, err := s.deps.Registry.CreateVersion(ctx)
	if err != nil {
		return nil, downstream("Registry.CreateVersion", err)
	}
	if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: vs}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, downstream("Registry.CreateVersion", err)
	}
	for off := 0; off < len(onnxModel); off += uploadChunk {
		chunk := onnxModel[off:min(off+uploadChunk, len(onnxModel))]
		if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: chunk}}); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server answered early; CloseAndRecv has its reason
			}
			return nil, downstream("Registry.CreateVersion", err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, downstream("Registry.CreateVersion", err)
	}
	v := resp.GetVersion()
	return &registrypb.VersionRef{Model: v.GetModel(), Version: v.GetVersion()}, nil
}

// promote applies the job's promotion policy to the new version.
func (s *Service) promote(ctx context.Context, id string, policy trainerpb.PromotionPolicy, ref *registrypb.VersionRef, accuracy float64) error {
	switch policy {
	case trainerpb.PromotionPolicy_PROMOTION_POLICY_ALWAYS:
	case trainerpb.PromotionPolicy_PROMOTION_POLICY_IF_BETTER:
		m, err := s.deps.Registry.GetModel(ctx, &registrypb.GetModelRequest{Name: ref.Model})
		if err != nil {
			return downstream("Registry.GetModel", err)
		}
		if cur, ok := m.GetModel().GetAliases()[productionAlias]; ok && cur != ref.Version {
			v, err := s.deps.Registry.GetVersion(ctx, &registrypb.GetVersionRequest{Model: ref.Model, Version: cur})
			if err != nil {
				return downstream("Registry.GetVersion", err)
			}
			if have := v.GetVersion().GetMetrics().GetTestAccuracy(); accuracy <= have {
				s.logf(ctx, id, "not promoting: test accuracy %.4f does not beat production (version %d) at %.4f", accuracy, cur, have)
				return nil
			}
		}
	default:
		return nil
	}
	if _, err := s.deps.Registry.SetAlias(ctx, &registrypb.SetAliasRequest{Model: ref.Model, Alias: productionAlias, Version: ref.Version}); err != nil {
		return downstream("Registry.SetAlias", err)
	}
	s.logf(ctx, id, "promoted %s version %d to %s", ref.Model, ref.Version, productionAlias)
	return nil
}

// lineage records what a version was made from, including the version a
// fine-tuning job started from.
func lineage(id string, spec *trainerpb.JobSpec) *registrypb.Lineage {
	return &registrypb.Lineage{Dataset: spec.Dataset, SnapshotVersion: spec.SnapshotVersion, JobId: id, Parent: spec.BaseVersion}
}

// augmentationText describes an augmentation for the hyper-parameters.
func augmentationText(a *trainerpb.Augmentation) string {
	var parts []string
	if a.GetHorizontalFlip() {
		parts = append(parts, "hflip")
	}
	if a.GetVerticalFlip() {
		parts = append(parts, "vflip")
	}
	if v := a.GetCropMinScale(); v > 0 && v < 1 {
		parts = append(parts, "crop="+strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	if v := a.GetColorJitter(); v > 0 {
		parts = append(parts, "jitter="+strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}
