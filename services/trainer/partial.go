package trainer

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
)

// Partial unfreezing (spec.trainLayers = TRAIN_LAYERS_LAST_STAGES): the
// base version's graph is cut before its last spec.unfrozenStages stages
// (ml.Partial). The part before the cut is frozen and goes through
// head-only training's path (headonly.go): ONNX Runtime runs it once per
// image, its outputs are cached in the blob store, and only with
// augmentation does it run again every epoch. The rest trains in GoMLX on
// those outputs, and the registered model is the whole base graph with the
// trained part's weights.

func lastStages(spec *trainerpb.JobSpec) bool {
	return spec.GetTrainLayers() == trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES
}

// frozenPrefix reports whether a job trains on a frozen part's cached
// outputs rather than on images: head-only and partial jobs.
func frozenPrefix(spec *trainerpb.JobSpec) bool { return headOnly(spec) || lastStages(spec) }

// partial downloads a base version's ONNX file and cuts it for training its
// last unfrozen stages with numClasses classes. What cannot be cut there is
// FAILED_PRECONDITION, naming why.
func (s *Service) partial(ctx context.Context, v *registrypb.Version, numClasses int, newHead bool, seed int64, unfrozen int) (*ml.Partial, error) {
	spec, _, err := importSpec(v)
	if err != nil {
		return nil, err
	}
	data, err := s.downloadArtifact(ctx, v)
	if err != nil {
		return nil, err
	}
	p, err := ml.NewPartial(s.deps.ONNXRuntime, data, spec, numClasses, newHead, seed, unfrozen)
	if err == nil {
		err = ml.CheckImport(p.Suffix)
	}
	if errors.Is(err, ml.ErrImport) {
		return nil, status.Errorf(codes.FailedPrecondition, "spec.trainLayers = TRAIN_LAYERS_LAST_STAGES, spec.unfrozenStages = %d: the base version %s version %d: %v",
			unfrozen, v.GetModel(), v.GetVersion(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("cutting the base version for partial fine-tuning: %w", err)
	}
	return p, nil
}

// resolvePartialBase checks a partial spec against its base version before
// the job is queued: the graph must have the stages to unfreeze, and ONNX
// Runtime must run the frozen part.
func (s *Service) resolvePartialBase(ctx context.Context, spec *trainerpb.JobSpec, v *registrypb.Version) error {
	name := fmt.Sprintf("%s version %d", v.GetModel(), v.GetVersion())
	if spec.UnfrozenStages <= 0 {
		return status.Errorf(codes.InvalidArgument, "spec.trainLayers = TRAIN_LAYERS_LAST_STAGES needs spec.unfrozenStages, how many of the last stages train (at least 1)")
	}
	switch spec.Architecture {
	case "", ml.ImportedArchitecture, v.GetArchitecture():
	default:
		return status.Errorf(codes.InvalidArgument, "spec.architecture = %q, but partial fine-tuning keeps the graph of the base version %s (%q): leave spec.architecture empty",
			spec.Architecture, name, v.GetArchitecture())
	}
	spec.Architecture = ml.ImportedArchitecture
	in := v.GetInputSpec()
	if in.GetHeight() != in.GetWidth() {
		return status.Errorf(codes.FailedPrecondition, "spec.baseVersion: %s takes %dx%d images; training takes square images only", name, in.GetWidth(), in.GetHeight())
	}
	_, err := s.partial(ctx, v, len(v.GetLabels()), false, spec.GetSeed(), int(spec.UnfrozenStages))
	return err
}

// frozenPart is the backbone whose outputs a head-only or partial job
// trains on; a partial job's cut is kept in r.partial.
func (r *jobRun) frozenPart(ctx context.Context, labels []string) (*ml.Backbone, error) {
	if !lastStages(r.spec) {
		bb, err := r.s.backbone(ctx, r.base)
		if err != nil {
			return nil, err
		}
		r.logf(ctx, "head-only: %s version %d up to its classification layer %s is the frozen backbone; ONNX Runtime computes its %d features per image, and a new linear head trains on them",
			r.base.GetModel(), r.base.GetVersion(), bb.Head, bb.Features)
		return bb, nil
	}
	newHead := !slices.Equal(r.base.GetLabels(), labels)
	p, err := r.s.partial(ctx, r.base, len(labels), newHead, r.spec.Seed, int(r.spec.UnfrozenStages))
	if err != nil {
		return nil, err
	}
	r.partial = p
	head := "its classification layer " + p.Suffix.Head
	if newHead {
		head = fmt.Sprintf("a new classification layer in place of %s (its labels %v differ from the dataset's %v)", p.Suffix.Head, r.base.GetLabels(), labels)
	}
	r.logf(ctx, "partial: %s version %d has %d stages; the last %d and %s train, the graph up to %q (%s per image) stays frozen and ONNX Runtime computes it once per image",
		r.base.GetModel(), r.base.GetVersion(), p.Stages, p.Unfrozen, head, p.Cut, p.CutShape)
	return p.Frozen, nil
}

// trainPartial trains the unfrozen stages on the frozen part's outputs;
// r.res holds the best epoch's weights.
func (r *jobRun) trainPartial(ctx context.Context) error {
	var aug *ml.HeadAugmentation
	if r.head.trainImages != nil {
		aug = &ml.HeadAugmentation{Images: r.head.trainImages, Extractor: r.head.ex}
	}
	res, err := ml.TrainPartial(ctx, r.cfg, r.partial, r.data.train, r.data.val, aug)
	return r.trained(ctx, "training the last stages", res, err)
}

// exportPartial writes the trained part's weights into the whole base
// graph and checks the result in ONNX Runtime: on the first test images
// its predictions must equal the trained part's on their cached frozen
// outputs.
func (r *jobRun) exportPartial(ctx context.Context) ([]byte, error) {
	p, k := r.partial, len(r.data.labels)
	onnxModel, err := p.Export(r.res.Model)
	if err != nil {
		return nil, fmt.Errorf("exporting ONNX: %w", err)
	}
	want, err := r.res.Model.Probabilities(r.head.verifyFeatures.Images)
	if err != nil {
		return nil, fmt.Errorf("the trained part's probabilities for verification: %w", err)
	}
	got, err := p.RunONNX(r.s.deps.ONNXRuntime, onnxModel, verifyBatch, r.head.verifyImages.Images)
	if err != nil {
		return nil, fmt.Errorf("running the exported model: %w", err)
	}
	d, err := verifyExport(want, got, k, "the frozen part × the trained stages")
	if err != nil {
		return nil, err
	}
	r.logf(ctx, "exported ONNX (%d bytes): the whole base graph with the trained stages' weights; on %d test images ONNX Runtime's predictions equal the trained part's on the cached outputs (max |Δp| = %.2g)",
		len(onnxModel), d.Images, d.MaxAbsDiff)
	return onnxModel, nil
}
