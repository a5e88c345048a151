package dataset

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// member is one archive entry; link makes it a symlink, dir a folder.
type member struct {
	name      string
	data      []byte
	dir, link bool
}

func archiveMembers() []member {
	return []member{
		{name: "NOTICE", data: []byte("attribution")},
		{name: "train/", dir: true},
		{name: "train/Gold Fish/", dir: true},
		{name: "train/Gold Fish/a.png", data: imagingtest.PNG(10, 10, 1)},
		{name: "./train/Gold Fish/b.jpg", data: imagingtest.JPEG(10, 10, 2)},
		{name: "test/Shark/c.png", data: imagingtest.PNG(10, 10, 3)},
		{name: "test/Empty/", dir: true},
		{name: "../evil/train/X/x.png", data: imagingtest.PNG(4, 4, 4)},
		{name: "/abs/train/X/y.png", data: imagingtest.PNG(4, 4, 5)},
		{name: "train/Shark/link.png", link: true},
		{name: "train/Shark/junk.png", data: []byte("junk")},
		{name: "other/Shark/z.png", data: imagingtest.PNG(4, 4, 6)},
		// Hidden files and folders are passed over as a server folder's
		// walk passes them over.
		{name: ".git/HEAD", data: []byte("ref: refs/heads/main")},
		{name: "train/.ipynb_checkpoints/a-checkpoint.png", data: imagingtest.PNG(4, 4, 7)},
		{name: "train/Gold Fish/.DS_Store", data: []byte("Bud1")},
	}
}

var wantArchiveRejections = map[string]string{
	"../evil/train/X/x.png": "unsafe archive path",
	"/abs/train/X/y.png":    "unsafe archive path",
	"train/Shark/link.png":  "links in archives are not imported",
	"train/Shark/junk.png":  "not an image",
	"other/":                "unknown split folder",
	"test/Empty/":           "empty label folder",
}

func makeZip(t *testing.T, ms []member) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range ms {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		switch {
		case m.dir:
			h.SetMode(0o755 | 1<<31) // fs.ModeDir
		case m.link:
			h.SetMode(0o777 | 1<<27) // fs.ModeSymlink
			m.data = []byte("/etc/passwd")
		default:
			h.SetMode(0o644)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func makeTar(t *testing.T, ms []member, gz bool) []byte {
	var b bytes.Buffer
	var gw *gzip.Writer
	tw := tar.NewWriter(&b)
	if gz {
		gw = gzip.NewWriter(&b)
		tw = tar.NewWriter(gw)
	}
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}
		switch {
		case m.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case m.link:
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, "/etc/passwd", 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if !m.dir && !m.link {
			tw.Write(m.data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if gz {
		gw.Close()
	}
	return b.Bytes()
}

func (e *env) upload(t *testing.T, msgs ...*datasetpb.UploadImagesRequest) (*datasetpb.UploadImagesResponse, error) {
	t.Helper()
	stream, err := e.client.UploadImages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break // the server ended the stream; CloseAndRecv says why
		}
	}
	return stream.CloseAndRecv()
}

func header(ds string) *datasetpb.UploadImagesRequest {
	return &datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: ds}}}
}

// chunks splits an archive into several messages, as a client would.
func chunks(name string, data []byte, size int) []*datasetpb.UploadImagesRequest {
	var out []*datasetpb.UploadImagesRequest
	for i := 0; i < len(data); i += size {
		c := &datasetpb.ArchiveChunk{Data: data[i:min(i+size, len(data))]}
		if i == 0 {
			c.FileName = name
		}
		out = append(out, &datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_ArchiveChunk{ArchiveChunk: c}})
	}
	return out
}

func TestUploadArchives(t *testing.T) {
	ms := archiveMembers()
	tests := []struct {
		name string
		data []byte
	}{
		{"fish.zip", makeZip(t, ms)},
		{"fish.tar", makeTar(t, ms, false)},
		{"fish.tar.gz", makeTar(t, ms, true)},
		{"FISH.TGZ", makeTar(t, ms, true)},
	}
	// Every SQL driver; on the servers, blobs go to the real S3 server too.
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		var e *env
		if cfg.Driver == db.SQLite {
			e = newEnv(t, envOpts{db: cfg})
		} else {
			e, _ = s3Env(t, cfg)
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := fmt.Sprintf("fish-%d", i)
				e.create(t, name)
				uploadArchive(t, e, name, tt.name, tt.data)
			})
		}
	})
}

