package trainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// Every successful job of a Shoal architecture keeps its best weights in
// the blob store, so that a version it registered (whose lineage names the
// job) is fine-tuned from them: its ONNX artifact, whose convolutions are
// exported as im2col + MatMul, would not give back the architecture's
// variables. Any other base (an uploaded ONNX model, or a version
// fine-tuned from one) is imported from its ONNX artifact with onnx-gomlx.
func weightsKey(jobID string) string { return "trainer/weights/" + jobID + ".gob" }

// saveWeights stores a finished job's weights.
func (s *Service) saveWeights(ctx context.Context, id string, m *ml.Model) error {
	w, err := m.Weights()
	if err != nil {
		return fmt.Errorf("saving weights: %w", err)
	}
	data, err := w.Encode()
	if err != nil {
		return fmt.Errorf("saving weights: %w", err)
	}
	if err := s.deps.Blobs.Put(ctx, weightsKey(id), bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("saving weights: %w", err)
	}
	return nil
}

// baseVersion fetches the spec's base version and says how it can be
// fine-tuned: from the weights a Shoal job kept (shoal), or else by
// importing its ONNX artifact (an uploaded model, or one trained from such).
func (s *Service) baseVersion(ctx context.Context, ref *registrypb.VersionRef) (v *registrypb.Version, shoal bool, err error) {
	if ref.GetModel() == "" || ref.GetVersion() <= 0 {
		return nil, false, status.Errorf(codes.InvalidArgument, "spec.baseVersion = %v; want a model name and a version number", ref)
	}
	resp, err := s.deps.Registry.GetVersion(ctx, &registrypb.GetVersionRequest{Model: ref.GetModel(), Version: ref.GetVersion()})
	if err != nil {
		return nil, false, downstream("Registry.GetVersion", err)
	}
	v = resp.GetVersion()
	job := v.GetLineage().GetJobId()
	if job == "" {
		return v, false, nil
	}
	if _, err := s.deps.Blobs.Stat(ctx, weightsKey(job)); err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return v, false, nil
		}
		return nil, false, fmt.Errorf("looking up the weights of job %s: %w", job, err)
	}
	return v, true, nil
}

// resolveBase fills the architecture and input shape a fine-tuning spec
// leaves empty from its base version, before normalizeSpec applies the
// usual defaults. A base without Shoal weights is imported from its ONNX
// artifact: it is checked here, so that a model the importer cannot take
// is refused before a job is queued, and the spec's architecture becomes
// ml.ImportedArchitecture.
func (s *Service) resolveBase(ctx context.Context, spec *trainerpb.JobSpec) (*registrypb.Version, error) {
	v, shoal, err := s.baseVersion(ctx, spec.GetBaseVersion())
	if err != nil {
		return nil, err
	}
	in := v.GetInputSpec()
	head := frozenPrefix(spec)
	switch {
	case headOnly(spec):
		if err := s.resolveHeadBase(ctx, spec, v); err != nil {
			return nil, err
		}
	case lastStages(spec) && shoal:
		return nil, status.Errorf(codes.FailedPrecondition, "spec.trainLayers = TRAIN_LAYERS_LAST_STAGES cuts a graph imported from ONNX; %s version %d was trained by Shoal as %q: fine-tune it whole, with spec.backboneLearningRateScale for a lower rate below its head",
			v.GetModel(), v.GetVersion(), v.GetArchitecture())
	case lastStages(spec):
		if err := s.resolvePartialBase(ctx, spec, v); err != nil {
			return nil, err
		}
	}
	if shoal && !head && spec.Architecture == ml.ImportedArchitecture {
		return nil, status.Errorf(codes.InvalidArgument, "spec.architecture = %q, but the base version %s version %d was trained by Shoal as %q",
			spec.Architecture, v.GetModel(), v.GetVersion(), v.GetArchitecture())
	}
	if !shoal && !head {
		name := fmt.Sprintf("%s version %d", v.GetModel(), v.GetVersion())
		switch spec.Architecture {
		case "", ml.ImportedArchitecture, v.GetArchitecture():
		default:
			return nil, status.Errorf(codes.InvalidArgument, "spec.architecture = %q, but the base version %s is an imported ONNX model (%q): fine-tuning keeps its graph; leave spec.architecture empty",
				spec.Architecture, name, v.GetArchitecture())
		}
		spec.Architecture = ml.ImportedArchitecture
		if in.GetHeight() != in.GetWidth() {
			return nil, status.Errorf(codes.FailedPrecondition, "spec.baseVersion: %s takes %dx%d images; fine-tuning takes square images only", name, in.GetWidth(), in.GetHeight())
		}
		if _, err := s.importBase(ctx, v, len(v.GetLabels()), false, spec.GetSeed()); err != nil {
			return nil, err
		}
	}
	if spec.Architecture == "" {
		spec.Architecture = v.GetArchitecture()
	}
	if spec.ImageSize == 0 && in.GetHeight() == in.GetWidth() {
		spec.ImageSize = in.GetHeight()
	}
	if spec.Channels == 0 {
		spec.Channels = in.GetChannels()
	}
	return v, nil
}

