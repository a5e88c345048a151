package trainer

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/tracing"
)

// handler is the service's RPC surface.
type handler struct {
	trainerpb.UnimplementedTrainerServiceServer
	svc *Service
}

var _ trainerpb.TrainerServiceServer = (*handler)(nil)

func (h *handler) job(ctx context.Context, id string) (*trainerpb.Job, error) {
	row, err := h.svc.st.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return h.svc.st.toProto(ctx, row)
}

// StartTraining validates the spec, pins the snapshot and queues the job.
func (h *handler) StartTraining(ctx context.Context, req *trainerpb.StartTrainingRequest) (*trainerpb.StartTrainingResponse, error) {
	spec := req.GetSpec()
	var base *registrypb.Version
	if spec.GetBaseVersion() != nil && spec.GetDataset() != "" {
		var err error
		if base, err = h.svc.resolveBase(ctx, spec); err != nil {
			return nil, err
		}
	}
	spec, err := normalizeSpec(spec)
	if err != nil {
		return nil, err
	}
	if base != nil {
		if err := checkBase(spec, base); err != nil {
			return nil, err
		}
	}
	if err := h.svc.resolveSnapshot(ctx, spec); err != nil {
		return nil, err
	}
	js, err := protojson.Marshal(spec)
	if err != nil {
		return nil, err
	}
	row := &jobRow{
		ID: uuid.NewString(), Dataset: spec.Dataset, State: int32(trainerpb.JobState_JOB_STATE_QUEUED),
		Spec: string(js), CreatedAt: time.Now().UTC(), TraceContext: tracing.Encode(ctx),
	}
	if err := h.svc.st.insert(ctx, row); err != nil {
		return nil, err
	}
	h.svc.changes.Notify()
	job, err := h.job(ctx, row.ID)
	if err != nil {
		return nil, err
	}
	return &trainerpb.StartTrainingResponse{Job: job}, nil
}

// GetJob returns one job.
func (h *handler) GetJob(ctx context.Context, req *trainerpb.GetJobRequest) (*trainerpb.GetJobResponse, error) {
	job, err := h.job(ctx, req.GetJobId())
	if err != nil {
		return nil, err
	}
	return &trainerpb.GetJobResponse{Job: job}, nil
}

const pageTokenPrefix = "offset:"

// ListJobs returns one page of jobs, newest first.
func (h *handler) ListJobs(ctx context.Context, req *trainerpb.ListJobsRequest) (*trainerpb.ListJobsResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = 50
	case size > 1000:
		size = 1000
	}
	offset := 0
	if tok := req.GetPageToken(); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(raw), pageTokenPrefix))
		if err != nil || err2 != nil || !strings.HasPrefix(string(raw), pageTokenPrefix) || n < 0 {
			return nil, status.Error(codes.InvalidArgument, "pageToken is not one ListJobs returned")
		}
		offset = n
	}
	rows, more, err := h.svc.st.list(ctx, req.GetState(), req.GetDataset(), offset, size)
	if err != nil {
		return nil, err
	}
	resp := &trainerpb.ListJobsResponse{}
	for i := range rows {
		j, err := h.svc.st.toProto(ctx, &rows[i])
		if err != nil {
			return nil, err
		}
		resp.Jobs = append(resp.Jobs, j)
	}
	if more {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.Itoa(offset+size)))
	}
	return resp, nil
}

// CancelJob cancels a queued job at once and asks a running one to stop
// at its next step.
func (h *handler) CancelJob(ctx context.Context, req *trainerpb.CancelJobRequest) (*trainerpb.CancelJobResponse, error) {
	id := req.GetJobId()
	// NotFound for an unknown job, before any change.
	if _, err := h.svc.st.get(ctx, id); err != nil {
		return nil, err
	}
	queued, running := trainerpb.JobState_JOB_STATE_QUEUED, trainerpb.JobState_JOB_STATE_RUNNING
	ok, err := h.svc.st.transition(ctx, id, []trainerpb.JobState{queued}, trainerpb.JobState_JOB_STATE_CANCELLED, "cancelled before it started", nil)
	if err != nil {
		return nil, err
	}
	if ok {
		h.svc.met.finished.WithLabelValues(stateLabel(trainerpb.JobState_JOB_STATE_CANCELLED)).Inc()
		h.svc.changes.Notify()
	} else {
		row, err := h.svc.st.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if st := trainerpb.JobState(row.State); st != running {
			return nil, status.Errorf(codes.FailedPrecondition, "job %s has already finished (%s)", id, st)
		}
		// The worker sees the flag at its next heartbeat, wherever it runs;
		// one in this process is stopped at once.
		if err := h.svc.st.requestCancel(ctx, id); err != nil {
			return nil, err
		}
		h.svc.cancelLocal(id)
	}
	job, err := h.job(ctx, id)
	if err != nil {
		return nil, err
	}
	return &trainerpb.CancelJobResponse{Job: job}, nil
}

// watchBatch bounds the events read per query while replaying.
const watchBatch = 500

// WatchJob replays a job's events after a sequence number, then follows it
// until its final state event or the service's shutdown.
func (h *handler) WatchJob(req *trainerpb.WatchJobRequest, stream grpc.ServerStreamingServer[trainerpb.WatchJobResponse]) error {
	ctx := stream.Context()
	id := req.GetJobId()
	if _, err := h.svc.st.get(ctx, id); err != nil {
		return err
	}
	after := req.GetAfterSequence()
	poll := time.NewTicker(h.svc.cfg.PollInterval)
	defer poll.Stop()
	for {
		// Subscribe before reading, so an event stored in between wakes us.
		wake := h.svc.changes.Wait()
		events, err := h.svc.st.eventsAfter(ctx, id, after, watchBatch)
		if err != nil {
			return err
		}
		for _, e := range events {
			if err := stream.Send(e); err != nil {
				return err
			}
			after = e.GetSequence()
			if finalState(e.GetState().GetState()) {
				return nil
			}
		}
		if len(events) == watchBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.svc.stopping:
			return status.Error(codes.Unavailable, "the trainer is shutting down; watch again from the last sequence received")
		case <-wake:
		case <-poll.C: // events written by another trainer process
		}
	}
}

// ListArchitectures describes the networks internal/ml can build, with
// their trainable parameters for 10 classes at the default input.
func (h *handler) ListArchitectures(ctx context.Context, _ *trainerpb.ListArchitecturesRequest) (*trainerpb.ListArchitecturesResponse, error) {
	counts, err := h.svc.parameterCounts()
	if err != nil {
		return nil, err
	}
	// The defaults come from the same normalisation StartTraining applies.
	defaults, err := normalizeSpec(&trainerpb.JobSpec{Dataset: "-"})
	if err != nil {
		return nil, fmt.Errorf("default spec: %w", err)
	}
	defaults.Dataset, defaults.Model = "", ""
	resp := &trainerpb.ListArchitecturesResponse{Defaults: defaults}
	for _, a := range ml.Architectures() {
		resp.Architectures = append(resp.Architectures, &trainerpb.Architecture{
			Name: a.Name, Description: a.Description, DefaultImageSize: int32(a.DefaultSize),
			MinImageSize: int32(a.MinSize), DefaultChannels: int32(a.DefaultChannels), Parameters: counts[a.Name],
		})
	}
	return resp, nil
}
