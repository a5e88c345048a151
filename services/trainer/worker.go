package trainer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/tracing"
)

const (
	// heartbeatEvery is how often a worker renews its job's lease and looks
	// for a cancellation requested through another process.
	heartbeatEvery = 2 * time.Second
	// progressEvery rate-limits step progress events.
	progressEvery = 250 * time.Millisecond
)

// errCancelRequested is the cause of a job context cancelled by CancelJob.
var errCancelRequested = errors.New("cancelled by CancelJob")

// Run runs the worker pool until ctx ends, then hands running jobs back
// (they resume from their checkpoints at the next start) and ends the open
// WatchJob streams.
func (s *Service) Run(ctx context.Context) error {
	defer s.stoppingOnce.Do(func() { close(s.stopping) })
	var wg sync.WaitGroup
	wg.Go(func() {
		err := s.deps.Panics.Call("trainer checkpoint sweep", func() error { return s.sweepCheckpoints(ctx) })
		if err != nil && ctx.Err() == nil {
			s.deps.Log.Warn("removing the stored checkpoints of ended jobs failed; the next start tries again", "err", err)
		}
	})
	for range s.cfg.Workers {
		wg.Go(func() {
			// A panic outside a job (claiming, recording) restarts the
			// worker after a poll interval instead of ending the process.
			for ctx.Err() == nil {
				if s.deps.Panics.Call("trainer worker", func() error { s.work(ctx); return nil }) == nil {
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(s.cfg.PollInterval):
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// work is one worker: claim a job, run it, repeat.
func (s *Service) work(ctx context.Context) {
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	for {
		wake := s.changes.Wait()
		row, err := s.st.claim(ctx, s.owner, s.cfg.JobLease)
		if err != nil && ctx.Err() == nil {
			s.deps.Log.Warn("looking for a training job failed; retrying", "err", err)
		}
		if row != nil {
			s.runJob(ctx, row)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C: // jobs queued through another process
		}
	}
}

// cancelLocal stops a job if this process runs it.
func (s *Service) cancelLocal(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cancels[id]; ok {
		c(errCancelRequested)
	}
}

// runJob runs one claimed job to its final state, or hands it back when
// the process stops.
func (s *Service) runJob(ctx context.Context, row *jobRow) {
	log := s.deps.Log.With("job", row.ID)
	// Which process runs a job, for operators of several trainers.
	log.Info("running training job", "dataset", row.Dataset)
	// The job, and a job resumed after a restart, is part of the trace
	// of the StartTraining call that queued it.
	ctx, span := s.tracer().Start(tracing.Decode(ctx, row.TraceContext), "trainer.job",
		trace.WithAttributes(attribute.String("shoal.job.id", row.ID), attribute.String("shoal.dataset", row.Dataset)))
	defer span.End()
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.mu.Lock()
	s.cancels[row.ID] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.cancels, row.ID)
		s.mu.Unlock()
	}()

	var hb sync.WaitGroup
	hbStop := make(chan struct{})
	hb.Go(func() {
		defer s.deps.Panics.Recover("trainer heartbeat", func(err error) { cancel(err) })
		s.heartbeat(jobCtx, row.ID, cancel, hbStop)
	})

	var spec trainerpb.JobSpec
	var out *outcome
	err := s.deps.Panics.Call("trainer job", func() (err error) {
		if err := storedJSON.Unmarshal([]byte(row.Spec), &spec); err != nil {
			return fmt.Errorf("decode spec: %w", err)
		}
		out, err = s.execute(jobCtx, row.ID, &spec)
		return err
	})
	close(hbStop)
	hb.Wait()
	// What ONNX Runtime freed (the training backend's sessions, the
	// export's check) goes back to the system, not kept for the next job.
	onnxrt.ReleaseFreed()

	// The final writes must happen even though jobCtx is done; events
	// kept while the database was away come before the end.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer wcancel()
	s.flushEvents(wctx, row.ID)
	running := []trainerpb.JobState{trainerpb.JobState_JOB_STATE_RUNNING}
	cause := context.Cause(jobCtx)
	if pe := (*panics.Error)(nil); errors.As(cause, &pe) {
		err = pe // the heartbeat panicked and stopped the job
	}
	jobErr := err
	ended := true // unless handed back or taken over
	var final trainerpb.JobState
	recorded := false // the transition to final was this process's
	switch {
	case err == nil:
		metrics, _ := protojson.Marshal(out.metrics)
		final = trainerpb.JobState_JOB_STATE_SUCCEEDED
		recorded, err = s.st.transition(wctx, row.ID, running, final, "", map[string]any{
			"test_metrics": string(metrics), "result_model": out.version.GetModel(), "result_version": out.version.GetVersion(),
		})
		log.Info("training job succeeded", "model", out.version.GetModel(), "version", out.version.GetVersion())
	case errors.Is(cause, errCancelRequested):
		final = trainerpb.JobState_JOB_STATE_CANCELLED
		recorded, err = s.st.transition(wctx, row.ID, running, final, "cancelled by CancelJob", nil)
	case errors.Is(cause, errLostJob):
		log.Warn("another worker took the job over; stopping")
		err, ended = nil, false
	case ctx.Err() != nil:
		log.Info("shutting down; the job resumes from its last checkpoint at the next start")
		err, ended = s.st.release(wctx, row.ID, s.owner), false
	default:
		log.Warn("training job failed", "err", err)
		final = trainerpb.JobState_JOB_STATE_FAILED
		recorded, err = s.st.transition(wctx, row.ID, running, final, reason(err), nil)
	}
	s.met.progress.DeleteLabelValues(row.ID)
	if err == nil && recorded {
		s.met.finished.WithLabelValues(stateLabel(final)).Inc()
	}
	switch {
	case !ended:
		// Its end is another run's (resumed or taken over).
		span.SetAttributes(attribute.Bool("shoal.job.handed_back", true))
	case jobErr != nil:
		span.SetStatus(codes.Error, reason(jobErr))
	}
	if err != nil {
		// The job stays running with its lease lapsing, so a worker
		// resumes it (and records its end) once the database answers.
		log.Error("recording the job's end failed", "err", err)
	} else {
		s.forgetEvents(row.ID)
		if ended {
			// A job that ended is never resumed: its checkpoints are
			// only storage space now.
			s.dropCheckpoints(wctx, row.ID)
		}
	}
	s.changes.Notify()
}

// tracer is the tracer of the jobs' spans.
func (s *Service) tracer() trace.Tracer {
	tp := s.deps.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("github.com/shoalml/shoal/services/trainer")
}

// reason is the job error shown to users: another service's status
// message, what failed in storage, or the error's text.
func reason(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	if f, ok := storage.Classify(err); ok {
		if !blob.IsDiskFull(err) && !db.IsDiskFull(err) && storage.IsDiskFull(err) {
			// The files this service writes itself are the checkpoints.
			return "the trainer's work directory (trainer.work-dir) is full: free space on the server, then start the job again"
		}
		return f.Message()
	}
	return err.Error()
}

// heartbeat renews the job's lease until stop closes, cancelling the job
// when CancelJob asked (through any process) or another worker took it.
func (s *Service) heartbeat(ctx context.Context, id string, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cancelled, err := s.st.heartbeat(ctx, id, s.owner)
		switch {
		case errors.Is(err, errLostJob):
			cancel(errLostJob)
		case err != nil:
			if ctx.Err() == nil {
				s.deps.Log.Warn("renewing a job's lease failed", "job", id, "err", err)
			}
		case cancelled:
			cancel(errCancelRequested)
		}
	}
}

func (s *Service) logf(ctx context.Context, id, format string, args ...any) {
	s.emit(ctx, id, logEvent("info", fmt.Sprintf(format, args...)))
}

// progressReporter turns ml step callbacks into rate-limited progress
// events with an ETA.
type progressReporter struct {
	s       *Service
	ctx     context.Context
	id      string
	epochs  int
	last    time.Time
	first   int // global step of the first callback (a resumed run starts late)
	lossSum float64
	lossN   int
	epoch   int
}

func (p *progressReporter) step(sp ml.StepProgress) {
	if sp.Epoch != p.epoch {
		p.epoch, p.lossSum, p.lossN = sp.Epoch, 0, 0
	}
	p.lossSum += sp.Loss
	p.lossN++
	global := (sp.Epoch-1)*sp.StepsPerEpoch + sp.Step
	if p.first == 0 {
		p.first = global
	}
	p.s.met.images.Add(float64(sp.Images))
	if total := p.epochs * sp.StepsPerEpoch; total > 0 {
		p.s.met.progress.WithLabelValues(p.id).Set(float64(global) / float64(total))
	}
	last := sp.Epoch == p.epochs && sp.Step == sp.StepsPerEpoch
	if !last && time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	prog := &trainerpb.StepProgress{
		Epoch: int32(sp.Epoch), Epochs: int32(p.epochs), Step: int32(sp.Step), Steps: int32(sp.StepsPerEpoch),
		TrainLoss: p.lossSum / float64(p.lossN), ImagesPerSecond: sp.ImagesPerSecond,
	}
	if done := global - p.first + 1; done > 0 && sp.Elapsed > 0 {
		remaining := p.epochs*sp.StepsPerEpoch - global
		prog.Eta = durationpb.New(time.Duration(float64(sp.Elapsed) / float64(done) * float64(remaining)))
	}
	p.s.emit(p.ctx, p.id, &trainerpb.WatchJobResponse{Event: &trainerpb.WatchJobResponse_Progress{Progress: prog}})
}
