package trainer_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/services/trainer"
)

// TestJobResumesOnAnotherTrainer: two trainers of a split deployment share
// the database and the blob store, each with a work directory of its own.
// The first dies mid-job (its worker stops and its lease is left to lapse,
// as a killed process leaves it); the second claims the job once the
// lease has lapsed and resumes it from the checkpoint the first stored,
// not from the first epoch. Once the job ends, its stored checkpoint is
// gone.
func TestJobResumesOnAnotherTrainer(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		blobs, err := blob.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		const lease = 6 * time.Second
		short := func(c *trainer.Config) { c.JobLease = lease }
		a := newEnv(t, cfg, envOptions{blobs: blobs, cfg: short})
		const epochs = 4
		j := a.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: epochs, BatchSize: 8, Seed: 3})
		next := follow(t, a, j.GetId())
		until(t, next, func(ev *trainerpb.WatchJobResponse) bool { return ev.GetEpoch().GetEpoch() == 1 })
		a.stop()
		got, err := a.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetJob().GetState() != trainerpb.JobState_JOB_STATE_RUNNING {
			t.Skipf("the job was %s before the first trainer stopped", got.GetJob().GetState())
		}
		// A stopped worker hands its job back at once; a killed one
		// leaves it owned, with a fresh heartbeat, until the lease lapses.
		if err := a.gdb.Table("trainer_jobs").Where("id = ?", j.GetId()).Updates(map[string]any{
			"owner": "killed-process", "heartbeat_at": time.Now().UTC(),
		}).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := blobs.Stat(t.Context(), "trainer/checkpoints/"+j.GetId()+".ckpt"); err != nil {
			t.Fatalf("the stored checkpoint after epoch 1: Stat() = %v", err)
		}

		began := time.Now()
		b := newEnv(t, cfg, envOptions{gdb: a.gdb, dataset: a.dataset, reg: a.registry, blobs: blobs, cfg: short})
		if b.workDir == a.workDir {
			t.Fatal("the trainers share a work directory; want one each")
		}
		evs, err := b.watch(t, j.GetId(), 0)
		if err != nil {
			t.Fatalf("WatchJob() on the second trainer = %v", err)
		}
		if last := evs[len(evs)-1]; last.GetState().GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
			t.Fatalf("last event = %v; want SUCCEEDED", last)
		}
		if waited := time.Since(began); waited < lease/2 {
			t.Errorf("the job ended %s after the second trainer started; want it to wait for the lease (%s)", waited, lease)
		}
		restored, afterResume := false, []int32{}
		seen := map[int32]int{}
		for _, ev := range evs {
			if strings.HasPrefix(ev.GetLog().GetMessage(), "restored the job's last checkpoint") {
				restored = true
			}
			if n := ev.GetEpoch().GetEpoch(); n != 0 {
				seen[n]++
				if restored {
					afterResume = append(afterResume, n)
				}
			}
		}
		if !restored || len(afterResume) == 0 || afterResume[0] < 2 {
			t.Errorf("restored = %v, epochs after it %v; want a restore, then epoch 2 or later first", restored, afterResume)
		}
		for n := int32(1); n <= epochs; n++ {
			if seen[n] == 0 {
				t.Errorf("epoch %d never reported (%v)", n, seen)
			}
		}
		// The worker removes them right after it records the end.
		key, local := "trainer/checkpoints/"+j.GetId()+".ckpt", filepath.Join(b.workDir, "jobs", j.GetId())
		var blobErr, localErr error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			_, blobErr = blobs.Stat(t.Context(), key)
			_, localErr = os.Stat(local)
			if errors.Is(blobErr, blob.ErrNotFound) && errors.Is(localErr, os.ErrNotExist) {
				break
			}
		}
		if !errors.Is(blobErr, blob.ErrNotFound) {
			t.Errorf("the stored checkpoint after the job ended: Stat() = %v; want ErrNotFound", blobErr)
		}
		if !errors.Is(localErr, os.ErrNotExist) {
			t.Errorf("the second trainer's local checkpoints after the job ended: Stat() = %v; want them gone", localErr)
		}
	})
}

// TestSweepRemovesCheckpointsOfEndedJobs: a trainer killed between
// recording a job's end and removing its stored checkpoint leaves it; the
// next trainer to start removes it and any checkpoint of no job, and keeps
// a running job's.
func TestSweepRemovesCheckpointsOfEndedJobs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		blobs, err := blob.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		a := newEnv(t, cfg, envOptions{noRun: true, blobs: blobs})
		running := a.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1, BatchSize: 8}).GetId()
		ended := a.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1, BatchSize: 8}).GetId()
		for id, state := range map[string]trainerpb.JobState{running: trainerpb.JobState_JOB_STATE_RUNNING, ended: trainerpb.JobState_JOB_STATE_CANCELLED} {
			if err := a.gdb.Table("trainer_jobs").Where("id = ?", id).Updates(map[string]any{
				"state": int32(state), "owner": "another-process", "heartbeat_at": time.Now().UTC(),
			}).Error; err != nil {
				t.Fatal(err)
			}
		}
		key := func(id string) string { return "trainer/checkpoints/" + id + ".ckpt" }
		for _, id := range []string{running, ended, "no-such-job"} {
			if err := blobs.Put(t.Context(), key(id), strings.NewReader("state"), 5); err != nil {
				t.Fatal(err)
			}
		}

		newEnv(t, cfg, envOptions{gdb: a.gdb, dataset: a.dataset, reg: a.registry, blobs: blobs})
		gone := func(id string) bool {
			_, err := blobs.Stat(t.Context(), key(id))
			return errors.Is(err, blob.ErrNotFound)
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !(gone(ended) && gone("no-such-job")); {
			time.Sleep(20 * time.Millisecond)
		}
		if !gone(ended) || !gone("no-such-job") {
			t.Errorf("checkpoints of an ended job and of no job: gone = %v, %v; want both removed at start", gone(ended), gone("no-such-job"))
		}
		if gone(running) {
			t.Error("the running job's checkpoint was removed; want it kept")
		}
	})
}
