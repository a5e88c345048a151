package split

import (
	"context"
	"database/sql"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/shoalml/shoal/internal/demodata"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// TestSplitOriginalStorage runs the compose services with the settings of
// compose.original.yaml, the original pipeline's MySQL and MinIO in place
// of PostgreSQL and SeaweedFS: the database is a fresh one on the test
// suite's MariaDB server, and the S3 server the suite's own standing for
// MinIO. Through the gateway it creates a dataset, uploads images,
// snapshots, trains a small model, promotes it and predicts; then it
// checks that the rows are in MySQL and the blobs in the bucket.
func TestSplitOriginalStorage(t *testing.T) {
	needSplit(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	began := time.Now()

	photos := smallTree(ctx, t, 4, 24, 6)
	top := startTopologyOf(ctx, t, "compose.yaml", "compose.original.yaml")
	for name, procs := range top.procs {
		for _, p := range procs {
			if top.compose.Services[name].Environment["SHOAL_DB_DSN"] != "" && !slices.Contains(p.env, "SHOAL_DB_DRIVER=mysql") {
				t.Fatalf("%s runs without SHOAL_DB_DRIVER=mysql; want the override file's MySQL settings", p.name)
			}
		}
	}
	t.Logf("started %d processes on MySQL and S3 in %.1fs", len(top.all()), time.Since(began).Seconds())

	if code, body := top.rest(ctx, http.MethodPost, "/v1/datasets", `{"name":"fish"}`); code != http.StatusOK {
		t.Fatalf("POST /v1/datasets = %d %s; want 200", code, body)
	}
	top.mustCLI(ctx, "dataset", "upload", "fish", photos)
	top.mustCLI(ctx, "dataset", "snapshot", "fish")
	out := top.mustCLI(ctx, "train", "--dataset", "fish", "--snapshot", "1", "--epochs", "2", "--batch-size", "16",
		"--model", "fashion", "--follow") // the model the inference replicas follow by default
	if !strings.Contains(out, "registered fashion version 1") {
		t.Fatalf("shoal train --follow printed:\n%s\nwant 'registered fashion version 1'", out)
	}
	top.mustCLI(ctx, "models", "promote", "fashion", "1", "--wait", "--timeout", "2m")
	sample, err := os.ReadFile(firstFile(t, filepath.Join(photos, "test")))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := predictREST(ctx, "http://"+top.gw.httpAddr, sample)
	if err != nil || answer.Version != 1 || answer.Prediction == "" {
		t.Fatalf("POST /predict through the gateway = %+v, %v; want a prediction of version 1", answer, err)
	}

	// Where the data went: the rows into MySQL, the bytes into the bucket.
	dsn, err := top.dsn(top.compose.Services["auth"].Environment["SHOAL_DB_DSN"])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	want := countFiles(t, photos)
	for _, q := range []struct {
		query string
		want  int
	}{
		{"SELECT COUNT(*) FROM dataset_images", want},
		{"SELECT COUNT(*) FROM registry_versions", 1},
		{"SELECT COUNT(*) FROM trainer_jobs", 1},
	} {
		var n int
		if err := conn.QueryRowContext(ctx, q.query).Scan(&n); err != nil || n != q.want {
			t.Errorf("MySQL: %s = %d, %v; want %d", q.query, n, err, q.want)
		}
	}
	if n := top.bucketObjects(ctx, t); n < want {
		t.Errorf("bucket %s holds %d objects; want at least the %d images", top.bucket, n, want)
	}

	top.stop()
	t.Logf("total %.1fs", time.Since(began).Seconds())
}

// smallTree writes a tree laid out split/Label/file of the first labels of
// the demo data, train and test images of each.
func smallTree(ctx context.Context, t *testing.T, labels, train, test int) string {
	t.Helper()
	demo := filepath.Join(workRoot, "demo")
	if _, err := demodata.Generate(ctx, demodata.Options{Out: demo}); err != nil {
		t.Fatalf("demo tree: %v (scripts/setup-demo-data.sh installs its source)", err)
	}
	out := filepath.Join(workRoot, "photos")
	entries, err := os.ReadDir(filepath.Join(demo, "train"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < labels {
		t.Fatalf("the demo tree has %d labels; want %d", len(entries), labels)
	}
	for _, e := range entries[:labels] {
		for split, n := range map[string]int{"train": train, "test": test} {
			files, err := filepath.Glob(filepath.Join(demo, split, e.Name(), "*"))
			if err != nil || len(files) < n {
				t.Fatalf("demo %s/%s holds %d files; want %d (%v)", split, e.Name(), len(files), n, err)
			}
			dir := filepath.Join(out, split, e.Name())
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files[:n] {
				if err := os.Link(f, filepath.Join(dir, filepath.Base(f))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return out
}

func firstFile(t *testing.T, dir string) string {
	t.Helper()
	var first string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && first == "" {
			first = path
		}
		return err
	})
	if first == "" {
		t.Fatalf("no file under %s", dir)
	}
	return first
}

// bucketObjects counts the objects in the deployment's bucket.
func (top *topology) bucketObjects(ctx context.Context, t *testing.T) int {
	t.Helper()
	store, err := blob.NewS3(ctx, blob.S3Config{Endpoint: top.s3.endpoint, Bucket: top.bucket, AccessKey: top.s3.accessKey,
		SecretKey: top.s3.secretKey, Region: "us-east-1", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := store.ListAll(ctx, "", func(blob.Info) error { n++; return nil }); err != nil {
		t.Fatalf("listing bucket %s: %v", top.bucket, err)
	}
	return n
}
