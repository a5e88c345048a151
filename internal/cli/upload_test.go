package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
)

func writeTree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestScanFolderSplitLayout(t *testing.T) {
	root := writeTree(t, "train/Cat/1.jpg", "test/Dog/2.png", "validation/Cat/3.png", "README.md",
		"other/Cat/4.jpg", "train/stray.jpg", "train/Cat/deep/5.jpg", ".git/config", "train/Cat/.DS_Store")
	s, err := scanFolder(root, layout{})
	if err != nil {
		t.Fatal(err)
	}
	var placed []string
	for _, f := range s.files {
		placed = append(placed, splitName(f.split)+"/"+f.label+"/"+f.name)
	}
	if got, want := strings.Join(placed, " "), "test/Dog/2.png train/Cat/1.jpg validation/Cat/3.png"; got != want {
		t.Errorf("scanFolder() placed %q; want %q", got, want)
	}
	if got, want := strings.Join(s.skipped, " "), "other/Cat/4.jpg train/Cat/deep/5.jpg train/stray.jpg"; got != want {
		t.Errorf("scanFolder() skipped %q; want %q", got, want)
	}
}

// A Label/file folder uploaded without --split says what it holds and what
// is expected, and offers --split.
func TestNothingToUpload(t *testing.T) {
	root := writeTree(t, "Cat/1.jpg", "Cat/2.jpg", "Dog/3.png", "NOTICE")
	s, err := scanFolder(root, layout{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.files) != 0 {
		t.Fatalf("scanFolder(Label/file) placed %d files; want none", len(s.files))
	}
	err = s.nothingToUpload(root, layout{})
	if status.Code(err) != codes.InvalidArgument || ExitCode(err) != ExitInvalid {
		t.Errorf("nothingToUpload() = %v; want InvalidArgument", err)
	}
	for _, want := range []string{"holds no images laid out split/Label/file", "it holds Cat/, Dog/, NOTICE", "3 files at Label/file",
		"expected train/, validation/ or test/ folders", "add --split train"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("nothingToUpload() = %q; want it to say %q", err, want)
		}
	}
	l, err := newLayout("train", 0)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = scanFolder(root, l); err != nil || len(s.files) != 3 {
		t.Fatalf("scanFolder(Label/file, --split train) = %d files, %v; want 3", len(s.files), err)
	}
	// The other way round: --split on a split/Label/file folder.
	root = writeTree(t, "train/Cat/1.jpg")
	s, _ = scanFolder(root, l)
	if err := s.nothingToUpload(root, l); !strings.Contains(err.Error(), "needs no --split") {
		t.Errorf("nothingToUpload(--split on split/Label/file) = %q; want it to say to drop --split", err)
	}
	if err := (&folderScan{byDepth: map[int]int{}}).nothingToUpload("empty", layout{}); !strings.Contains(err.Error(), "it is empty") {
		t.Errorf("nothingToUpload(empty) = %q", err)
	}
}

// --test-fraction is deterministic by path and takes about that share.
func TestTestFraction(t *testing.T) {
	l, err := newLayout("train", 0.2)
	if err != nil {
		t.Fatal(err)
	}
	test := 0
	for i := range 2000 {
		rel := fmt.Sprintf("Label%d/img%04d.png", i%5, i)
		split, label, _, ok := l.place(rel)
		again, _, _, _ := l.place(rel)
		if !ok || split != again || label == "" {
			t.Fatalf("place(%q) = %v, %q, %v; then %v", rel, split, label, ok, again)
		}
		if split == datasetpb.Split_SPLIT_TEST {
			test++
		}
	}
	if share := float64(test) / 2000; share < 0.15 || share > 0.25 {
		t.Errorf("--test-fraction 0.2 put %.3f of 2000 files in test; want about 0.2", share)
	}
	if split, _, _, _ := (layout{split: datasetpb.Split_SPLIT_TRAIN}).place("Cat/1.jpg"); split != datasetpb.Split_SPLIT_TRAIN {
		t.Errorf("--split train without a test fraction put Cat/1.jpg in %v", split)
	}
}

// Files a folder upload cannot send are refused by name, as the server
// refuses them in a server folder, and the rest is sent: a named pipe
// (reading it would block the upload for good), a device, a broken link, a
// link to a folder, names that are not UTF-8 (a protobuf string cannot
// carry them), a file too large for one message.
func TestScanFolderRefusesWhatItCannotSend(t *testing.T) {
	root := writeTree(t, "train/Cat/good.png", "train/Cat/target.png")
	mk := func(name string, make func(p string) error) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := make(p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	mk("train/Cat/pipe.png", func(p string) error { return syscall.Mkfifo(p, 0o644) })
	mk("train/Cat/gone.png", func(p string) error { return os.Symlink("nowhere.png", p) })
	mk("train/Cat/link.png", func(p string) error { return os.Symlink("target.png", p) })
	mk("train/Dog", func(p string) error { return os.Symlink("Cat", p) })
	mk("train/Cat/caf\xe9.png", func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) })
	mk("train/Caf\xe9/x.png", func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) })
	mk("train/Cat/huge.png", func(p string) error {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(maxUploadFile + 1) // sparse: no disk space
	})
	done := make(chan struct{})
	var s *folderScan
	var err error
	go func() { defer close(done); s, err = scanFolder(root, layout{}) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("scanFolder() still running after 30s: it opened the named pipe")
	}
	if err != nil {
		t.Fatal(err)
	}
	var placed []string
	for _, f := range s.files {
		placed = append(placed, f.label+"/"+f.name)
	}
	if got, want := strings.Join(placed, " "), "Cat/good.png Cat/link.png Cat/target.png"; got != want {
		t.Errorf("scanFolder() placed %q; want %q", got, want)
	}
	refused := map[string]string{}
	for _, r := range s.refused {
		refused[r.GetPath()] = r.GetReason()
	}
	for path, reason := range map[string]string{
		"train/Cat/pipe.png":      "not a regular file",
		"train/Cat/gone.png":      "broken symlink",
		"train/Dog/":              "symlinked folders are not followed",
		"train/Cat/caf\uFFFD.png": "file name is not valid UTF-8",
		"train/Caf\uFFFD/x.png":   "label is not valid UTF-8",
		"train/Cat/huge.png":      "more than the limit",
	} {
		if !strings.Contains(refused[path], reason) {
			t.Errorf("scanFolder() refused %s with %q; want %q (refused: %q)", path, refused[path], reason, refused)
		}
	}
}
