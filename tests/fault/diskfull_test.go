package fault

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

// smallDisk is a tmpfs mounted for one test, with a filler file that
// takes all but a little of its space.
type smallDisk struct {
	t      *testing.T
	dir    string
	filler string
}

// mountSmallDisk mounts a tmpfs of size bytes at dir (created if
// missing); it skips the test where mounting is not permitted.
func mountSmallDisk(t *testing.T, dir string, size int64) *smallDisk {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Skipf("cannot mount a tmpfs at %s to fill it (%v): the disk-full tests need root or CAP_SYS_ADMIN", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return &smallDisk{t: t, dir: dir, filler: filepath.Join(dir, "filler")}
}

// Fill writes the filler until the disk has at most leave bytes free.
func (d *smallDisk) Fill(leave int64) {
	d.t.Helper()
	f, err := os.OpenFile(d.filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for d.Free() > leave {
		n := min(int64(len(chunk)), d.Free()-leave)
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			d.t.Fatal(err)
		}
	}
}

// Free is the space left, in bytes.
func (d *smallDisk) Free() int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		d.t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Empty deletes the filler: space returns.
func (d *smallDisk) Empty() {
	d.t.Helper()
	if err := os.Remove(d.filler); err != nil {
		d.t.Fatal(err)
	}
}

// checkFull requires err to be RESOURCE_EXHAUSTED (or UNAVAILABLE) with a
// message that says the named disk is full.
func checkFull(t *testing.T, what string, err error, disk string) {
	t.Helper()
	code, msg := codeAndMessage(err)
	t.Logf("%s with the disk full: %s %q", what, code, msg)
	if code != codes.ResourceExhausted && code != codes.Unavailable || !strings.Contains(msg, disk+" is full") {
		t.Errorf("%s with the disk full = %s %q; want RESOURCE_EXHAUSTED saying %q", what, code, msg, disk+" is full")
	}
}

// TestDiskFull fills, in turn, the disk of the local blob store, of the
// SQLite database and of the trainer's work directory (each a small tmpfs)
// while Shoal writes to it. Writes fail with RESOURCE_EXHAUSTED saying
// which disk is full, nothing stored is corrupt (SQLite's integrity check
// passes and every blob's content matches its SHA-256), and once the
// filler is deleted the same calls succeed, without a restart.
func TestDiskFull(t *testing.T) {
	needFault(t)
	t.Run("blob store", func(t *testing.T) {
		s := newShoal(t, "shoal", "--dataset.import-roots="+filepath.Dir(demoTree(t)), "--dataset.import-workers=1")
		disk := mountSmallDisk(t, filepath.Join(s.dir, "data", "blobs"), 16<<20)
		s.Start()
		ctx := stepCtx(t, 5*time.Minute)
		createDataset(ctx, t, s.Dataset, "fm")
		disk.Fill(1 << 20) // about a fifth of the tree (tmpfs takes a 4 KiB page per image)
		began := time.Now()
		_, err := importLocal(ctx, s.Dataset, "fm", demoTree(t), nil)
		t.Logf("the import failed after %s", time.Since(began).Round(time.Millisecond))
		checkFull(t, "ImportImages", err, "the blob store's disk")
		data, spec := classifier(224, 1)
		spec.Model = "big"
		_, err = uploadVersion(ctx, s.Registry, spec, data, 256<<10, nil)
		checkFull(t, "CreateVersion of a 3 MB model", err, "the blob store's disk")

		disk.Empty()
		counts, err := importLocal(ctx, s.Dataset, "fm", demoTree(t), nil)
		if err != nil || counts.GetAdded()+counts.GetDuplicates() != demoImages {
			t.Errorf("ImportImages after space returned = %v, %v; want all %d images there", counts, err, demoImages)
		}
		if _, err := uploadVersion(ctx, s.Registry, spec, data, 256<<10, nil); err != nil {
			t.Errorf("CreateVersion after space returned = %v", err)
		}
		s.Stop()
		inv := takeInventory(t, localBackends(s.dir))
		inv.requireClean(t, "after the blob store's disk was full")
		if inv.Staged != 0 {
			t.Errorf("%d staging files left in the blob store; want none", inv.Staged)
		}
	})

	t.Run("database", func(t *testing.T) {
		s := newShoal(t, "shoal", "--dataset.import-roots="+filepath.Dir(demoTree(t)), "--dataset.import-workers=1")
		b := localBackends(s.dir)
		b.DB.DSN = filepath.Join(s.dir, "db", "shoal.db")
		disk := mountSmallDisk(t, filepath.Dir(b.DB.DSN), 16<<20)
		s.args = append(s.args, b.flags()...)
		s.Start()
		ctx := stepCtx(t, 5*time.Minute)
		importDemo(ctx, t, s, "fm")
		createDataset(ctx, t, s.Dataset, "fm2")
		disk.Fill(0)
		_, err := importLocal(ctx, s.Dataset, "fm2", demoTree(t), nil)
		checkFull(t, "ImportImages", err, "the database's disk")
		_, err = s.Dataset.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "fm3"})
		checkFull(t, "CreateDataset", err, "the database's disk")
		_, err = s.Trainer.StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: trainSpec("fm", "fashion", 1)})
		checkFull(t, "StartTraining", err, "the database's disk")
		// Reads need no space.
		if _, err := s.Dataset.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: "fm", PageSize: 10}); err != nil {
			t.Errorf("ListImages with the database's disk full = %v; want it answered", err)
		}

		disk.Empty()
		counts, err := importLocal(ctx, s.Dataset, "fm2", demoTree(t), nil)
		if err != nil || counts.GetAdded()+counts.GetDuplicates() != demoImages {
			t.Errorf("ImportImages after space returned = %v, %v; want all %d images there", counts, err, demoImages)
		}
		createDataset(ctx, t, s.Dataset, "fm3")
		if j := waitJob(ctx, t, s.Trainer, startJob(ctx, t, s.Trainer, trainSpec("fm", "fashion", 1))); j.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
			t.Errorf("a job after space returned: %s %q", j.GetState(), j.GetError())
		}
		s.Stop()
		takeInventory(t, b).requireClean(t, "after the database's disk was full")
	})

	t.Run("trainer work directory", func(t *testing.T) {
		s := newShoal(t, "shoal", "--dataset.import-roots="+filepath.Dir(demoTree(t)))
		disk := mountSmallDisk(t, filepath.Join(s.dir, "data", "trainer"), 16<<20)
		s.Start()
		ctx := stepCtx(t, 5*time.Minute)
		importDemo(ctx, t, s, "fm")
		disk.Fill(256 << 10) // less than one checkpoint
		j := waitJob(ctx, t, s.Trainer, startJob(ctx, t, s.Trainer, trainSpec("fm", "fashion", 2)))
		t.Logf("the job with the work directory full: %s %q after %d epochs", j.GetState(), j.GetError(), len(j.GetEpochs()))
		if j.GetState() != trainerpb.JobState_JOB_STATE_FAILED || !strings.Contains(j.GetError(), "work directory") || !strings.Contains(j.GetError(), "is full") {
			t.Errorf("the job with the work directory full ended %s %q; want FAILED saying the work directory is full", j.GetState(), j.GetError())
		}
		if left := filesIn(t, disk.dir); len(left) != 1 {
			t.Errorf("the work directory holds %v; want only the filler (no half-written checkpoint)", left)
		}

		disk.Empty()
		if j := waitJob(ctx, t, s.Trainer, startJob(ctx, t, s.Trainer, trainSpec("fm", "fashion", 2))); j.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
			t.Errorf("the job after space returned: %s %q; want SUCCEEDED", j.GetState(), j.GetError())
		}
		if left := filesIn(t, disk.dir); len(left) != 0 {
			t.Errorf("the work directory holds %v after the job ended; want nothing (checkpoints of ended jobs are removed)", left)
		}
		s.Stop()
		takeInventory(t, localBackends(s.dir)).requireClean(t, "after the work directory was full")
	})
}

// filesIn lists the regular files under dir.
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, strings.TrimPrefix(p, dir+"/"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
