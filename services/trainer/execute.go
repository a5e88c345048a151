package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// jobRun is one job on its way through execute's steps; each step leaves
// in it what the later ones need.
type jobRun struct {
	s    *Service
	id   string
	spec *trainerpb.JobSpec

	// Set by resolveInput: the input trained on and how images are prepared
	// for it; the version fine-tuned from, if any, and whether that one is
	// imported from its ONNX file (it has no Shoal weights).
	shape    ml.InputShape
	pre      imaging.Spec
	base     *registrypb.Version
	imported bool

	data    *jobData            // the snapshot's images (a head-only job's features), from load
	head    *headRun            // a head-only or partial job's frozen part, from loadFeatures
	partial *ml.Partial         // a partial job's cut, from loadFeatures
	backend string              // the backend's name, from configure
	cfg     ml.Config           // from configure
	res     *ml.Result          // from train
	metrics *registrypb.Metrics // from evaluate
	onnx    []byte              // the verified export
}

func (r *jobRun) logf(ctx context.Context, format string, args ...any) {
	r.s.logf(ctx, r.id, format, args...)
}

// execute trains, evaluates, exports, verifies and registers one job.
func (s *Service) execute(ctx context.Context, id string, spec *trainerpb.JobSpec) (*outcome, error) {
	// A job resumed after its process died may have registered already.
	if v, err := s.registeredVersion(ctx, spec.Model, id); err != nil || v != nil {
		if err != nil {
			return nil, err
		}
		return s.finishRegistered(ctx, id, spec, v)
	}
	r := &jobRun{s: s, id: id, spec: spec}
	if err := r.resolveInput(ctx); err != nil {
		return nil, err
	}
	r.logf(ctx, "reading snapshot %d of dataset %q", spec.SnapshotVersion, spec.Dataset)
	var err error
	if frozenPrefix(spec) {
		err = r.loadFeatures(ctx)
		defer r.head.close()
	} else {
		r.data, err = s.load(ctx, spec, r.shape, r.pre)
	}
	if err != nil {
		return nil, err
	}
	r.logf(ctx, "%d labels; %d training, %d validation, %d test images at %s",
		len(r.data.labels), r.data.train.Len(), r.data.val.Len(), r.data.test.Len(), r.shape)
	if err := r.configure(ctx); err != nil {
		return nil, err
	}
	if err := r.restore(ctx); err != nil {
		return nil, err
	}
	train := r.train
	switch {
	case headOnly(spec):
		train = r.trainHead
	case lastStages(spec):
		train = r.trainPartial
	}
	if err := train(ctx); err != nil {
		return nil, err
	}
	defer r.res.Model.Close()
	if err := r.evaluate(ctx); err != nil {
		return nil, err
	}
	switch {
	case headOnly(spec):
		r.onnx, err = r.exportHead(ctx)
	case lastStages(spec):
		r.onnx, err = r.exportPartial(ctx)
	default:
		r.onnx, err = s.exportAndVerify(ctx, id, r.res.Model, r.cfg.Import, r.shape, len(r.data.labels), r.data.test)
	}
	if err != nil {
		return nil, err
	}
	// An imported model's weights are its ONNX file's: a version trained
	// from it is fine-tuned by importing that file in turn. So are those
	// of a head-only or partial job's.
	if !r.imported && !frozenPrefix(spec) {
		if err := s.retryStorage(ctx, id, "saving the weights", func(int) error { return s.saveWeights(ctx, id, r.res.Model) }); err != nil {
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
		ref, err = s.createVersion(ctx, r.versionSpec(), r.onnx)
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
		return s.promote(ctx, id, spec.Promotion, ref, r.metrics.TestAccuracy)
	}); err != nil {
		return nil, err
	}
	return &outcome{metrics: r.metrics, version: ref}, nil
}

