package dataset

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// TestUploadArchiveExpandLimit uploads small archives whose files expand
// past dataset.max-archive-bytes: a gzip stream of zeros (skipped, since
// the file is hidden, but still decompressed) and many zip entries that
// are each within the image limit. Both are refused as a whole rather than
// read to the end.
func TestUploadArchiveExpandLimit(t *testing.T) {
	const limit = 64 << 10
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.MaxArchiveBytes = limit; c.MaxImageBytes = 16 << 10 }})
	e.create(t, "fish")
	zeros := bytes.Repeat([]byte{0}, 4*limit)
	var many []member
	for i := range 12 {
		many = append(many, member{name: fmt.Sprintf("train/X/%d.bin", i), data: make([]byte, 10<<10)})
	}
	ok := []member{{name: "train/X/a.png", data: imagingtest.PNG(4, 4, 1)}}
	tests := []struct {
		name string
		data []byte
		code codes.Code
	}{
		{"bomb.tar.gz", makeTar(t, append(ok, member{name: "train/X/.zeros", data: zeros}), true), codes.ResourceExhausted},
		{"many.zip", makeZip(t, append(ok, many...)), codes.ResourceExhausted},
		{"fits.tar.gz", makeTar(t, append(ok, many[:3]...), true), codes.OK},
		{"fits.zip", makeZip(t, append(ok, many[:3]...)), codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.data) >= limit {
				t.Fatalf("%s is %d bytes; the test wants it under the limit of %d", tt.name, len(tt.data), limit)
			}
			_, err := e.upload(t, append([]*datasetpb.UploadImagesRequest{header("fish")}, chunks(tt.name, tt.data, 4096)...)...)
			wantCode(t, "UploadImages("+tt.name+")", err, tt.code)
		})
	}
}

// TestTarWalkStopsWithImport checks that skipping a huge entry stops as
// soon as the import is cancelled (the client went away) instead of
// decompressing the rest of it.
func TestTarWalkStopsWithImport(t *testing.T) {
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "train/X/.huge", Mode: 0o644, Size: 1 << 40, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	ctx, cancel := context.WithCancel(t.Context())
	zeros := &cancelAfter{left: 1 << 20, cancel: cancel}
	src := tarSource{r: io.MultiReader(&hdr, zeros), maxBytes: 1 << 20, maxExpanded: 1 << 50}
	err := src.walk(ctx, func(entry) error { return nil }, func(string, string) error { return nil })
	if !errors.Is(err, context.Canceled) || zeros.read > 2<<20 {
		t.Fatalf("walk() = %v after reading %d bytes; want context.Canceled soon after 1 MiB", err, zeros.read)
	}
}

// cancelAfter gives zeros and cancels once it has given left bytes.
type cancelAfter struct {
	left, read int
	cancel     func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	clear(p)
	c.read += len(p)
	if c.left -= len(p); c.left <= 0 {
		c.cancel()
	}
	return len(p), nil
}

// TestZipEntryLimit checks that a zip listing more entries than
// dataset.max-archive-entries is refused before archive/zip indexes them,
// whatever count the end of its directory declares, zip64 included.
func TestZipEntryLimit(t *testing.T) {
	small := makeZip(t, manyEntries(12))
	lying := bytes.Clone(small)
	binary.LittleEndian.PutUint16(lying[len(lying)-22+8:], 1)  // entries on this disk
	binary.LittleEndian.PutUint16(lying[len(lying)-22+10:], 1) // entries in all
	zip64 := asZip64(small)
	tests := []struct {
		name  string
		data  []byte
		limit int
		code  codes.Code
	}{
		{"within", small, 12, codes.OK},
		{"over", small, 11, codes.ResourceExhausted},
		{"over, declaring 1", lying, 11, codes.ResourceExhausted},
		{"zip64 within", zip64, 12, codes.OK},
		{"zip64 over", zip64, 11, codes.ResourceExhausted},
	}
	for _, tt := range tests {
		cfg := fuzzConfig
		cfg.MaxArchiveEntries = tt.limit
		_, _, err := openArchive(bytes.NewReader(tt.data), int64(len(tt.data)), "a.zip", cfg)
		if status.Code(err) != tt.code {
			t.Errorf("openArchive(%s, limit %d) = %v; want %v", tt.name, tt.limit, err, tt.code)
		}
	}
}

