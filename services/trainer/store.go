package trainer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/storage/db"
)

// storedJSON reads the messages stored as JSON. Unknown fields are skipped:
// rows written by a newer release (a field added since) stay readable by
// this one, as the schema itself does (db.Migrate runs an older release on a
// newer schema).
var storedJSON = protojson.UnmarshalOptions{DiscardUnknown: true}

// jobRow is a trainer_jobs row.
type jobRow struct {
	ID              string
	Dataset         string
	State           int32
	Spec            string
	Error           string
	CancelRequested bool
	LastSequence    int64
	TestMetrics     string
	ResultModel     string
	ResultVersion   int64
	Owner           string
	HeartbeatAt     *time.Time
	CreatedAt       time.Time
	StartedAt       *time.Time
	EndedAt         *time.Time
	// TraceContext is the StartTraining call's W3C trace context
	// (tracing.Encode): the job's spans join its trace.
	TraceContext string
}

func (jobRow) TableName() string { return "trainer_jobs" }

// eventRow is a trainer_job_events row.
type eventRow struct {
	ID       int64 `gorm:"primaryKey;autoIncrement"`
	JobID    string
	Sequence int64
	Kind     string
	Time     time.Time
	Payload  string
}

func (eventRow) TableName() string { return "trainer_job_events" }

// Event kinds, stored so that GetJob can find the epoch events and
// progress events can be replaced without decoding payloads.
const (
	kindState      = "state"
	kindProgress   = "progress"
	kindEpoch      = "epoch"
	kindLog        = "log"
	kindEvaluation = "evaluation"
	kindRegistered = "registered"
)

func eventKind(e *trainerpb.WatchJobResponse) string {
	switch e.GetEvent().(type) {
	case *trainerpb.WatchJobResponse_State:
		return kindState
	case *trainerpb.WatchJobResponse_Progress:
		return kindProgress
	case *trainerpb.WatchJobResponse_Epoch:
		return kindEpoch
	case *trainerpb.WatchJobResponse_Evaluation:
		return kindEvaluation
	case *trainerpb.WatchJobResponse_Registered:
		return kindRegistered
	}
	return kindLog
}

func finalState(s trainerpb.JobState) bool {
	switch s {
	case trainerpb.JobState_JOB_STATE_SUCCEEDED, trainerpb.JobState_JOB_STATE_FAILED, trainerpb.JobState_JOB_STATE_CANCELLED:
		return true
	}
	return false
}

func stateEvent(s trainerpb.JobState, reason string) *trainerpb.WatchJobResponse {
	return &trainerpb.WatchJobResponse{Event: &trainerpb.WatchJobResponse_State{State: &trainerpb.StateChange{State: s, Reason: reason}}}
}

func logEvent(level, msg string) *trainerpb.WatchJobResponse {
	return &trainerpb.WatchJobResponse{Event: &trainerpb.WatchJobResponse_Log{Log: &trainerpb.LogLine{Level: level, Message: msg}}}
}

// store is the service's tables.
type store struct{ db *gorm.DB }

// appendEvent gives e the job's next sequence number and stores it, inside
// tx. A progress event replaces the job's previous one: only the latest
// progress is history worth replaying.
func appendEvent(tx *gorm.DB, jobID string, e *trainerpb.WatchJobResponse) error {
	if err := tx.Model(&jobRow{}).Where("id = ?", jobID).
		Update("last_sequence", gorm.Expr("last_sequence + 1")).Error; err != nil {
		return fmt.Errorf("next event sequence of job %s: %w", jobID, err)
	}
	var j jobRow
	if err := tx.Select("last_sequence").Take(&j, "id = ?", jobID).Error; err != nil {
		return fmt.Errorf("read event sequence of job %s: %w", jobID, err)
	}
	now := time.Now().UTC()
	e.Sequence, e.Time = j.LastSequence, timestamppb.New(now)
	kind := eventKind(e)
	if kind == kindProgress {
		if err := tx.Where("job_id = ? AND kind = ?", jobID, kindProgress).Delete(&eventRow{}).Error; err != nil {
			return fmt.Errorf("drop old progress of job %s: %w", jobID, err)
		}
	}
	payload, err := protojson.Marshal(e)
	if err != nil {
		return err
	}
	row := eventRow{JobID: jobID, Sequence: e.Sequence, Kind: kind, Time: now, Payload: string(payload)}
	if err := tx.Create(&row).Error; err != nil {
		return fmt.Errorf("store event %d of job %s: %w", e.Sequence, jobID, err)
	}
	return nil
}