// uploadArchive uploads one archive of archiveMembers twice and checks the
// rejections, the counts and that the second upload adds nothing.
func uploadArchive(t *testing.T, e *env, dataset, fileName string, data []byte) {
	t.Helper()
	msgs := append([]*datasetpb.UploadImagesRequest{header(dataset)}, chunks(fileName, data, 700)...)
	resp, err := e.upload(t, msgs...)
	if err != nil {
		t.Fatalf("UploadImages = %v", err)
	}
	got := map[string]string{}
	for _, r := range resp.GetRejections() {
		got[r.GetPath()] = r.GetReason()
	}
	for p, want := range wantArchiveRejections {
		if !strings.Contains(got[p], want) {
			t.Errorf("rejection of %q = %q; want %q", p, got[p], want)
		}
	}
	if len(got) != len(wantArchiveRejections) {
		t.Errorf("rejections = %v; want %d", got, len(wantArchiveRejections))
	}
	if c := resp.GetCounts(); c.GetAdded() != 3 || c.GetRejected() != int64(len(wantArchiveRejections)) {
		t.Errorf("counts = %v; want 3 added, %d rejected", c, len(wantArchiveRejections))
	}
	again, err := e.upload(t, msgs...)
	if err != nil || again.GetCounts().GetAdded() != 0 || again.GetCounts().GetDuplicates() != 3 {
		t.Errorf("second upload = %v, %v; want 0 added, 3 duplicates", again.GetCounts(), err)
	}
}

func TestUploadFiles(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.create(t, "fish")
	file := func(split datasetpb.Split, label, name string, data []byte) *datasetpb.UploadImagesRequest {
		return &datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
			Split: split, Label: label, FileName: name, Content: data}}}
	}
	train, test := datasetpb.Split_SPLIT_TRAIN, datasetpb.Split_SPLIT_TEST
	resp, err := e.upload(t, header("fish"),
		file(train, "Gold Fish", "a.png", imagingtest.PNG(5, 5, 1)),
		file(test, "Shark", "dir/b.jpg", imagingtest.JPEG(5, 5, 2)),
		file(train, "Gold Fish", "a-again.png", imagingtest.PNG(5, 5, 1)),
		file(datasetpb.Split_SPLIT_UNSPECIFIED, "Shark", "c.png", imagingtest.PNG(5, 5, 3)),
		file(train, "", "d.png", imagingtest.PNG(5, 5, 4)),
		file(train, "a/b", "e.png", imagingtest.PNG(5, 5, 5)),
		file(train, "Shark", "f.png", []byte("nope")),
	)
	want := &datasetpb.ImportCounts{Seen: 7, Added: 2, Duplicates: 1, Rejected: 4}
	if err != nil || !equalCounts(resp.GetCounts(), want) {
		t.Fatalf("UploadImages = %v, %v; want %v", resp, err, want)
	}
	list, err := e.client.ListImages(t.Context(), &datasetpb.ListImagesRequest{Dataset: "fish", Label: "Shark"})
	if err != nil || len(list.GetImages()) != 1 || list.GetImages()[0].GetFileName() != "b.jpg" {
		t.Fatalf("ListImages(Shark) = %v, %v; want b.jpg", list, err)
	}

	tests := []struct {
		name string
		msgs []*datasetpb.UploadImagesRequest
		code codes.Code
	}{
		{"no header", []*datasetpb.UploadImagesRequest{file(train, "A", "a.png", imagingtest.PNG(2, 2, 1))}, codes.InvalidArgument},
		{"missing dataset", []*datasetpb.UploadImagesRequest{header("nope")}, codes.NotFound},
		{"unknown archive kind", append([]*datasetpb.UploadImagesRequest{header("fish")}, chunks("x.rar", []byte("data"), 10)...), codes.InvalidArgument},
		{"corrupt zip", append([]*datasetpb.UploadImagesRequest{header("fish")}, chunks("x.zip", []byte("not a zip"), 10)...), codes.InvalidArgument},
		{"corrupt tar.gz", append([]*datasetpb.UploadImagesRequest{header("fish")}, chunks("x.tar.gz", []byte("not gzip"), 10)...), codes.InvalidArgument},
		{"files then archive", []*datasetpb.UploadImagesRequest{header("fish"), file(train, "A", "a.png", imagingtest.PNG(2, 2, 9)), chunks("x.zip", []byte("z"), 10)[0]}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.upload(t, tt.msgs...)
			wantCode(t, "UploadImages", err, tt.code)
		})
	}
}

