package dataset

import (
	"os"
	"path/filepath"
	"testing"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/demodata"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// TestDemoTree is the done-when check: the 1,306-image demo tree imports as
// 1,306 rows, a second import adds none, and the stats and a snapshot's
// counts match the folders exactly; on every SQL driver, with local blobs
// and with the real S3 server.
func TestDemoTree(t *testing.T) {
	if _, err := os.Stat(filepath.Join(demodata.DefaultSource, "t10k-labels-idx1-ubyte.gz")); err != nil {
		msg := "Fashion-MNIST is not installed: run scripts/setup-demo-data.sh"
		if os.Getenv("SHOAL_TEST_DEMO_REQUIRED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	tree := t.TempDir()
	if _, err := demodata.Generate(t.Context(), demodata.Options{Out: tree}); err != nil {
		t.Fatal(err)
	}
	folders := map[string]int64{} // "SPLIT_TRAIN/Ankle boot" -> files
	for split, pb := range map[string]datasetpb.Split{"train": datasetpb.Split_SPLIT_TRAIN, "test": datasetpb.Split_SPLIT_TEST} {
		labels, err := os.ReadDir(filepath.Join(tree, split))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range labels {
			files, err := os.ReadDir(filepath.Join(tree, split, l.Name()))
			if err != nil {
				t.Fatal(err)
			}
			folders[pb.String()+"/"+l.Name()] = int64(len(files))
		}
	}
	run := func(t *testing.T, e *env, name string) {
		e.svc.roots = append(e.svc.roots, tree) // the tree is shared by every subtest
		e.create(t, name)
		first := e.importLocal(t, name, tree)
		if first.err != nil || first.done.GetAdded() != 1306 || first.done.GetRejected() != 0 || len(first.rejections) != 0 {
			t.Fatalf("first import = %v, %v (rejections %v); want 1306 added", first.done, first.err, first.rejections)
		}
		second := e.importLocal(t, name, tree)
		if second.err != nil || second.done.GetAdded() != 0 || second.done.GetDuplicates() != 1306 {
			t.Fatalf("second import = %v, %v; want 0 added, 1306 duplicates", second.done, second.err)
		}
		if n := countRows(t, e, name); n != 1306 {
			t.Fatalf("rows = %d; want 1306", n)
		}
		stats, err := e.client.GetDatasetStats(t.Context(), &datasetpb.GetDatasetStatsRequest{Dataset: name})
		if err != nil {
			t.Fatal(err)
		}
		checkCounts(t, "stats", stats.GetCounts(), folders)
		snap, err := e.client.CreateSnapshot(t.Context(), &datasetpb.CreateSnapshotRequest{Dataset: name})
		if err != nil {
			t.Fatal(err)
		}
		if snap.GetSnapshot().GetImageCount() != 1306 {
			t.Errorf("snapshot image_count = %d; want 1306", snap.GetSnapshot().GetImageCount())
		}
		checkCounts(t, "snapshot", snap.GetSnapshot().GetCounts(), folders)
		if n := len(readSnapshot(t, e, &datasetpb.ReadSnapshotRequest{Dataset: name, Split: datasetpb.Split_SPLIT_TEST})); n != 261 {
			t.Errorf("ReadSnapshot(test) = %d images; want 261", n)
		}
	}
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		t.Run("local", func(t *testing.T) { run(t, newEnv(t, envOpts{db: cfg}), "demo-local") })
		if cfg.Driver != db.SQLite {
			t.Run("s3", func(t *testing.T) {
				e, _ := s3Env(t, cfg)
				run(t, e, "demo-s3")
			})
		}
	})
}

func checkCounts(t *testing.T, what string, got []*datasetpb.LabelCount, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d split×label counts; want %d", what, len(got), len(want))
	}
	for _, c := range got {
		k := c.GetSplit().String() + "/" + c.GetLabel()
		if want[k] != c.GetCount() {
			t.Errorf("%s: %s = %d; the folder has %d", what, k, c.GetCount(), want[k])
		}
	}
}
