package dataset

import (
	"testing"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// A training job that names no snapshot asks for one with reuse_unchanged:
// it gets the newest snapshot while the dataset is as that snapshot froze
// it, and a new one once the membership changed. A plain CreateSnapshot
// still always takes one.
func TestSnapshotReuseUnchanged(t *testing.T) {
	e := newEnv(t, envOpts{})
	writeFile(t, e.root, "p/train/A/a.png", imagingtest.PNG(4, 4, 1))
	e.create(t, "pets")
	if r := e.importLocal(t, "pets", e.root+"/p"); r.err != nil {
		t.Fatal(r.err)
	}
	snap := func(reuse bool) (int64, bool) {
		t.Helper()
		resp, err := e.client.CreateSnapshot(t.Context(), &datasetpb.CreateSnapshotRequest{Dataset: "pets", ReuseUnchanged: reuse})
		if err != nil {
			t.Fatalf("CreateSnapshot(reuse %v) = %v", reuse, err)
		}
		if resp.GetSnapshot().GetImageCount() == 0 || len(resp.GetSnapshot().GetCounts()) == 0 {
			t.Errorf("CreateSnapshot(reuse %v) = %v; want its counts", reuse, resp.GetSnapshot())
		}
		return resp.GetSnapshot().GetVersion(), resp.GetReused()
	}
	for i, want := range []struct {
		reuse   bool
		version int64
		reused  bool
	}{{true, 1, false}, {true, 1, true}, {false, 2, false}, {true, 2, true}} {
		if v, reused := snap(want.reuse); v != want.version || reused != want.reused {
			t.Errorf("step %d: CreateSnapshot(reuse %v) = v%d reused %v; want v%d reused %v", i, want.reuse, v, reused, want.version, want.reused)
		}
	}
	writeFile(t, e.root, "p/train/A/b.png", imagingtest.PNG(4, 4, 2))
	if r := e.importLocal(t, "pets", e.root+"/p"); r.err != nil {
		t.Fatal(r.err)
	}
	if v, reused := snap(true); v != 3 || reused {
		t.Errorf("CreateSnapshot(reuse) after an import = v%d reused %v; want a new v3", v, reused)
	}
}
