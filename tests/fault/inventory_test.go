package fault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
)

// backends are the database and blob store one process uses, so a test
// can open them itself after the process is stopped or killed.
type backends struct {
	DB   db.Config
	Blob blob.Config
}

// localBackends are the embedded defaults, SQLite and a local folder,
// under dir/data.
func localBackends(dir string) backends {
	return backends{
		DB:   dbConfig(db.SQLite, filepath.Join(dir, "data", "shoal.db")),
		Blob: blob.Config{Backend: blob.BackendLocal, Local: blob.LocalConfig{Dir: filepath.Join(dir, "data", "blobs")}},
	}
}

func dbConfig(driver db.Driver, dsn string) db.Config {
	return db.Config{Driver: driver, DSN: dsn, MaxOpenConns: 4, MaxIdleConns: 2, ConnectTimeout: 10 * time.Second}
}

// flags are the serve flags that select b.
func (b backends) flags() []string {
	f := []string{"--db.driver=" + string(b.DB.Driver), "--db.dsn=" + b.DB.DSN, "--blob.backend=" + b.Blob.Backend}
	switch b.Blob.Backend {
	case blob.BackendLocal:
		f = append(f, "--blob.local.dir="+b.Blob.Local.Dir)
	case blob.BackendS3:
		s := b.Blob.S3
		f = append(f, "--blob.s3.endpoint="+s.Endpoint, "--blob.s3.bucket="+s.Bucket, "--blob.s3.access-key="+s.AccessKey,
			"--blob.s3.secret-key="+s.SecretKey, "--blob.s3.region="+s.Region, "--blob.s3.create-bucket=true")
		if s.Insecure {
			f = append(f, "--blob.s3.insecure")
		}
	}
	return f
}

// inventory is what the stores hold, cross-checked: every row's blob is
// there with the content its SHA-256 names, and every blob is referenced
// by a row.
type inventory struct {
	Images    int // dataset_images rows
	Datasets  map[string]int
	Versions  int
	Artifacts int // registry_artifacts rows
	Jobs      map[string]string
	Blobs     int // keys in the blob store
	BlobBytes int64
	// Staged counts the local backend's staging files (.shoal-tmp): a Put
	// that was cut off leaves one, invisible to readers.
	Staged int

	Problems []string
}

func (inv *inventory) problem(format string, args ...any) {
	inv.Problems = append(inv.Problems, fmt.Sprintf(format, args...))
}

