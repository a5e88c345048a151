package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// A job's checkpoints outlive the process that trains it: training writes
// each epoch's checkpoint to the job's folder in the work directory (the
// file GoMLX resumes from), and the service copies it to the blob store,
// which every trainer process of a deployment shares. A worker that claims
// the job after its lease lapsed, on this machine or another, puts the
// stored copy back into its own work directory before it trains.

// checkpointUploadTimeout bounds storing one checkpoint. A checkpoint that
// cannot be stored in time is skipped (training goes on; a takeover then
// resumes from an earlier epoch), so a slow blob store delays an epoch by
// at most this much.
const checkpointUploadTimeout = time.Minute

// checkpointKey is where the blob store keeps a job's latest checkpoint.
func checkpointKey(id string) string { return "trainer/checkpoints/" + id + ".ckpt" }

// checkpointDir is the job's folder in the work directory, where training
// writes its per-epoch checkpoints.
func (s *Service) checkpointDir(id string) string {
	return filepath.Join(s.cfg.WorkDir, "jobs", id)
}

// storeCheckpoint copies the checkpoint training just wrote to the blob
// store, unless the job is no longer this worker's (another took it over
// and stores its own). Failures are reported on the job and not fatal:
// the checkpoint is only for resuming.
func (s *Service) storeCheckpoint(ctx context.Context, id string, epoch int, file string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkpointUploadTimeout)
	defer cancel()
	if _, err := s.st.heartbeat(ctx, id, s.owner); errors.Is(err, errLostJob) {
		return
	}
	if err := s.putCheckpoint(ctx, id, file); err != nil {
		s.deps.Log.Warn("storing a job's checkpoint failed", "job", id, "epoch", epoch, "err", err)
		s.emit(ctx, id, logEvent("warn", fmt.Sprintf(
			"the checkpoint of epoch %d could not be stored (%s): if this trainer stops, the job resumes from an earlier epoch", epoch, reason(err))))
	}
}

func (s *Service) putCheckpoint(ctx context.Context, id, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("reading checkpoint: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading checkpoint: %w", err)
	}
	return s.deps.Blobs.Put(ctx, checkpointKey(id), f, fi.Size())
}

// restoreCheckpoint puts the job's stored checkpoint into its folder in
// the work directory, replacing what an earlier run on this machine left
// there (the stored one is the latest, whoever trained it). It returns the
// size of the checkpoint restored, 0 when none is stored: a job that never
// finished an epoch, or whose checkpoints could not be stored, starts from
// the local one if this machine has it.
func (s *Service) restoreCheckpoint(ctx context.Context, id string) (int64, error) {
	rc, err := s.deps.Blobs.Get(ctx, checkpointKey(id))
	if errors.Is(err, blob.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the job's checkpoint: %w", err)
	}
	defer rc.Close()
	dir := s.checkpointDir(id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("checkpoint dir: %w", err)
	}
	// Written beside the file and renamed over it, so that an interrupted
	// copy never leaves half a checkpoint to resume from.
	tmp, err := os.CreateTemp(dir, "restore-*.tmp")
	if err != nil {
		return 0, fmt.Errorf("restoring checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	n, err := io.Copy(tmp, rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("restoring checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), ml.CheckpointFile(dir)); err != nil {
		return 0, fmt.Errorf("restoring checkpoint: %w", err)
	}
	return n, nil
}

// dropCheckpoints removes an ended job's checkpoints, stored and local:
// a job that ended is never resumed.
func (s *Service) dropCheckpoints(ctx context.Context, id string) {
	if err := os.RemoveAll(s.checkpointDir(id)); err != nil {
		s.deps.Log.Warn("removing the checkpoints of an ended job failed", "job", id, "err", err)
	}
	if err := s.deps.Blobs.Delete(ctx, checkpointKey(id)); err != nil {
		s.deps.Log.Warn("deleting the stored checkpoint of an ended job failed", "job", id, "err", err)
	}
}

// sweepCheckpoints removes the stored checkpoints of jobs that ended, or
// that no longer exist: what a trainer killed between recording a job's
// end and removing its checkpoint leaves. A running or queued job's
// checkpoint stays.
func (s *Service) sweepCheckpoints(ctx context.Context) error {
	const prefix = "trainer/checkpoints/"
	var stale []string
	err := s.deps.Blobs.List(ctx, prefix, func(info blob.Info) error {
		id, ok := strings.CutSuffix(strings.TrimPrefix(info.Key, prefix), ".ckpt")
		if !ok {
			return nil
		}
		j, err := s.st.get(ctx, id)
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err
		case !finalState(trainerpb.JobState(j.State)):
			return nil
		}
		stale = append(stale, info.Key)
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range stale {
		if err := s.deps.Blobs.Delete(ctx, key); err != nil {
			return err
		}
	}
	if len(stale) > 0 {
		s.deps.Log.Info("removed the stored checkpoints of ended jobs", "count", len(stale))
	}
	return nil
}
