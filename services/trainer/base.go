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
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// Every successful job keeps its best weights in the blob store, so that a
// version it registered (whose lineage names the job) can be fine-tuned.
// The ONNX artifact alone would not do: its weights are baked into an
// inference graph without the names training needs.
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

// baseVersion fetches the spec's base version and checks that it can be
// fine-tuned: trained by a Shoal job whose weights are still stored.
func (s *Service) baseVersion(ctx context.Context, ref *registrypb.VersionRef) (*registrypb.Version, error) {
	if ref.GetModel() == "" || ref.GetVersion() <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "spec.base_version = %v; want a model name and a version number", ref)
	}
	resp, err := s.deps.Registry.GetVersion(ctx, &registrypb.GetVersionRequest{Model: ref.GetModel(), Version: ref.GetVersion()})
	if err != nil {
		return nil, downstream("Registry.GetVersion", err)
	}
	v := resp.GetVersion()
	name := fmt.Sprintf("%s version %d", ref.GetModel(), ref.GetVersion())
	job := v.GetLineage().GetJobId()
	if job == "" {
		return nil, status.Errorf(codes.FailedPrecondition,
			"spec.base_version: %s was not trained by Shoal (an uploaded ONNX model): fine-tuning needs the weights of a Shoal training job", name)
	}
	if _, err := s.deps.Blobs.Stat(ctx, weightsKey(job)); err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return nil, status.Errorf(codes.FailedPrecondition, "spec.base_version: the weights of %s (job %s) are not stored", name, job)
		}
		return nil, fmt.Errorf("looking up the weights of job %s: %w", job, err)
	}
	return v, nil
}

// resolveBase fills the architecture and input shape a fine-tuning spec
// leaves empty from its base version, before normalizeSpec applies the
// usual defaults.
func (s *Service) resolveBase(ctx context.Context, spec *trainerpb.JobSpec) (*registrypb.Version, error) {
	v, err := s.baseVersion(ctx, spec.GetBaseVersion())
	if err != nil {
		return nil, err
	}
	if spec.Architecture == "" {
		spec.Architecture = v.GetArchitecture()
	}
	in := v.GetInputSpec()
	if spec.ImageSize == 0 && in.GetHeight() == in.GetWidth() {
		spec.ImageSize = in.GetHeight()
	}
	if spec.Channels == 0 {
		spec.Channels = in.GetChannels()
	}
	return v, nil
}

// checkBase rejects a normalised spec whose architecture or input shape
// differs from its base version's.
func checkBase(spec *trainerpb.JobSpec, v *registrypb.Version) error {
	name := fmt.Sprintf("%s version %d", v.GetModel(), v.GetVersion())
	if v.GetArchitecture() != spec.Architecture {
		return status.Errorf(codes.InvalidArgument, "spec.architecture = %q, but the base version %s is %q: fine-tuning keeps the architecture",
			spec.Architecture, name, v.GetArchitecture())
	}
	in := v.GetInputSpec()
	if in.GetChannels() != spec.Channels || in.GetHeight() != spec.ImageSize || in.GetWidth() != spec.ImageSize {
		return status.Errorf(codes.InvalidArgument, "spec.image_size/channels = %dx%dx%d, but the base version %s takes %dx%dx%d images",
			spec.Channels, spec.ImageSize, spec.ImageSize, name, in.GetChannels(), in.GetHeight(), in.GetWidth())
	}
	return nil
}

// loadBase reads a fine-tuning job's starting weights and says whether the
// job's labels need a new head.
func (s *Service) loadBase(ctx context.Context, id string, spec *trainerpb.JobSpec, labels []string) (*ml.Weights, bool, error) {
	v, err := s.baseVersion(ctx, spec.GetBaseVersion())
	if err != nil {
		return nil, false, err
	}
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
		return nil, false, status.Errorf(codes.FailedPrecondition, "spec.base_version: %v", err)
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
