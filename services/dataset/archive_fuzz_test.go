package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/fuzztest"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// fuzzConfig has small limits, so that the fuzzer reaches them with inputs
// of a few kilobytes.
var fuzzConfig = Config{MaxImageBytes: 4 << 10, MaxImagePixels: 1 << 12, MaxArchiveBytes: 64 << 10, MaxArchiveEntries: 20, ImportWorkers: 1}

func FuzzZipArchive(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { fuzzArchive(t, "up.zip", data) })
}
func FuzzTarArchive(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { fuzzArchive(t, "up.tar", data) })
}
func FuzzTarGzArchive(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { fuzzArchive(t, "up.tar.gz", data) })
}

// fuzzArchive opens data as the upload name and walks it as an import
// does, examining every entry. Neither may panic; entries that come out
// are confined to split/Label/file, with names and rejections that can be
// sent and stored (UTF-8); no entry's bytes exceed the image limit; errors
// are the client's (InvalidArgument, ResourceExhausted); and the heap used
// is bounded by the input and the limits, not by sizes the archive claims.
func fuzzArchive(t *testing.T, name string, data []byte) {
	defer fuzztest.Watchdog(10 * time.Second)()
	s := &Service{cfg: fuzzConfig}
	ctx := context.Background()
	before := fuzztest.Allocated()
	src, closeSrc, err := openArchive(bytes.NewReader(data), int64(len(data)), name, s.cfg)
	if err != nil {
		if c := status.Code(err); c != codes.InvalidArgument && c != codes.ResourceExhausted {
			t.Fatalf("openArchive(%s) = %v; want InvalidArgument or ResourceExhausted", name, err)
		}
		return
	}
	defer closeSrc()
	if z, ok := src.(zipSource); ok {
		// The guard against huge indexes must count at least what
		// archive/zip read.
		if n := zipEntries(bytes.NewReader(data), int64(len(data)), math.MaxUint64-1); uint64(len(z.r.File)) > n {
			t.Fatalf("zipEntries() = %d; archive/zip read %d entries", n, len(z.r.File))
		}
	}
	entries := 0
	err = src.walk(ctx, func(e entry) error {
		entries++
		checkEntry(t, e)
		if unsafeArchivePath(e.path) != "" {
			t.Fatalf("entry %q would be unsafe to extract", e.path)
		}
		r := s.examine(ctx, e)
		if r.reject != "" {
			checkRejection(t, e.path, r.reject)
			return nil
		}
		if n := int64(len(r.data)); n == 0 || n > s.cfg.MaxImageBytes {
			t.Fatalf("examine(%q) accepted %d bytes; want 1 to %d", e.path, n, s.cfg.MaxImageBytes)
		}
		if sum := sha256.Sum256(r.data); hex.EncodeToString(sum[:]) != r.sha {
			t.Fatalf("examine(%q).sha = %s; want the SHA-256 of its data", e.path, r.sha)
		}
		return nil
	}, func(p, reason string) error {
		entries++
		r := rejected(p, reason)
		checkRejection(t, r.e.path, r.reject)
		return nil
	})
	if c := status.Code(err); err != nil && c != codes.InvalidArgument && c != codes.ResourceExhausted {
		t.Fatalf("walk(%s) = %v; want nil, InvalidArgument or ResourceExhausted", name, err)
	}
	// Each entry may cost its bytes a few times over (read, decoded) and a
	// decompressor; the archive's index a few times its size.
	perEntry := uint64(16*s.cfg.MaxImageBytes + 64*s.cfg.MaxImagePixels + 128<<10)
	if limit := uint64(entries+1)*perEntry + 64*uint64(len(data)) + 1<<20; fuzztest.Allocated()-before > limit {
		t.Fatalf("%s of %d bytes with %d entries allocated %d bytes; want at most %d", name, len(data), entries, fuzztest.Allocated()-before, limit)
	}
}

// FuzzObjectKey places any object key of a bucket import (and any path of
// a server folder) in the layout: a key is ignored, refused with a reason
// that can be sent, or placed at split/Label/file with names that are safe
// to store, show and send.
func FuzzObjectKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, key string) {
		e, ignore, reason := placeFile(key)
		switch {
		case ignore:
		case reason != "":
			r := rejected(key, reason)
			checkRejection(t, r.e.path, r.reject)
		default:
			if e.path != key {
				t.Fatalf("placeFile(%q).path = %q; want the key", key, e.path)
			}
			e.open = func(context.Context) (io.ReadCloser, error) { return nil, nil }
			checkEntry(t, e)
		}
	})
}

// checkEntry checks that an entry is a file of the dataset's layout whose
// names are safe to store, show and send.
func checkEntry(t *testing.T, e entry) {
	t.Helper()
	if e.path != splitDir(e.split)+"/"+e.label+"/"+e.name {
		t.Fatalf("entry %q is %s/%s/%s; want its path to be split/Label/file", e.path, splitDir(e.split), e.label, e.name)
	}
	if e.split == datasetpb.Split_SPLIT_UNSPECIFIED || checkLabel(e.label) != "" ||
		e.name == "" || e.name == "." || e.name == ".." || strings.Contains(e.name, "/") {
		t.Fatalf("entry %q (split %v, label %q, name %q) escapes the layout", e.path, e.split, e.label, e.name)
	}
	if e.data == nil && e.open == nil {
		t.Fatalf("entry %q has neither data nor a way to open it", e.path)
	}
	img := &datasetpb.Image{Label: e.label, FileName: e.name}
	if _, err := proto.Marshal(img); err != nil || !utf8.ValidString(e.path) {
		t.Fatalf("entry %q: its names cannot be stored and sent: %v", e.path, err)
	}
}