// insert stores a new queued job with its first event.
func (s store) insert(ctx context.Context, j *jobRow) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(j).Error; err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
		return appendEvent(tx, j.ID, stateEvent(trainerpb.JobState_JOB_STATE_QUEUED, ""))
	})
}

// event appends one event to a job's log.
func (s store) event(ctx context.Context, jobID string, e *trainerpb.WatchJobResponse) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return appendEvent(tx, jobID, e) })
}

// transition moves a job from one of the states in from to "to", applying
// updates and appending the state event, atomically. It reports false when
// the job was not in any of the states in from (someone else moved it).
func (s store) transition(ctx context.Context, jobID string, from []trainerpb.JobState, to trainerpb.JobState, reason string, updates map[string]any, extra ...*trainerpb.WatchJobResponse) (bool, error) {
	ok := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if updates == nil {
			updates = map[string]any{}
		}
		updates["state"] = int32(to)
		if finalState(to) {
			updates["ended_at"] = time.Now().UTC()
			updates["error"] = ""
			if to != trainerpb.JobState_JOB_STATE_SUCCEEDED {
				updates["error"] = reason
			}
		}
		states := make([]int32, len(from))
		for i, f := range from {
			states[i] = int32(f)
		}
		res := tx.Model(&jobRow{}).Where("id = ? AND state IN ?", jobID, states).Updates(updates)
		if res.Error != nil {
			return fmt.Errorf("move job %s to %s: %w", jobID, to, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		ok = true
		for _, e := range extra {
			if err := appendEvent(tx, jobID, e); err != nil {
				return err
			}
		}
		return appendEvent(tx, jobID, stateEvent(to, reason))
	})
	return ok, err
}

// get returns a job's row, NotFound when there is none.
func (s store) get(ctx context.Context, id string) (*jobRow, error) {
	var j jobRow
	if err := s.db.WithContext(ctx).Take(&j, "id = ?", id).Error; err != nil {
		if db.IsNotFound(err) {
			return nil, status.Errorf(codes.NotFound, "job %q not found", id)
		}
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	return &j, nil
}

// list returns one page of jobs, newest first, and whether more follow.
func (s store) list(ctx context.Context, state trainerpb.JobState, dataset string, offset, limit int) ([]jobRow, bool, error) {
	q := s.db.WithContext(ctx).Model(&jobRow{})
	if state != trainerpb.JobState_JOB_STATE_UNSPECIFIED {
		q = q.Where("state = ?", int32(state))
	}
	if dataset != "" {
		q = q.Where("dataset = ?", dataset)
	}
	var rows []jobRow
	if err := q.Order("created_at DESC").Order("id DESC").Offset(offset).Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, false, fmt.Errorf("list jobs: %w", err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	return rows, more, nil
}

// eventsAfter returns a job's events with a sequence above after, in order,
// at most limit of them.
func (s store) eventsAfter(ctx context.Context, jobID string, after int64, limit int) ([]*trainerpb.WatchJobResponse, error) {
	var rows []eventRow
	if err := s.db.WithContext(ctx).Where("job_id = ? AND sequence > ?", jobID, after).
		Order("sequence").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read events of job %s: %w", jobID, err)
	}
	return decodeEvents(rows)
}

// epochs returns a job's per-epoch metrics.
func (s store) epochs(ctx context.Context, jobID string) ([]*trainerpb.EpochMetrics, error) {
	var rows []eventRow
	if err := s.db.WithContext(ctx).Where("job_id = ? AND kind = ?", jobID, kindEpoch).
		Order("sequence").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read epochs of job %s: %w", jobID, err)
	}
	evs, err := decodeEvents(rows)
	if err != nil {
		return nil, err
	}
	out := make([]*trainerpb.EpochMetrics, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.GetEpoch())
	}
	return out, nil
}

func decodeEvents(rows []eventRow) ([]*trainerpb.WatchJobResponse, error) {
	out := make([]*trainerpb.WatchJobResponse, 0, len(rows))
	for _, r := range rows {
		var e trainerpb.WatchJobResponse
		if err := storedJSON.Unmarshal([]byte(r.Payload), &e); err != nil {
			return nil, fmt.Errorf("decode event %d of job %s: %w", r.Sequence, r.JobID, err)
		}
		out = append(out, &e)
	}
	return out, nil
}