func TestUploadArchiveTooLarge(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.MaxArchiveBytes = 1000 }})
	e.create(t, "fish")
	msgs := append([]*datasetpb.UploadImagesRequest{header("fish")}, chunks("big.tar", make([]byte, 5000), 600)...)
	_, err := e.upload(t, msgs...)
	wantCode(t, "UploadImages(big archive)", err, codes.ResourceExhausted)
}

// A file name is held to the same rules in an upload as in a folder, an
// archive or a bucket: a name longer than the column holds is refused by
// name, on every database (PostgreSQL and MySQL would otherwise fail the
// whole batch's insert).
func TestUploadLongFileName(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, envOpts{db: cfg})
		e.create(t, "fish")
		file := func(name string, data []byte) *datasetpb.UploadImagesRequest {
			return &datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
				Split: datasetpb.Split_SPLIT_TRAIN, Label: "Cat", FileName: name, Content: data}}}
		}
		long := strings.Repeat("n", maxFileNameSize+1)
		resp, err := e.upload(t, header("fish"), file("a.png", imagingtest.PNG(5, 5, 1)), file(long, imagingtest.PNG(5, 5, 2)))
		want := &datasetpb.ImportCounts{Seen: 2, Added: 1, Rejected: 1}
		if err != nil || !equalCounts(resp.GetCounts(), want) {
			t.Fatalf("UploadImages(a name of %d bytes) = %v, %v; want %v", len(long), resp, err, want)
		}
		if r := resp.GetRejections(); len(r) != 1 || r[0].GetReason() != "file name too long" {
			t.Errorf("rejections = %v; want the long name refused as too long", r)
		}
	})
}