// importSpec is how an imported base takes its images (ml.ImportSpec), and
// the preprocessing that gives the Trainer's images for it: the base's size
// and resize mode, pixel values in [0, 1] and NCHW, since ml applies the
// base's normalisation and layout in the training graph.
func importSpec(v *registrypb.Version) (ml.ImportSpec, imaging.Spec, error) {
	pre, err := imaging.SpecFromProto(v.GetInputSpec())
	if err != nil {
		return ml.ImportSpec{}, imaging.Spec{}, status.Errorf(codes.FailedPrecondition, "spec.baseVersion: the base's input spec: %v", err)
	}
	in := v.GetInputSpec()
	spec := ml.ImportSpec{
		Shape: ml.InputShape{Channels: pre.Channels, Height: pre.Height, Width: pre.Width},
		Mean:  pre.Mean, Std: pre.Std, NHWC: pre.NHWC,
		InputName: in.GetInputName(), OutputName: in.GetOutputName(), Classes: len(v.GetLabels()),
	}
	pre.Mean, pre.Std, pre.NHWC = nil, nil, false
	return spec, pre, nil
}

// importBase downloads the base version's ONNX artifact and prepares it for
// fine-tuning with numClasses classes. What the importer cannot take is
// FAILED_PRECONDITION, with its reason.
func (s *Service) importBase(ctx context.Context, v *registrypb.Version, numClasses int, newHead bool, seed int64) (*ml.Imported, error) {
	spec, _, err := importSpec(v)
	if err != nil {
		return nil, err
	}
	data, err := s.downloadArtifact(ctx, v)
	if err != nil {
		return nil, err
	}
	imp, err := ml.ImportONNX(data, spec, numClasses, newHead, seed)
	if err == nil {
		err = ml.CheckImport(imp)
	}
	if errors.Is(err, ml.ErrImport) {
		return nil, status.Errorf(codes.FailedPrecondition, "spec.baseVersion: %s version %d: %v", v.GetModel(), v.GetVersion(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("importing the base version: %w", err)
	}
	return imp, nil
}

// downloadArtifact reads a version's ONNX file from the Registry.
func (s *Service) downloadArtifact(ctx context.Context, v *registrypb.Version) ([]byte, error) {
	stream, err := s.deps.Registry.DownloadArtifact(ctx, &registrypb.DownloadArtifactRequest{Model: v.GetModel(), Version: v.GetVersion()})
	if err != nil {
		return nil, downstream("Registry.DownloadArtifact", err)
	}
	var data []byte
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return data, nil
		}
		if err != nil {
			return nil, downstream("Registry.DownloadArtifact", err)
		}
		data = append(data, msg.GetChunk()...)
	}
}

// checkBase rejects a normalised spec whose architecture or input shape
// differs from its base version's.
func checkBase(spec *trainerpb.JobSpec, v *registrypb.Version) error {
	name := fmt.Sprintf("%s version %d", v.GetModel(), v.GetVersion())
	if spec.Architecture != ml.ImportedArchitecture && v.GetArchitecture() != spec.Architecture {
		return status.Errorf(codes.InvalidArgument, "spec.architecture = %q, but the base version %s is %q: fine-tuning keeps the architecture",
			spec.Architecture, name, v.GetArchitecture())
	}
	in := v.GetInputSpec()
	if in.GetChannels() != spec.Channels || in.GetHeight() != spec.ImageSize || in.GetWidth() != spec.ImageSize {
		return status.Errorf(codes.InvalidArgument, "spec.imageSize/channels = %dx%dx%d, but the base version %s takes %dx%dx%d images",
			spec.Channels, spec.ImageSize, spec.ImageSize, name, in.GetChannels(), in.GetHeight(), in.GetWidth())
	}
	return nil
}

// loadBase reads a fine-tuning job's starting weights and says whether the
// job's labels need a new head.
func (s *Service) loadBase(ctx context.Context, id string, spec *trainerpb.JobSpec, v *registrypb.Version, labels []string) (*ml.Weights, bool, error) {
	r, err := s.deps.Blobs.Get(ctx, weightsKey(v.GetLineage().GetJobId()))
	if err != nil {
		return nil, false, fmt.Errorf("reading base weights: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, false, fmt.Errorf("reading base weights: %w", err)
	}
	w, err := ml.DecodeWeights(data)
	if err != nil {
		return nil, false, err
	}
	shape := ml.InputShape{Channels: int(spec.Channels), Height: int(spec.ImageSize), Width: int(spec.ImageSize)}
	if err := w.CheckBase(spec.Architecture, shape); err != nil {
		return nil, false, status.Errorf(codes.FailedPrecondition, "spec.baseVersion: %v", err)
	}
	newHead := !slices.Equal(v.GetLabels(), labels)
	if newHead {
		s.logf(ctx, id, "fine-tuning %s version %d with a new head: its labels %v differ from the dataset's %v",
			v.GetModel(), v.GetVersion(), v.GetLabels(), labels)
	} else {
		s.logf(ctx, id, "fine-tuning %s version %d (job %s), labels unchanged", v.GetModel(), v.GetVersion(), v.GetLineage().GetJobId())
	}
	return w, newHead, nil
}