// claim takes the oldest job that is queued, or running with an expired
// lease (its process died), for owner. It returns nil when there is none.
func (s store) claim(ctx context.Context, owner string, lease time.Duration) (*jobRow, error) {
	now := time.Now().UTC()
	stale := now.Add(-lease)
	queued, running := int32(trainerpb.JobState_JOB_STATE_QUEUED), int32(trainerpb.JobState_JOB_STATE_RUNNING)
	cond := "(state = ? AND cancel_requested = ?) OR (state = ? AND (heartbeat_at IS NULL OR heartbeat_at < ?))"
	for range 5 {
		var cands []jobRow
		if err := s.db.WithContext(ctx).Where(cond, queued, false, running, stale).
			Order("created_at").Order("id").Limit(1).Find(&cands).Error; err != nil {
			return nil, fmt.Errorf("find a job to run: %w", err)
		}
		if len(cands) == 0 {
			return nil, nil
		}
		c := cands[0]
		won := false
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			updates := map[string]any{"state": running, "owner": owner, "heartbeat_at": now}
			if c.StartedAt == nil {
				updates["started_at"] = now
			}
			res := tx.Model(&jobRow{}).Where("id = ?", c.ID).Where(cond, queued, false, running, stale).Updates(updates)
			if res.Error != nil {
				return fmt.Errorf("claim job %s: %w", c.ID, res.Error)
			}
			if res.RowsAffected == 0 {
				return nil
			}
			won = true
			if c.State == running {
				return appendEvent(tx, c.ID, logEvent("warn", "resuming after the previous worker stopped"))
			}
			return appendEvent(tx, c.ID, stateEvent(trainerpb.JobState_JOB_STATE_RUNNING, ""))
		})
		if err != nil {
			return nil, err
		}
		if won {
			return s.get(ctx, c.ID)
		}
	}
	return nil, nil // lost every race; the caller tries again later
}

// heartbeat renews owner's lease on a running job and reports whether
// cancellation was requested. errLostJob means another worker took it.
func (s store) heartbeat(ctx context.Context, id, owner string) (cancel bool, err error) {
	res := s.db.WithContext(ctx).Model(&jobRow{}).
		Where("id = ? AND owner = ? AND state = ?", id, owner, int32(trainerpb.JobState_JOB_STATE_RUNNING)).
		Update("heartbeat_at", time.Now().UTC())
	if res.Error != nil {
		return false, fmt.Errorf("renew lease of job %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, errLostJob
	}
	j, err := s.get(ctx, id)
	if err != nil {
		return false, err
	}
	return j.CancelRequested, nil
}

var errLostJob = errors.New("job is no longer this worker's")

// release gives a running job back at shutdown so that the next worker to
// look resumes it from its checkpoint without waiting for the lease.
func (s store) release(ctx context.Context, id, owner string) error {
	return s.db.WithContext(ctx).Model(&jobRow{}).
		Where("id = ? AND owner = ? AND state = ?", id, owner, int32(trainerpb.JobState_JOB_STATE_RUNNING)).
		Update("heartbeat_at", nil).Error
}

// requestCancel marks a running job for cancellation.
func (s store) requestCancel(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Model(&jobRow{}).Where("id = ?", id).Update("cancel_requested", true).Error
}

// toProto turns a row into the API's Job.
func (s store) toProto(ctx context.Context, j *jobRow) (*trainerpb.Job, error) {
	var spec trainerpb.JobSpec
	if err := storedJSON.Unmarshal([]byte(j.Spec), &spec); err != nil {
		return nil, fmt.Errorf("decode spec of job %s: %w", j.ID, err)
	}
	out := &trainerpb.Job{
		Id: j.ID, Spec: &spec, State: trainerpb.JobState(j.State), Error: j.Error,
		CreateTime: timestamppb.New(j.CreatedAt), LastSequence: j.LastSequence,
	}
	if j.StartedAt != nil {
		out.StartTime = timestamppb.New(*j.StartedAt)
	}
	if j.EndedAt != nil {
		out.EndTime = timestamppb.New(*j.EndedAt)
	}
	if j.TestMetrics != "" {
		var m registrypb.Metrics
		if err := storedJSON.Unmarshal([]byte(j.TestMetrics), &m); err != nil {
			return nil, fmt.Errorf("decode metrics of job %s: %w", j.ID, err)
		}
		out.TestMetrics = &m
	}
	if j.ResultVersion != 0 {
		out.Result = &registrypb.VersionRef{Model: j.ResultModel, Version: j.ResultVersion}
	}
	eps, err := s.epochs(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	out.Epochs = eps
	return out, nil
}

// countByState counts the jobs in each state.
func (s store) countByState(ctx context.Context) (map[trainerpb.JobState]int64, error) {
	var rows []struct {
		State int32
		N     int64
	}
	if err := s.db.WithContext(ctx).Model(&jobRow{}).Select("state, count(*) AS n").Group("state").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	out := map[trainerpb.JobState]int64{}
	for _, r := range rows {
		out[trainerpb.JobState(r.State)] = r.N
	}
	return out, nil
}
