package client_test

import (
	"slices"
	"testing"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"

	"github.com/shoalml/shoal/client"
)

// A watch outlives its server: the server is shut down mid-job (its
// trainer ends the stream with Unavailable) and a new one started on the
// same storage, behind the same address; the job resumes there, and the
// loop goes on from the last event it saw to the job's end.
func TestWatchJobAcrossRestart(t *testing.T) {
	cfg := defaults(t)
	s := serve(t, cfg)
	p := newProxy(t, s.addr)
	c := dial(t, p.addr(), client.WithToken(s.admin))
	ctx := t.Context()

	if _, err := c.Dataset().CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "shapes"}); err != nil {
		t.Fatal(err)
	}
	dir, _ := shapesTree(t, map[string]int{"train": 12, "test": 3})
	if _, err := c.UploadDir(ctx, "shapes", dir); err != nil {
		t.Fatalf("UploadDir() = %v", err)
	}
	if _, err := c.Dataset().CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: "shapes"}); err != nil {
		t.Fatal(err)
	}
	started, err := c.Trainer().StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{
		Dataset: "shapes", SnapshotVersion: 1, Model: "shapes", Epochs: 4, BatchSize: 8, Seed: 1,
	}})
	if err != nil {
		t.Fatalf("StartTraining() = %v", err)
	}
	id := started.GetJob().GetId()

	var seqs []int64
	var last *trainerpb.WatchJobResponse
	restarted := false
	for ev, err := range c.WatchJob(ctx, id) {
		if err != nil {
			t.Fatalf("WatchJob(%s) after %d events = %v", id, len(seqs), err)
		}
		seqs, last = append(seqs, ev.GetSequence()), ev
		if ev.GetEpoch() != nil && !restarted {
			s.stop()
			p.retarget(serve(t, cfg).addr)
			restarted = true
		}
	}
	if !restarted || last.GetState().GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("WatchJob(%s) ended with %v, restarted %v; want SUCCEEDED after a restart", id, last, restarted)
	}
	if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
		t.Errorf("WatchJob yielded sequences %v; want each once, in order", seqs)
	}
	job, err := c.Trainer().GetJob(ctx, &trainerpb.GetJobRequest{JobId: id})
	if err != nil || len(job.GetJob().GetEpochs()) != 4 {
		t.Errorf("GetJob(%s) = %d epochs, %v; want 4", id, len(job.GetJob().GetEpochs()), err)
	}
}