func checkRejection(t *testing.T, p, reason string) {
	t.Helper()
	if reason == "" {
		t.Fatalf("rejection of %q has no reason", p)
	}
	if _, err := proto.Marshal(&datasetpb.FileRejection{Path: p, Reason: reason}); err != nil {
		t.Fatalf("rejection of %q (%s) cannot be sent: %v", p, reason, err)
	}
}

// TestWriteFuzzSeeds rebuilds the seed corpora of the archive fuzz targets
// (see package fuzztest).
func TestWriteFuzzSeeds(t *testing.T) {
	tiny := func(seed int) []byte { return imagingtest.PNG(3, 2, seed) }
	// A few entries each: a tar entry takes 1 KiB, mostly zeros, which the
	// corpus format writes four bytes to one.
	layouts := []struct {
		name    string
		members []member
	}{
		{"layout", []member{
			{name: "train/", dir: true},
			{name: "train/Gold Fish/a.png", data: tiny(1)},
			{name: "./test/Shark/b.jpg", data: imagingtest.JPEG(8, 8, 2)},
		}},
		{"ignored", []member{
			{name: "README", data: []byte("about")},
			{name: "test/.DS_Store", data: []byte{0}},
			{name: "train/X/.hidden.png", data: tiny(2)},
		}},
		{"unsafe-paths", []member{
			{name: "../train/X/a.png", data: tiny(3)},
			{name: "/train/X/b.png", data: tiny(4)},
			{name: "train\\X\\c.png", data: tiny(5)},
		}},
		{"links-and-dirs", []member{
			{name: "train/Empty/", dir: true},
			{name: "train/Linked/l.png", link: true},
			{name: "train/Nested/deeper/n.png", data: tiny(8)},
		}},
		{"outside-layout", []member{
			{name: "val/X/v.png", data: tiny(9)},
			{name: "train/file-outside-label.png", data: tiny(10)},
			{name: "C:/train/X/d.png", data: tiny(6)},
		}},
		{"odd-names", []member{
			{name: "train/\xff\xfe/a.png", data: tiny(11)},
			{name: "train/Ok/\xc3\x28.png", data: tiny(12)},
			{name: "train/Ctl\x01/b.png", data: tiny(13)},
		}},
		{"duplicates", []member{
			{name: "train/Ok/dup.png", data: tiny(15)},
			{name: "train/Ok/dup.png", data: tiny(16)},
			{name: "test/Ok/dup.png", data: tiny(15)},
		}},
		{"bad-files", []member{
			{name: "train/X/empty.png"},
			{name: "train/X/bomb.png", data: imagingtest.PNGBomb(1<<15, 1<<15)},
			{name: "train/X/text.jpg", data: []byte("not an image")},
		}},
		{"too-large", []member{
			{name: "train/X/big.bin", data: bytes.Repeat([]byte("x"), int(fuzzConfig.MaxImageBytes)+1)},
		}},
	}
	var zips, tars, tgzs []fuzztest.Seed
	for _, l := range layouts {
		tr := makeTar(t, l.members, false)
		tr = tr[:len(tr)-1024] // the end-of-archive blocks are optional
		zips = append(zips, fuzztest.Seed{Name: l.name, Args: []any{makeZip(t, l.members)}})
		tars = append(tars, fuzztest.Seed{Name: l.name, Args: []any{tr}})
		tgzs = append(tgzs, fuzztest.Seed{Name: l.name, Args: []any{makeTar(t, l.members, true)}})
	}
	tr := makeTar(t, layouts[0].members, false)
	tars = append(tars, fuzztest.Seed{Name: "truncated", Args: []any{tr[:1300]}})
	// Only zip holds an index of its entries.
	zips = append(zips, fuzztest.Seed{Name: "many-entries", Args: []any{makeZip(t, manyEntries(fuzzConfig.MaxArchiveEntries+1))}})
	zips = append(zips, fuzztest.Seed{Name: "zip64", Args: []any{asZip64(makeZip(t, layouts[0].members))}})
	zip := makeZip(t, layouts[0].members)
	zips = append(zips, fuzztest.Seed{Name: "truncated", Args: []any{zip[:len(zip)-30]}})
	var keys []fuzztest.Seed
	for i, k := range []string{"train/Gold Fish/a.png", "test/X/.DS_Store", "README", "val/X/a.png", "train/a.png",
		"train/X/y/z.png", "train//a.png", "train/../a.png", "train/X/..", "train/\xff/a.png", "train/X/\xc3(.png", "train/\x01/a.png"} {
		keys = append(keys, fuzztest.Seed{Name: fmt.Sprintf("key-%d", i), Args: []any{k}})
	}
	fuzztest.WriteSeeds(t, "FuzzObjectKey", keys)
	fuzztest.WriteSeeds(t, "FuzzZipArchive", zips)
	fuzztest.WriteSeeds(t, "FuzzTarArchive", tars)
	fuzztest.WriteSeeds(t, "FuzzTarGzArchive", tgzs)
}

// manyEntries is n empty files with short names.
func manyEntries(n int) []member {
	ms := make([]member, n)
	for i := range ms {
		ms[i] = member{name: fmt.Sprintf("t/%d", i)}
	}
	return ms
}
