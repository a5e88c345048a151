package dataset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// badTree writes a tree with every kind of bad input next to good images,
// and returns the rejections an import must report (path -> reason part).
func badTree(t *testing.T, root, outside string) map[string]string {
	t.Helper()
	png := imagingtest.PNG(16, 12, 1)
	writeFile(t, root, "README.txt", []byte("top-level files are not part of the layout"))
	writeFile(t, root, "train/Gold Fish/good.png", png)
	writeFile(t, root, "train/Gold Fish/good.jpg", imagingtest.JPEG(16, 12, 2))
	writeFile(t, root, "train/Gold Fish/.DS_Store", []byte("hidden"))
	writeFile(t, root, "validation/Gold Fish/first-frame.gif", imagingtest.GIF(10, 10, 3))
	writeFile(t, root, "test/Shark/good.bmp", imagingtest.BMP(9, 9, 4))
	writeFile(t, root, "train/Gold Fish/notes.txt", []byte("these are not image bytes"))
	writeFile(t, root, "train/Gold Fish/empty.png", nil)
	writeFile(t, root, "train/Shark/truncated.png", png[:len(png)/2])
	jpg := imagingtest.JPEG(40, 40, 5)
	writeFile(t, root, "train/Shark/truncated.jpg", jpg[:len(jpg)*2/3])
	writeFile(t, root, "train/Shark/bomb.png", imagingtest.PNGBomb(50000, 50000))
	writeFile(t, root, "train/Shark/huge.png", append(imagingtest.PNG(8, 8, 6), make([]byte, 250_000)...))
	writeFile(t, root, "extra/Shark/x.png", imagingtest.PNG(8, 8, 7))
	writeFile(t, root, "train/stray.png", imagingtest.PNG(8, 8, 8))
	writeFile(t, root, "train/Shark/deeper/x.png", imagingtest.PNG(8, 8, 9))
	if err := os.MkdirAll(filepath.Join(root, "test", "Empty Label"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, outside, "secret.png", imagingtest.PNG(8, 8, 10))
	if err := os.Symlink(filepath.Join(outside, "secret.png"), filepath.Join(root, "train", "Shark", "escape.png")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../test/Shark/good.bmp", filepath.Join(root, "train", "Shark", "inside-link.bmp")); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"train/Gold Fish/notes.txt": "not an image: unknown format",
		"train/Gold Fish/empty.png": "empty file (0 bytes)",
		"train/Shark/truncated.png": "truncated",
		"train/Shark/truncated.jpg": "jpeg data",
		"train/Shark/bomb.png":      "50000x50000 is 2500000000 pixels, more than the limit",
		"train/Shark/huge.png":      "more than the limit of 200000",
		"extra/":                    "unknown split folder",
		"train/stray.png":           "file outside a label folder",
		"train/Shark/deeper/":       "nested folder",
		"test/Empty Label/":         "empty label folder",
		"train/Shark/escape.png":    "symlink leads outside the import root",
	}
}

func TestImportLocal(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, envOpts{db: cfg, cfg: func(c *Config) { c.MaxImageBytes = 200_000 }})
		tree := filepath.Join(e.root, "fish")
		want := badTree(t, tree, t.TempDir())
		e.create(t, "fish")

		r := e.importLocal(t, "fish", tree)
		if r.err != nil {
			t.Fatalf("ImportImages = %v", r.err)
		}
		for p, reason := range want {
			if got, ok := r.rejections[p]; !ok || !strings.Contains(got, reason) {
				t.Errorf("rejection of %q = %q; want one containing %q", p, got, reason)
			}
		}
		// A link inside the root is followed: good.bmp's bytes under another
		// split, a conflict. Files are examined in parallel, so either
		// path may be the one kept.
		link, orig := r.rejections["train/Shark/inside-link.bmp"], r.rejections["test/Shark/good.bmp"]
		if !strings.Contains(link+orig, "conflict: the same image is already in the dataset as ") || link != "" && orig != "" {
			t.Errorf("conflict of the linked file = %q / %q; want one of them", link, orig)
		}
		for p, reason := range r.rejections {
			if _, ok := want[p]; !ok && p != "train/Shark/inside-link.bmp" && p != "test/Shark/good.bmp" {
				t.Errorf("unexpected rejection of %q: %s", p, reason)
			}
		}
		// good.png, good.jpg, first-frame.gif, one of the .bmp; the other
		// .bmp is the conflict.
		wantCounts := &datasetpb.ImportCounts{Seen: 5 + int64(len(want)), Added: 4, Rejected: int64(len(want)), Conflicts: 1}
		if !equalCounts(r.done, wantCounts) {
			t.Errorf("done = %v; want %v", r.done, wantCounts)
		}
		if r.progress == 0 {
			t.Error("no progress event")
		}

		again := e.importLocal(t, "fish", tree)
		wantCounts.Added, wantCounts.Duplicates = 0, 4
		if again.err != nil || !equalCounts(again.done, wantCounts) {
			t.Errorf("second import = %v, %v; want %v", again.done, again.err, wantCounts)
		}
		if n := countRows(t, e, "fish"); n != 4 {
			t.Errorf("rows = %d; want 4", n)
		}
	})
}

