package trainer_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/services/trainer"
)

// follow opens a watch and returns a function yielding the next event.
func follow(t *testing.T, e *env, id string) func() (*trainerpb.WatchJobResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	stream, err := e.client.WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: id})
	if err != nil {
		t.Fatalf("WatchJob() = %v", err)
	}
	return stream.Recv
}

// until reads events until pred holds, failing if the stream ends first.
func until(t *testing.T, next func() (*trainerpb.WatchJobResponse, error), pred func(*trainerpb.WatchJobResponse) bool) {
	t.Helper()
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("WatchJob: Recv() = %v before the awaited event", err)
		}
		if pred(ev) {
			return
		}
	}
}

// rest reads the remaining events until the stream ends.
func rest(next func() (*trainerpb.WatchJobResponse, error)) ([]*trainerpb.WatchJobResponse, error) {
	var out []*trainerpb.WatchJobResponse
	for {
		ev, err := next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestCancelRunningJobStopsAtNextStep(t *testing.T) {
	needsTraining(t)
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{})
		j := e.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 500, BatchSize: 8})
		next := follow(t, e, j.GetId())
		until(t, next, func(ev *trainerpb.WatchJobResponse) bool { return ev.GetProgress() != nil })
		resp, err := e.client.CancelJob(t.Context(), &trainerpb.CancelJobRequest{JobId: j.GetId()})
		if err != nil {
			t.Fatalf("CancelJob(running) = %v", err)
		}
		if resp.GetJob().GetState() != trainerpb.JobState_JOB_STATE_RUNNING {
			t.Errorf("CancelJob(running).State = %s; want RUNNING until the worker stops", resp.GetJob().GetState())
		}
		evs, err := rest(next)
		if err != nil || len(evs) == 0 {
			t.Fatalf("WatchJob after cancel = %v, %v", evs, err)
		}
		if last := evs[len(evs)-1]; last.GetState().GetState() != trainerpb.JobState_JOB_STATE_CANCELLED {
			t.Errorf("last event = %v; want CANCELLED", last)
		}
		got, err := e.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
		if err != nil || got.GetJob().GetState() != trainerpb.JobState_JOB_STATE_CANCELLED || len(got.GetJob().GetEpochs()) >= 500 {
			t.Errorf("GetJob() = %v, %v; want CANCELLED early", got, err)
		}
	})
}

func TestUnavailableServicesFailTheJob(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	for _, tc := range []struct {
		name    string
		break_  func(e *env)
		want    string
		retried bool // the job trained, and retried storing its result
	}{
		{"dataset", func(e *env) { e.dataset.readErr = status.Error(codes.Unavailable, "dataset is down") }, "dataset is down", false},
		{"registry", func(e *env) { e.registry.createErr = status.Error(codes.Unavailable, "registry is down") }, "registry is down", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A finished job retries registering for the storage wait,
			// then fails.
			e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{cfg: func(c *trainer.Config) { c.StorageWait = 2 * time.Second }})
			tc.break_(e)
			j := e.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1, BatchSize: 8})
			evs, err := e.watch(t, j.GetId(), 0)
			if err != nil || len(evs) == 0 {
				t.Fatalf("WatchJob() = %v, %v", evs, err)
			}
			last := evs[len(evs)-1].GetState()
			if last.GetState() != trainerpb.JobState_JOB_STATE_FAILED || !strings.Contains(last.GetReason(), tc.want) {
				t.Errorf("last state = %v; want FAILED mentioning %q", last, tc.want)
			}
			got, _ := e.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
			if !strings.Contains(got.GetJob().GetError(), tc.want) {
				t.Errorf("GetJob().Error = %q; want it to mention %q", got.GetJob().GetError(), tc.want)
			}
			retried := false
			for _, ev := range evs {
				retried = retried || strings.Contains(ev.GetLog().GetMessage(), "retrying")
			}
			if retried != tc.retried {
				t.Errorf("the job's log says it retried: %v; want %v", retried, tc.retried)
			}
		})
	}
}

