package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
