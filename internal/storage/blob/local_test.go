package blob_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/blob/blobtest"
)

func newLocal(t *testing.T) *blob.Local {
	t.Helper()
	s, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatalf("NewLocal() = %v; want nil", err)
	}
	return s
}

func TestLocalConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newLocal(t) })
}

func TestLocalLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatalf("NewLocal(%q) = %v; want nil", dir, err)
	}
	ctx := t.Context()
	if err := s.Put(ctx, "train/Trout/1.jpg", strings.NewReader("jpeg"), 4); err != nil {
		t.Fatalf("Put() = %v; want nil", err)
	}
	// Objects are plain files at their key's path, so that the store can be
	// inspected, backed up or imported with ordinary tools.
	b, err := os.ReadFile(filepath.Join(dir, "train", "Trout", "1.jpg"))
	if err != nil || string(b) != "jpeg" {
		t.Fatalf("ReadFile(train/Trout/1.jpg) = %q, %v; want %q", b, err, "jpeg")
	}
	// Staging leaves nothing behind.
	tmp, err := os.ReadDir(filepath.Join(dir, ".shoal-tmp"))
	if err != nil || len(tmp) != 0 {
		t.Fatalf("ReadDir(.shoal-tmp) = %v, %v; want empty", tmp, err)
	}
	// Deleting the last object of a directory removes the emptied parents.
	if err := s.Delete(ctx, "train/Trout/1.jpg"); err != nil {
		t.Fatalf("Delete() = %v; want nil", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "train")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Stat(train) after Delete = %v; want not exist", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Stat(root) after Delete = %v; want the root kept", err)
	}
}

// TestLocalRemovesStaleTempFiles: while another store uses the folder,
// only staged files older than a day are taken for leftovers.
func TestLocalRemovesStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	live, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatalf("NewLocal(%q) = %v; want nil", dir, err)
	}
	defer runtime.KeepAlive(live) // its lock says the folder is in use
	stale := filepath.Join(dir, ".shoal-tmp", "put-crashed")
	fresh := filepath.Join(dir, ".shoal-tmp", "put-in-progress")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.NewLocal(dir); err != nil {
		t.Fatalf("NewLocal(%q) again = %v; want nil", dir, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(stale temp file) = %v; want it removed", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("Stat(fresh temp file) = %v; want it kept (a Put may still be writing it)", err)
	}
}

// TestLocalRemovesLeftoversOfADeadStore: a store that is the folder's
// only user takes every staged file for the leftover of a Put cut off by a
// crash, however fresh, and removes it.
func TestLocalRemovesLeftoversOfADeadStore(t *testing.T) {
	dir := t.TempDir()
	staged := filepath.Join(dir, ".shoal-tmp", "put-killed")
	if err := os.MkdirAll(filepath.Dir(staged), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(staged, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatalf("NewLocal(%q) = %v; want nil", dir, err)
	}
	if _, err := os.Stat(staged); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(leftover) = %v; want it removed", err)
	}
	if err := s.Put(t.Context(), "k", strings.NewReader("x"), 1); err != nil {
		t.Errorf("Put() after the cleanup = %v", err)
	}
}

func TestLocalReservedKey(t *testing.T) {
	dir := t.TempDir()
	s, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatalf("NewLocal(%q) = %v; want nil", dir, err)
	}
	for _, key := range []string{".shoal-tmp", ".shoal-tmp/x"} {
		if err := s.Put(t.Context(), key, strings.NewReader("x"), 1); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v; want ErrInvalidKey", key, err)
		}
	}
	// Objects being written are not listed.
	if err := os.WriteFile(filepath.Join(dir, ".shoal-tmp", "put-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", ".shoal-tmp", ".shoal-tmp/"} {
		if err := s.List(t.Context(), prefix, func(i blob.Info) error {
			return fmt.Errorf("listed %q", i.Key)
		}); err != nil {
			t.Errorf("List(%q) = %v; want nothing listed", prefix, err)
		}
	}
	// Only the top-level name is reserved.
	if err := s.Put(t.Context(), "a/.shoal-tmp", strings.NewReader("x"), 1); err != nil {
		t.Errorf("Put(a/.shoal-tmp) = %v; want nil", err)
	}
}

func TestLocalPingMissingRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := blob.NewLocal(dir)
	if err != nil {
		t.Fatalf("NewLocal(%q) = %v; want nil", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatalf("Ping() with root removed = nil; want an error")
	}
}