// resolveInput finds the job's base version, if any, and the input it
// trains on: the spec's, or an imported base's size and resize mode.
func (r *jobRun) resolveInput(ctx context.Context) error {
	spec := r.spec
	r.shape = ml.InputShape{Channels: int(spec.Channels), Height: int(spec.ImageSize), Width: int(spec.ImageSize)}
	// Training decodes JPEGs DCT-scaled, and the version records it, so
	// serving decodes them the same way.
	r.pre = imaging.Spec{Channels: r.shape.Channels, Height: r.shape.Height, Width: r.shape.Width, Resize: imaging.ResizeStretch,
		JPEGDecode: imaging.JPEGDCTScaled}
	if spec.BaseVersion == nil {
		return nil
	}
	base, shoal, err := r.s.baseVersion(ctx, spec.BaseVersion)
	if err != nil {
		return err
	}
	r.base, r.imported = base, !shoal && !frozenPrefix(spec)
	if !r.imported && !frozenPrefix(spec) {
		return nil
	}
	// An imported model, or a head-only or partial job's frozen part, takes images
	// prepared as the base is served: its size and resize mode.
	is, pre, err := importSpec(base)
	if err != nil {
		return err
	}
	if is.Shape != r.shape {
		return status.Errorf(codes.FailedPrecondition, "spec.baseVersion takes %s images, the job %s", is.Shape, r.shape)
	}
	r.pre = pre
	return nil
}