// asZip64 rewrites the end of a small zip's central directory in the
// zip64 form that archives of more than 65,535 entries use: a zip64 end
// record and its locator, then the old record with its fields saturated.
func asZip64(z []byte) []byte {
	end := z[len(z)-22:]
	n := uint64(binary.LittleEndian.Uint16(end[10:]))
	dirSize, dirOffset := uint64(binary.LittleEndian.Uint32(end[12:])), uint64(binary.LittleEndian.Uint32(end[16:]))
	end64At := uint64(len(z) - 22)
	out := bytes.Clone(z[:end64At])
	rec := make([]byte, 56)
	copy(rec, "PK\x06\x06")
	binary.LittleEndian.PutUint64(rec[4:], 44) // size of the rest of the record
	binary.LittleEndian.PutUint16(rec[12:], 45)
	binary.LittleEndian.PutUint64(rec[24:], n)
	binary.LittleEndian.PutUint64(rec[32:], n)
	binary.LittleEndian.PutUint64(rec[40:], dirSize)
	binary.LittleEndian.PutUint64(rec[48:], dirOffset)
	loc := make([]byte, 20)
	copy(loc, "PK\x06\x07")
	binary.LittleEndian.PutUint64(loc[8:], end64At)
	binary.LittleEndian.PutUint32(loc[16:], 1) // disks
	saturated := bytes.Clone(end)
	binary.LittleEndian.PutUint16(saturated[8:], 0xffff)
	binary.LittleEndian.PutUint16(saturated[10:], 0xffff)
	binary.LittleEndian.PutUint32(saturated[12:], 0xffffffff)
	binary.LittleEndian.PutUint32(saturated[16:], 0xffffffff)
	out = append(out, rec...)
	out = append(out, loc...)
	return append(out, saturated...)
}

// An archive that breaks off midway (cut short, or expanding past its
// limit) is refused with what went wrong, and the answer says that the
// images before that point were added; an empty or misnamed archive says
// so.
func TestUploadArchiveBrokenOff(t *testing.T) {
	const limit = 64 << 10
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.MaxArchiveBytes = limit; c.MaxImageBytes = 16 << 10 }})
	good := member{name: "train/X/a.png", data: imagingtest.PNG(4, 4, 1)}
	second := member{name: "train/X/b.png", data: imagingtest.PNG(40, 40, 2)}
	whole := makeTar(t, []member{good, second}, false)
	gz := makeTar(t, []member{good, second}, true)
	zipped := makeZip(t, []member{good})
	tests := []struct {
		name, file string
		data       []byte
		code       codes.Code
		msg        []string
		added      int64
	}{
		{"tar cut inside its second member", "cut.tar", whole[:512+512+512+100], codes.InvalidArgument,
			[]string{"archive is truncated: it ends in \"train/X/b.png\"", "the 1 image read before that point were added"}, 1},
		{"tar.gz cut short", "cut.tar.gz", gz[:len(gz)-40], codes.InvalidArgument, []string{"archive is truncated"}, -1},
		{"expands past the limit", "bomb.tar.gz", makeTar(t, []member{good, {name: "train/X/.zeros", data: make([]byte, 4*limit)}}, true),
			codes.ResourceExhausted, []string{"expands to more than the limit", "the 1 image read before that point were added"}, 1},
		{"empty", "empty.zip", nil, codes.InvalidArgument, []string{`archive "empty.zip" is empty (0 bytes)`}, 0},
		{"a zip named .tar", "photos.tar", zipped, codes.InvalidArgument, []string{`archive "photos.tar" is a zip file, not a tar one: name it .zip`}, 0},
		{"a tar named .tar.gz", "photos.tar.gz", whole, codes.InvalidArgument, []string{"is a tar file, not a gzip one: name it .tar"}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := fmt.Sprintf("broken-%d", i)
			e.create(t, ds)
			msgs := []*datasetpb.UploadImagesRequest{header(ds)}
			if len(tt.data) == 0 {
				msgs = append(msgs, &datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_ArchiveChunk{ArchiveChunk: &datasetpb.ArchiveChunk{FileName: tt.file}}})
			} else {
				msgs = append(msgs, chunks(tt.file, tt.data, 4096)...)
			}
			_, err := e.upload(t, msgs...)
			wantCode(t, "UploadImages("+tt.file+")", err, tt.code)
			for _, m := range tt.msg {
				if !strings.Contains(status.Convert(err).Message(), m) {
					t.Errorf("UploadImages(%s) = %v; want it to say %q", tt.file, err, m)
				}
			}
			stats, serr := e.client.GetDatasetStats(t.Context(), &datasetpb.GetDatasetStatsRequest{Dataset: ds})
			if serr != nil || (tt.added >= 0 && stats.GetImageCount() != tt.added) {
				t.Errorf("dataset holds %d images (%v); want %d", stats.GetImageCount(), serr, tt.added)
			}
		})
	}
}
