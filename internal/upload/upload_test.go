package upload

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

func splitName(s datasetpb.Split) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SPLIT_"))
}

func TestScanFolderSplitLayout(t *testing.T) {
	root := writeTree(t, "train/Cat/1.jpg", "test/Dog/2.png", "validation/Cat/3.png", "README.md",
		"other/Cat/4.jpg", "train/stray.jpg", "train/Cat/deep/5.jpg", ".git/config", "train/Cat/.DS_Store")
	s, err := ScanFolder(root, Layout{})
	if err != nil {
		t.Fatal(err)
	}
	var placed []string
	for _, f := range s.Files {
		placed = append(placed, splitName(f.Split)+"/"+f.Label+"/"+f.Name)
	}
	if got, want := strings.Join(placed, " "), "test/Dog/2.png train/Cat/1.jpg validation/Cat/3.png"; got != want {
		t.Errorf("ScanFolder() placed %q; want %q", got, want)
	}
	if got, want := strings.Join(s.Skipped, " "), "other/Cat/4.jpg train/Cat/deep/5.jpg train/stray.jpg"; got != want {
		t.Errorf("ScanFolder() skipped %q; want %q", got, want)
	}
}

// A Label/file folder scanned without a split says what it holds and what
// is expected, and ends with the caller's hint.
func TestNothingToUpload(t *testing.T) {
	hints := Hints{AddSplit: "add a split", DropSplit: "needs no split"}
	root := writeTree(t, "Cat/1.jpg", "Cat/2.jpg", "Dog/3.png", "NOTICE")
	s, err := ScanFolder(root, Layout{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 0 {
		t.Fatalf("ScanFolder(Label/file) placed %d files; want none", len(s.Files))
	}
	err = s.NothingToUpload(hints)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("NothingToUpload() = %v; want InvalidArgument", err)
	}
	for _, want := range []string{root + " holds no images laid out split/Label/file", "it holds Cat/, Dog/, NOTICE", "3 files at Label/file",
		"expected train/, validation/ or test/ folders", "for a folder laid out Label/file, add a split"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NothingToUpload() = %q; want it to say %q", err, want)
		}
	}
	l := Layout{Split: datasetpb.Split_SPLIT_TRAIN}
	if s, err = ScanFolder(root, l); err != nil || len(s.Files) != 3 {
		t.Fatalf("ScanFolder(Label/file, split train) = %d files, %v; want 3", len(s.Files), err)
	}
	// The other way round: a split given for a split/Label/file folder.
	root = writeTree(t, "train/Cat/1.jpg")
	s, _ = ScanFolder(root, l)
	if err := s.NothingToUpload(hints); !strings.Contains(err.Error(), "a folder laid out split/Label/file needs no split") {
		t.Errorf("NothingToUpload(split on split/Label/file) = %q; want it to say to drop the split", err)
	}
	if err := (&Scan{Root: "empty", byDepth: map[int]int{}}).NothingToUpload(hints); !strings.Contains(err.Error(), "it is empty") {
		t.Errorf("NothingToUpload(empty) = %q", err)
	}
}

// A test fraction is deterministic by path and takes about that share.
func TestTestFraction(t *testing.T) {
	l := Layout{Split: datasetpb.Split_SPLIT_TRAIN, TestFraction: 0.2}
	if err := l.Validate(); err != nil {
		t.Fatalf("%+v.Validate() = %v", l, err)
	}
	test := 0
	for i := range 2000 {
		rel := fmt.Sprintf("Label%d/img%04d.png", i%5, i)
		split, label, _, ok := l.Place(rel)
		again, _, _, _ := l.Place(rel)
		if !ok || split != again || label == "" {
			t.Fatalf("Place(%q) = %v, %q, %v; then %v", rel, split, label, ok, again)
		}
		if split == datasetpb.Split_SPLIT_TEST {
			test++
		}
	}
	if share := float64(test) / 2000; share < 0.15 || share > 0.25 {
		t.Errorf("test fraction 0.2 put %.3f of 2000 files in test; want about 0.2", share)
	}
	if split, _, _, _ := (Layout{Split: datasetpb.Split_SPLIT_TRAIN}).Place("Cat/1.jpg"); split != datasetpb.Split_SPLIT_TRAIN {
		t.Errorf("split train without a test fraction put Cat/1.jpg in %v", split)
	}
}

func TestValidate(t *testing.T) {
	for _, l := range []Layout{
		{TestFraction: 0.2},
		{Split: datasetpb.Split_SPLIT_TRAIN, TestFraction: 1},
		{Split: datasetpb.Split_SPLIT_TRAIN, TestFraction: -0.1},
		{Split: datasetpb.Split_SPLIT_TEST, TestFraction: 0.5},
	} {
		if err := l.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil; want an error", l)
		}
	}
}

func TestIsArchive(t *testing.T) {
	for p, want := range map[string]bool{"a.zip": true, "a.TAR.GZ": true, "a.tgz": true, "a.tar": true, "a.png": false, "dir": false} {
		if got := IsArchive(p); got != want {
			t.Errorf("IsArchive(%q) = %v; want %v", p, got, want)
		}
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
		return f.Truncate(MaxFile + 1) // sparse: no disk space
	})
	done := make(chan struct{})
	var s *Scan
	var err error
	go func() { defer close(done); s, err = ScanFolder(root, Layout{}) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("scanFolder() still running after 30s: it opened the named pipe")
	}
	if err != nil {
		t.Fatal(err)
	}
	var placed []string
	for _, f := range s.Files {
		placed = append(placed, f.Label+"/"+f.Name)
	}
	if got, want := strings.Join(placed, " "), "Cat/good.png Cat/link.png Cat/target.png"; got != want {
		t.Errorf("scanFolder() placed %q; want %q", got, want)
	}
	refused := map[string]string{}
	for _, r := range s.Refused {
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