// takeInventory opens b (the process must not be writing: stopped, killed,
// or idle) and cross-checks rows and blobs. It reads every blob back and
// compares its SHA-256 with its name.
func takeInventory(t *testing.T, b backends) *inventory {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gdb, err := db.Open(ctx, b.DB, nil)
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	sqlDB, _ := gdb.DB()
	defer sqlDB.Close()
	store, err := blob.Open(ctx, b.Blob)
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	inv := &inventory{Datasets: map[string]int{}, Jobs: map[string]string{}}
	q := func(dst any, sql string, args ...any) {
		if err := gdb.WithContext(ctx).Raw(sql, args...).Scan(dst).Error; err != nil {
			t.Fatalf("inventory: %s: %v", sql, err)
		}
	}

	if b.DB.Driver == db.SQLite {
		var res []string
		q(&res, "PRAGMA integrity_check")
		if len(res) != 1 || res[0] != "ok" {
			inv.problem("SQLite integrity_check: %v", res)
		}
		var fk []map[string]any
		q(&fk, "PRAGMA foreign_key_check")
		if len(fk) > 0 {
			inv.problem("SQLite foreign_key_check: %v", fk)
		}
	}

	var images []struct {
		Dataset string
		SHA256  string `gorm:"column:sha256"`
		N       int
	}
	q(&images, `SELECT d.name AS dataset, i.sha256 AS sha256, COUNT(*) AS n FROM dataset_images i
		JOIN dataset_datasets d ON d.id = i.dataset_id GROUP BY d.name, i.sha256`)
	imageSHA := map[string]bool{}
	for _, r := range images {
		inv.Images += r.N
		inv.Datasets[r.Dataset] += r.N
		imageSHA[r.SHA256] = true
		if r.N > 1 {
			inv.problem("dataset %s holds image %s %d times", r.Dataset, r.SHA256, r.N)
		}
	}

	var versions []struct {
		Model  string
		Number int64
		SHA256 string `gorm:"column:artifact_sha256"`
		Size   int64  `gorm:"column:artifact_size"`
	}
	q(&versions, `SELECT m.name AS model, v.number AS number, v.artifact_sha256 AS artifact_sha256, v.artifact_size AS artifact_size
		FROM registry_versions v JOIN registry_models m ON m.id = v.model_id`)
	inv.Versions = len(versions)
	versionSHA := map[string]bool{}
	versionKeys := map[string]bool{}
	for _, v := range versions {
		versionSHA[v.SHA256] = true
		versionKeys[fmt.Sprintf("%s/%d", v.Model, v.Number)] = true
	}
	var artifacts []string
	q(&artifacts, "SELECT sha256 FROM registry_artifacts")
	inv.Artifacts = len(artifacts)
	for _, a := range artifacts {
		if !versionSHA[a] {
			inv.problem("artifact row %s is referenced by no version", a)
		}
	}
	var aliases []struct {
		Model, Alias string
		Version      int64
	}
	q(&aliases, `SELECT m.name AS model, a.name AS alias, a.version AS version FROM registry_aliases a JOIN registry_models m ON m.id = a.model_id`)
	for _, a := range aliases {
		if !versionKeys[fmt.Sprintf("%s/%d", a.Model, a.Version)] {
			inv.problem("alias %s@%s points at version %d, which does not exist", a.Model, a.Alias, a.Version)
		}
	}
	var jobs []struct {
		ID    string
		State int32
	}
	q(&jobs, "SELECT id, state FROM trainer_jobs")
	for _, j := range jobs {
		inv.Jobs[j.ID] = fmt.Sprint(j.State)
	}

	seen := map[string]bool{}
	err = store.List(ctx, "", func(info blob.Info) error {
		inv.Blobs++
		inv.BlobBytes += info.Size
		seen[info.Key] = true
		name := path.Base(info.Key)
		switch {
		case strings.HasPrefix(info.Key, "images/sha256/"):
			if !imageSHA[name] {
				inv.problem("orphan blob %s: no image row references it", info.Key)
			}
			checkContent(ctx, inv, store, info.Key, name)
		case strings.HasPrefix(info.Key, "registry/artifacts/sha256/"):
			if !versionSHA[name] {
				inv.problem("orphan blob %s: no version references it", info.Key)
			}
			checkContent(ctx, inv, store, info.Key, name)
		case strings.HasPrefix(info.Key, "trainer/weights/"):
			if _, ok := inv.Jobs[strings.TrimSuffix(name, ".gob")]; !ok {
				inv.problem("orphan blob %s: no job row references it", info.Key)
			}
		case strings.HasPrefix(info.Key, "trainer/checkpoints/"):
			// A running job's last epoch; an ended job's is removed.
			if st, ok := inv.Jobs[strings.TrimSuffix(name, ".ckpt")]; !ok || st != fmt.Sprint(int32(trainerpb.JobState_JOB_STATE_RUNNING)) {
				inv.problem("leftover blob %s: its job is not running (%q)", info.Key, st)
			}
		default:
			inv.problem("blob %s belongs to no service's layout", info.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("inventory: list blobs: %v", err)
	}
	for sha := range imageSHA {
		if !seen["images/sha256/"+sha[:2]+"/"+sha] {
			inv.problem("image %s has a row but no blob", sha)
		}
	}
	for _, v := range versions {
		if !seen["registry/artifacts/sha256/"+v.SHA256] {
			inv.problem("version %s/%d has no artifact blob", v.Model, v.Number)
		}
	}
	if b.Blob.Backend == blob.BackendLocal {
		entries, _ := os.ReadDir(filepath.Join(b.Blob.Local.Dir, ".shoal-tmp"))
		inv.Staged = len(entries)
	}
	sort.Strings(inv.Problems)
	return inv
}

// checkContent reads a content-addressed blob back and compares its hash.
func checkContent(ctx context.Context, inv *inventory, store blob.Store, key, want string) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		inv.problem("blob %s cannot be read: %v", key, err)
		return
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		inv.problem("blob %s cannot be read: %v", key, err)
		return
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		inv.problem("blob %s holds content with SHA-256 %s: corrupt", key, got)
	}
}

// requireClean fails t with every problem the inventory found.
func (inv *inventory) requireClean(t *testing.T, when string) {
	t.Helper()
	for _, p := range inv.Problems {
		t.Errorf("%s: %s", when, p)
	}
	t.Logf("%s: %d images (%v), %d versions, %d artifact rows, %d jobs, %d blobs (%d bytes), %d staging files",
		when, inv.Images, inv.Datasets, inv.Versions, inv.Artifacts, len(inv.Jobs), inv.Blobs, inv.BlobBytes, inv.Staged)
}
