package trainer

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

// registeredVersion returns the version of model that job id registered
// before, or nil. A job is resumed from its checkpoint when its process
// died; if that happened after the Registry stored the job's version but
// before the job recorded its end, the work is done, and registering again
// would give the model a second, identical version.
func (s *Service) registeredVersion(ctx context.Context, model, id string) (*registrypb.Version, error) {
	req := &registrypb.ListVersionsRequest{Model: model, Descending: true, PageSize: 1000}
	for {
		resp, err := s.deps.Registry.ListVersions(ctx, req)
		if status.Code(err) == codes.NotFound {
			return nil, nil // no version of the model yet
		}
		if err != nil {
			return nil, downstream("Registry.ListVersions", err)
		}
		for _, v := range resp.GetVersions() {
			if v.GetLineage().GetJobId() == id {
				return v, nil
			}
		}
		if resp.GetNextPageToken() == "" {
			return nil, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// finishRegistered ends a job whose version an earlier run registered:
// the promotion policy is applied again (setting an alias twice is
// harmless) and the version's metrics are the job's.
func (s *Service) finishRegistered(ctx context.Context, id string, spec *trainerpb.JobSpec, v *registrypb.Version) (*outcome, error) {
	ref := &registrypb.VersionRef{Model: v.GetModel(), Version: v.GetVersion()}
	s.logf(ctx, id, "%s version %d was registered by this job before it stopped; not training again", ref.Model, ref.Version)
	if err := s.retryStorage(ctx, id, "promoting the model", func(int) error {
		return s.promote(ctx, id, spec.Promotion, ref, v.GetMetrics().GetTestAccuracy())
	}); err != nil {
		return nil, err
	}
	return &outcome{metrics: v.GetMetrics(), version: ref}, nil
}
