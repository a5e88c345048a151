package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
)

// TestSweepArtifacts: an artifact blob no version references (what a
// crash between storing an upload's blob and committing its rows leaves)
// is removed; a version's artifact and keys of another shape stay.
func TestSweepArtifacts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		var c Config
		c.RegisterFlags(flag.NewFlagSet("registry", flag.ContinueOnError))
		blobs, err := blob.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(c, Deps{Log: testlog.New(t), DB: dbtest.Open(t, cfg), Blobs: blobs})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		put := func(key string, data []byte) {
			t.Helper()
			if err := blobs.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
		}
		orphan, kept := []byte("orphan artifact"), []byte("a version's artifact")
		put(artifactKey(hexSHA(orphan)), orphan)
		put(artifactKey("not-a-sha"), []byte("another tool's object"))

		path := filepath.Join(t.TempDir(), "model.onnx")
		if err := os.WriteFile(path, kept, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.createVersion(t.Context(), newVersion{
			spec: &registrypb.VersionSpec{Model: "fish"}, labels: []string{"a", "b"}, input: &registrypb.InputSpec{},
			sha: hexSHA(kept), size: int64(len(kept)), path: path,
		}); err != nil {
			t.Fatalf("createVersion() = %v", err)
		}

		if n, err := s.sweepArtifacts(t.Context()); err != nil || n != 1 {
			t.Fatalf("sweepArtifacts() = %d, %v; want 1 deleted", n, err)
		}
		var keys []string
		if err := blobs.List(t.Context(), "", func(i blob.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		want := []string{artifactKey("not-a-sha"), artifactKey(hexSHA(kept))}
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("blobs after the sweep = %v; want %v", keys, want)
		}
		var rows []string
		if err := s.deps.DB.Model(&artifactRow{}).Pluck("sha256", &rows).Error; err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows, []string{hexSHA(kept)}) {
			t.Errorf("artifact rows after the sweep = %v; want only the version's", rows)
		}
		if n, err := s.sweepArtifacts(t.Context()); err != nil || n != 0 {
			t.Errorf("second sweepArtifacts() = %d, %v; want 0", n, err)
		}
	})
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestStartRemovesLeftUploads: an upload file that a killed registry left
// in the upload folder is removed at the next start; other files stay.
func TestStartRemovesLeftUploads(t *testing.T) {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("registry", flag.ContinueOnError))
	c.UploadDir = t.TempDir()
	for _, name := range []string{"shoal-registry-upload-123.onnx", "shoal-upload-456", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(c.UploadDir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	blobs, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(c, Deps{Log: testlog.New(t), DB: dbtest.Open(t, dbtest.Config(t, db.SQLite)), Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(c.UploadDir)
	if err != nil || len(entries) != 2 || entries[0].Name() != "notes.txt" || entries[1].Name() != "shoal-upload-456" {
		t.Errorf("upload folder after Start = %v, %v; want only the files that are not the registry's uploads", entries, err)
	}
}