// TestJobResumesAfterRestart stops the worker pool mid-training, which also
// ends open watches, and starts a new trainer on the same database and work
// directory: the job finishes from its last epoch checkpoint.
func TestJobResumesAfterRestart(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		a := newEnv(t, cfg, envOptions{})
		const epochs = 4
		j := a.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: epochs, BatchSize: 8, Seed: 2})
		next := follow(t, a, j.GetId())
		until(t, next, func(ev *trainerpb.WatchJobResponse) bool { return ev.GetEpoch().GetEpoch() == 1 })
		a.stop()
		if _, err := rest(next); status.Code(err) != codes.Unavailable {
			t.Errorf("WatchJob at shutdown ended with %v; want UNAVAILABLE", err)
		}
		got, err := a.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if st := got.GetJob().GetState(); st != trainerpb.JobState_JOB_STATE_RUNNING && st != trainerpb.JobState_JOB_STATE_SUCCEEDED {
			t.Fatalf("state after shutdown = %s; want RUNNING (handed back) or SUCCEEDED", st)
		}
		if got.GetJob().GetState() == trainerpb.JobState_JOB_STATE_SUCCEEDED {
			t.Skip("the job finished before the shutdown reached it")
		}

		b := newEnv(t, cfg, envOptions{gdb: a.gdb, workDir: a.workDir, dataset: a.dataset, reg: a.registry})
		evs, err := b.watch(t, j.GetId(), 0)
		if err != nil {
			t.Fatalf("WatchJob() on the new trainer = %v", err)
		}
		if last := evs[len(evs)-1]; last.GetState().GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
			t.Fatalf("last event = %v; want SUCCEEDED", last)
		}
		seen := map[int32]int{}
		resumed := false
		var firstAfterResume int32
		for _, ev := range evs {
			if strings.HasPrefix(ev.GetLog().GetMessage(), "resuming") {
				resumed = true
			}
			if n := ev.GetEpoch().GetEpoch(); n != 0 {
				seen[n]++
				if resumed && firstAfterResume == 0 {
					firstAfterResume = n
				}
			}
		}
		if !resumed || firstAfterResume < 2 {
			t.Errorf("resumed = %v, first epoch after resuming = %d; want a resume from epoch 2 or later", resumed, firstAfterResume)
		}
		for n := int32(1); n <= epochs; n++ {
			if seen[n] == 0 {
				t.Errorf("epoch %d never reported (%v)", n, seen)
			}
		}
	})
}

// TestCrashedJobIsTakenOver: a job left RUNNING by a process that died (its
// lease long expired) is resumed by another trainer.
func TestCrashedJobIsTakenOver(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		a := newEnv(t, cfg, envOptions{noRun: true})
		j := a.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1, BatchSize: 8})
		if err := a.gdb.Table("trainer_jobs").Where("id = ?", j.GetId()).Updates(map[string]any{
			"state": int32(trainerpb.JobState_JOB_STATE_RUNNING), "owner": "dead-process", "heartbeat_at": time.Now().Add(-time.Hour),
		}).Error; err != nil {
			t.Fatal(err)
		}
		b := newEnv(t, cfg, envOptions{gdb: a.gdb, dataset: a.dataset, reg: a.registry})
		evs, err := b.watch(t, j.GetId(), 0)
		if err != nil || evs[len(evs)-1].GetState().GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
			t.Fatalf("WatchJob() = %v, %v; want it to end SUCCEEDED", evs, err)
		}
	})
}

// TestCancelThroughAnotherProcess: CancelJob answered by a trainer that is
// not running the job reaches the worker through the database.
func TestCancelThroughAnotherProcess(t *testing.T) {
	needsTraining(t)
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		a := newEnv(t, cfg, envOptions{})
		b := newEnv(t, cfg, envOptions{noRun: true, gdb: a.gdb, dataset: a.dataset, reg: a.registry})
		j := a.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1000, BatchSize: 8})
		next := follow(t, a, j.GetId())
		until(t, next, func(ev *trainerpb.WatchJobResponse) bool { return ev.GetProgress() != nil })
		if _, err := b.client.CancelJob(t.Context(), &trainerpb.CancelJobRequest{JobId: j.GetId()}); err != nil {
			t.Fatalf("CancelJob() on the other trainer = %v", err)
		}
		evs, err := rest(next)
		if err != nil || evs[len(evs)-1].GetState().GetState() != trainerpb.JobState_JOB_STATE_CANCELLED {
			t.Fatalf("WatchJob() after cancel = %v, %v; want CANCELLED", evs, err)
		}
	})
}