// configure picks the backend and builds the training configuration,
// with the base's weights or imported graph when the job fine-tunes.
func (r *jobRun) configure(ctx context.Context) error {
	s, id, spec := r.s, r.id, r.spec
	backendName, backend, err := s.backend(spec.Backend)
	if err != nil {
		return err
	}
	r.backend = backendName
	switch {
	case headOnly(spec):
		r.logf(ctx, "training the new head (%s) on the %s backend", ml.HeadArchitecture, backendName)
	case lastStages(spec):
		r.logf(ctx, "training the last %d stages on the %s backend", spec.UnfrozenStages, backendName)
	default:
		r.logf(ctx, "training %s on the %s backend", spec.Architecture, backendName)
	}
	prog := &progressReporter{s: s, ctx: ctx, id: id, epochs: int(spec.Epochs)}
	labels := r.data.labels
	r.cfg = ml.Config{
		Architecture: spec.Architecture, NumClasses: len(labels), Epochs: int(spec.Epochs),
		BatchSize: int(spec.BatchSize), LearningRate: spec.LearningRate, Seed: spec.Seed, Backend: backend,
		Optimizer: optimizerNames[spec.Optimizer], Schedule: scheduleNames[spec.Schedule], WeightDecay: spec.WeightDecay,
		Augment: augmentation(spec.Augmentation), EarlyStoppingPatience: int(spec.EarlyStoppingPatience),
		WarmupEpochs: int(spec.WarmupEpochs), BackboneRateScale: spec.BackboneLearningRateScale,
		FreezeBatchNorm: spec.BatchNorm == trainerpb.BatchNorm_BATCH_NORM_FROZEN,
		CheckpointDir:   s.checkpointDir(id),
		OnCheckpoint:    func(epoch int, file string) { s.storeCheckpoint(ctx, id, epoch, file) },
		OnStep:          prog.step,
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
	base := r.base
	switch {
	case frozenPrefix(spec):
		// The head starts afresh whatever the labels, and a partial job's
		// cut is made: nothing to load.
	case r.imported:
		newHead := !slices.Equal(base.GetLabels(), labels)
		if r.cfg.Import, err = s.importBase(ctx, base, len(labels), newHead, spec.Seed); err != nil {
			return err
		}
		if newHead {
			r.logf(ctx, "fine-tuning %s version %d, imported from ONNX, with a new head in place of its %s: its labels %v differ from the dataset's %v",
				base.GetModel(), base.GetVersion(), r.cfg.Import.Head, base.GetLabels(), labels)
		} else {
			r.logf(ctx, "fine-tuning %s version %d, imported from ONNX (classification layer %s), labels unchanged; batch-norm statistics stay frozen",
				base.GetModel(), base.GetVersion(), r.cfg.Import.Head)
		}
		if rw := r.cfg.Import.Rewrites; len(rw) > 0 {
			r.logf(ctx, "graph rewritten for training (same function): %s", strings.Join(rw, "; "))
		}
	case base != nil:
		if r.cfg.Base, r.cfg.NewHead, err = s.loadBase(ctx, id, spec, base, labels); err != nil {
			return err
		}
	}
	return nil
}

// restore puts the checkpoint of an earlier run of the job, by whichever
// trainer, where training resumes from it.
func (r *jobRun) restore(ctx context.Context) error {
	var size int64
	err := r.s.retryStorage(ctx, r.id, "reading the job's checkpoint", func(int) (err error) {
		size, err = r.s.restoreCheckpoint(ctx, r.id)
		return err
	})
	if err != nil {
		return err
	}
	if size > 0 {
		r.logf(ctx, "restored the job's last checkpoint (%.1f MiB) from the blob store", float64(size)/(1<<20))
	}
	return nil
}

// train trains the network; r.res holds the best epoch's weights.
func (r *jobRun) train(ctx context.Context) error {
	res, err := ml.Train(ctx, r.cfg, r.data.train, r.data.val)
	return r.trained(ctx, "training", res, err)
}

// trained keeps a finished training's result in r.res and says when it
// stopped early; what names the training in its error.
func (r *jobRun) trained(ctx context.Context, what string, res *ml.Result, err error) error {
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	r.res = res
	if res.StoppedEarly {
		last := res.Epochs[len(res.Epochs)-1].Epoch
		r.logf(ctx, "early stopping after epoch %d of %d: no better validation accuracy for %d epochs since epoch %d",
			last, r.spec.Epochs, r.spec.EarlyStoppingPatience, res.BestEpoch)
	}
	return nil
}

// evaluate measures the best weights on the test split and reports it.
func (r *jobRun) evaluate(ctx context.Context) error {
	r.logf(ctx, "evaluating epoch %d's weights on %d test images", r.res.BestEpoch, r.data.test.Len())
	eval, err := ml.Evaluate(r.res.Model, r.data.test)
	if err != nil {
		return fmt.Errorf("evaluating: %w", err)
	}
	r.metrics = toMetrics(eval, r.data.labels, r.res)
	r.s.emit(ctx, r.id, &trainerpb.WatchJobResponse{Event: &trainerpb.WatchJobResponse_Evaluation{Evaluation: r.metrics}})
	return nil
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
			decoded, _, err := imaging.DecodeFor(msg.GetContent(), pre, imaging.Limits{})
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
	d, err := verifyExport(want, got, k, "GoMLX")
	if err != nil {
		return nil, err
	}
	s.logf(ctx, id, "exported ONNX (%d bytes); ONNX Runtime matches GoMLX on %d test images (max |Δp| = %.2g)", len(onnxModel), d.Images, d.MaxAbsDiff)
	return onnxModel, nil
}

// verifyExport compares ONNX Runtime's probabilities for the test images
// (got) with what the training side computed for them (want, from what),
// and refuses an export that changes more than verifyTolerance allows.
func verifyExport(want, got []float32, k int, what string) (ml.ONNXMismatch, error) {
	d, err := ml.CompareProbabilities(want, got, k)
	if err != nil {
		return d, fmt.Errorf("verifying the exported model: %w", err)
	}
	if !d.Acceptable(verifyTolerance) {
		return d, fmt.Errorf("the exported ONNX model does not reproduce %s: %d of %d test images change their top class, max |Δp| = %.3g (tolerance %g); not registering it",
			what, d.Top1Differences, d.Images, d.MaxAbsDiff, verifyTolerance)
	}
	return d, nil
}