func equalCounts(a, b *datasetpb.ImportCounts) bool {
	return a.GetSeen() == b.GetSeen() && a.GetAdded() == b.GetAdded() && a.GetDuplicates() == b.GetDuplicates() &&
		a.GetRejected() == b.GetRejected() && a.GetConflicts() == b.GetConflicts()
}

func TestImportLabelConflict(t *testing.T) {
	e := newEnv(t, envOpts{})
	img := imagingtest.PNG(8, 8, 1)
	writeFile(t, e.root, "t/train/Cat/a.png", img)
	writeFile(t, e.root, "t/train/Dog/b.png", img)
	writeFile(t, e.root, "t/train/Dog/c.png", img)
	e.create(t, "pets")
	r := e.importLocal(t, "pets", e.root+"/t")
	// Files are examined in parallel, so which label is kept first is not
	// fixed; the other label is a conflict either way, never a second row.
	d := r.done
	if r.err != nil || d.GetAdded() != 1 || d.GetConflicts() < 1 || d.GetConflicts()+d.GetDuplicates() != 2 || d.GetSeen() != 3 {
		t.Fatalf("import = %v, %v; want 1 added, the rest conflicts (and a duplicate of Dog, if Dog came first)", d, r.err)
	}
	found := false
	for _, reason := range r.rejections {
		found = found || strings.Contains(reason, "conflict: the same image is already in the dataset as train/")
	}
	if !found {
		t.Errorf("no conflict reason in %v", r.rejections)
	}
	if n := countRows(t, e, "pets"); n != 1 {
		t.Errorf("rows = %d; want 1", n)
	}
}

func TestImportErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.create(t, "fish")
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(e.root, "link-out")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.root, "file.png", imagingtest.PNG(4, 4, 1))
	tests := []struct {
		name string
		req  *datasetpb.ImportImagesRequest
		code codes.Code
	}{
		{"missing dataset", local("nope", e.root), codes.NotFound},
		{"missing folder", local("fish", e.root+"/missing"), codes.NotFound},
		{"outside the roots", local("fish", outside), codes.PermissionDenied},
		{"dot-dot out of the root", local("fish", e.root+"/../"), codes.PermissionDenied},
		{"symlink out of the root", local("fish", e.root+"/link-out"), codes.PermissionDenied},
		{"not a folder", local("fish", e.root+"/file.png"), codes.InvalidArgument},
		{"no source", &datasetpb.ImportImagesRequest{Dataset: "fish"}, codes.InvalidArgument},
		{"no object store", &datasetpb.ImportImagesRequest{Dataset: "fish", Source: &datasetpb.ImportImagesRequest_ObjectStore{
			ObjectStore: &datasetpb.ObjectStoreSource{Bucket: "b"}}}, codes.FailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.importReq(t, tt.req)
			wantCode(t, "ImportImages", r.err, tt.code)
		})
	}
}

func local(ds, path string) *datasetpb.ImportImagesRequest {
	return &datasetpb.ImportImagesRequest{Dataset: ds, Source: &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: path}}}
}

// TestImportStorageOutage: the blob store fails mid-import; the import fails
// cleanly (Unavailable, every row has its blob) and a re-run finishes it.
func TestImportStorageOutage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		inner, err := blob.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fs := &failingStore{Store: inner}
		fs.left.Store(300)
		e := newEnv(t, envOpts{db: cfg, blobs: fs})
		const n = 700
		for i := range n {
			writeFile(t, e.root, "big/train/L"+string(rune('a'+i%5))+"/"+itoa(i)+".png", imagingtest.PNG(6, 6, i))
		}
		e.create(t, "big")
		r := e.importLocal(t, "big", e.root+"/big")
		wantCode(t, "ImportImages during an outage", r.err, codes.Unavailable)
		rows := countRows(t, e, "big")
		if rows >= n {
			t.Fatalf("rows after the outage = %d; want fewer than %d", rows, n)
		}
		// No half-written rows: every row's blob is there.
		resp, err := e.client.ListImages(t.Context(), &datasetpb.ListImagesRequest{Dataset: "big", PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range resp.GetImages() {
			if _, err := inner.Stat(t.Context(), blobKey(img.GetSha256())); err != nil {
				t.Fatalf("row %s has no blob: %v", img.GetId(), err)
			}
		}
		fs.left.Store(1 << 30)
		again := e.importLocal(t, "big", e.root+"/big")
		if again.err != nil || again.done.GetAdded()+rows != n || again.done.GetDuplicates() != rows {
			t.Fatalf("re-run = %v, %v; want %d added, %d duplicates", again.done, again.err, n-rows, rows)
		}
		if got := countBlobs(t, inner); got != n {
			t.Errorf("blobs = %d; want %d", got, n)
		}
	})
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