// Each archive member that is not a file says what it is: a link
// (wherever it sits, a link to a folder included), a named pipe, a device;
// an unsafe name says what makes it unsafe; and an archive of nothing but
// unsafe names names them.
func TestUploadArchiveEntryKinds(t *testing.T) {
	e := newEnv(t, envOpts{})
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	png := imagingtest.PNG(6, 6, 1)
	for _, h := range []*tar.Header{
		{Name: "train/Cat/a.png", Typeflag: tar.TypeReg, Size: int64(len(png))},
		{Name: "train/Cat/pipe.png", Typeflag: tar.TypeFifo},
		{Name: "train/Cat/null.png", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
		{Name: "train/Cat/disk.png", Typeflag: tar.TypeBlock},
		{Name: "train/Dog", Typeflag: tar.TypeSymlink, Linkname: "Cat"},
		{Name: "train/Cat/hard.png", Typeflag: tar.TypeLink, Linkname: "train/Cat/a.png"},
		{Name: `train\Cat\b.png`, Typeflag: tar.TypeReg, Size: int64(len(png))},
		{Name: "C:/train/Cat/c.png", Typeflag: tar.TypeReg, Size: int64(len(png))},
	} {
		h.Mode = 0o644
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(png)
		}
	}
	tw.Close()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, m := range []struct {
		name string
		mode fs.FileMode
	}{{"train/Cat/a.png", 0o644}, {"train/Cat/pipe.png", fs.ModeNamedPipe}, {"train/Cat/null.png", fs.ModeDevice | fs.ModeCharDevice}, {"train/Cat/sock.png", fs.ModeSocket}} {
		h := &zip.FileHeader{Name: m.name}
		h.SetMode(m.mode)
		w, _ := zw.CreateHeader(h)
		if m.mode.IsRegular() {
			w.Write(png)
		}
	}
	zw.Close()
	for _, tt := range []struct {
		file string
		data []byte
		want map[string]string
	}{
		{"kinds.tar", tb.Bytes(), map[string]string{
			"train/Cat/pipe.png": "not a regular file (a named pipe)",
			"train/Cat/null.png": "not a regular file (a character device)",
			"train/Cat/disk.png": "not a regular file (a block device)",
			"train/Dog":          "links in archives are not imported",
			"train/Cat/hard.png": "links in archives are not imported",
			`train\Cat\b.png`:    "unsafe archive path (a backslash, which Windows reads as a folder separator)",
			"C:/train/Cat/c.png": "unsafe archive path (a drive letter)",
		}},
		{"kinds.zip", zb.Bytes(), map[string]string{
			"train/Cat/pipe.png": "not a regular file (a named pipe)",
			"train/Cat/null.png": "not a regular file (a character device)",
			"train/Cat/sock.png": "not a regular file (a socket)",
		}},
	} {
		name := strings.ReplaceAll(tt.file, ".", "-")
		e.create(t, name)
		resp, err := e.upload(t, append([]*datasetpb.UploadImagesRequest{header(name)}, chunks(tt.file, tt.data, 1<<20)...)...)
		if err != nil || resp.GetCounts().GetAdded() != 1 {
			t.Fatalf("UploadImages(%s) = %v, %v; want 1 added", tt.file, resp.GetCounts(), err)
		}
		got := map[string]string{}
		for _, r := range resp.GetRejections() {
			got[r.GetPath()] = r.GetReason()
		}
		for p, want := range tt.want {
			if !strings.HasPrefix(got[p], want) {
				t.Errorf("%s: rejection of %q = %q; want %q", tt.file, p, got[p], want)
			}
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: rejections %q; want %d", tt.file, got, len(tt.want))
		}
	}

	e.create(t, "unsafe")
	_, err := e.upload(t, append([]*datasetpb.UploadImagesRequest{header("unsafe")}, chunks("evil.tar", makeTar(t, []member{{name: "../evil.png", data: png}}, false), 1<<20)...)...)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "it holds ../evil.png (unsafe)") {
		t.Errorf("UploadImages(only ../evil.png) = %v; want InvalidArgument naming the unsafe entry", err)
	}
}

// A zip member that cannot be read says why: a checksum that does not
// match, a compression method Shoal does not read, damaged compressed
// data.
func TestUploadUnreadableZipMembers(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.create(t, "fish")
	png := imagingtest.PNG(6, 6, 1)
	other := imagingtest.PNG(6, 6, 2)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	add := func(name string, method uint16, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	add("train/Cat/a.png", zip.Store, png)
	add("train/Cat/flipped.png", zip.Store, other)
	zw.Close()
	data := zb.Bytes()
	i := bytes.Index(data, other)
	data[i+len(other)/2] ^= 0xff // its CRC-32 no longer matches
	// A member claiming LZMA (method 14), which archive/zip does not read.
	var lz bytes.Buffer
	zw = zip.NewWriter(&lz)
	zw.RegisterCompressor(14, func(w io.Writer) (io.WriteCloser, error) { return nopCloser{w}, nil })
	add("train/Cat/b.png", zip.Store, imagingtest.PNG(6, 6, 3))
	add("train/Cat/lzma.png", 14, png)
	zw.Close()
	for _, tt := range []struct {
		file, path, reason string
		data               []byte
	}{
		{"flipped.zip", "train/Cat/flipped.png", "the archive entry is corrupt: its checksum does not match", data},
		{"lzma.zip", "train/Cat/lzma.png", "compressed with a method Shoal does not read", lz.Bytes()},
	} {
		resp, err := e.upload(t, append([]*datasetpb.UploadImagesRequest{header("fish")}, chunks(tt.file, tt.data, 1<<20)...)...)
		if err != nil || resp.GetCounts().GetAdded() != 1 || len(resp.GetRejections()) != 1 ||
			resp.GetRejections()[0].GetPath() != tt.path || !strings.Contains(resp.GetRejections()[0].GetReason(), tt.reason) {
			t.Errorf("UploadImages(%s) = %v, %v; want 1 added and %s refused with %q", tt.file, resp, err, tt.path, tt.reason)
		}
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
