package dataset

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// An empty file in a client upload once reached an import worker with no
// bytes and no way to open any, and its panic took the whole process down.
// Each upload path must refuse it with a reason and import the rest; the
// service must still answer afterwards.

const emptyReason = "empty file (0 bytes)"

func TestUploadEmptyFileGRPC(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.create(t, "fish")
	file := func(name string, data []byte) *datasetpb.UploadImagesRequest {
		return &datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
			Split: datasetpb.Split_SPLIT_TRAIN, Label: "Gold Fish", FileName: name, Content: data}}}
	}
	resp, err := e.upload(t, header("fish"), file("empty.jpg", nil), file("ok.png", imagingtest.PNG(4, 4, 1)))
	want := &datasetpb.ImportCounts{Seen: 2, Added: 1, Rejected: 1}
	if err != nil || !equalCounts(resp.GetCounts(), want) {
		t.Fatalf("UploadImages(empty.jpg, ok.png) = %v, %v; want %v", resp.GetCounts(), err, want)
	}
	if r := resp.GetRejections(); len(r) != 1 || !strings.Contains(r[0].GetReason(), emptyReason) {
		t.Errorf("UploadImages rejections = %v; want one saying %q", r, emptyReason)
	}

	// An empty member of a tar archive takes the archive path.
	archive := makeTar(t, []member{{name: "train/Gold Fish/empty.jpg", data: []byte{}}}, false)
	resp, err = e.upload(t, append([]*datasetpb.UploadImagesRequest{header("fish")}, chunks("x.tar", archive, 1000)...)...)
	if err != nil || resp.GetCounts().GetRejected() != 1 {
		t.Fatalf("UploadImages(tar with an empty member) = %v, %v; want 1 rejected", resp.GetCounts(), err)
	}
	// And of a zip archive, whose members workers open themselves.
	archive = makeZip(t, []member{{name: "train/Gold Fish/empty.jpg", data: []byte{}}})
	resp, err = e.upload(t, append([]*datasetpb.UploadImagesRequest{header("fish")}, chunks("x.zip", archive, 1000)...)...)
	if err != nil || resp.GetCounts().GetRejected() != 1 {
		t.Fatalf("UploadImages(zip with an empty member) = %v, %v; want 1 rejected", resp.GetCounts(), err)
	}
	if _, err := e.client.GetDatasetStats(t.Context(), &datasetpb.GetDatasetStatsRequest{Dataset: "fish"}); err != nil {
		t.Fatalf("GetDatasetStats after the uploads = %v; the service must still answer", err)
	}
}

func TestUploadEmptyFileCLI(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.create(t, "fish")
	dir := t.TempDir()
	writeFile(t, dir, "train/Gold Fish/empty.jpg", nil)
	writeFile(t, dir, "train/Gold Fish/ok.png", imagingtest.PNG(4, 4, 2))
	var out, progress bytes.Buffer
	err := cli.Run(t.Context(), []string{"dataset", "upload", "fish", dir, "--addr", e.addr}, cli.Env{Stdout: &out, Stderr: &progress})
	if err != nil {
		t.Fatalf("shoal dataset upload fish DIR = %v; want success with one file refused", err)
	}
	for _, want := range []string{filepath.ToSlash("empty.jpg") + ": " + emptyReason, "seen 2: added 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("shoal dataset upload printed:\n%s\nwant it to contain %q", out.String(), want)
		}
	}
}

func TestUploadEmptyFileREST(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.create(t, "fish")
	gw, err := gateway.New(t.Context(), gateway.Conns{Dataset: e.conn})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	line := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	body := line(map[string]any{"header": map[string]any{"dataset": "fish"}}) +
		line(map[string]any{"file": map[string]any{"split": "SPLIT_TRAIN", "label": "Gold Fish", "fileName": "empty.jpg", "content": ""}}) +
		line(map[string]any{"file": map[string]any{"split": "SPLIT_TRAIN", "label": "Gold Fish", "fileName": "ok.png", "content": imagingtest.PNG(4, 4, 3)}})
	resp, err := http.Post(srv.URL+"/v1/images:upload", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(emptyReason)) || !bytes.Contains(got, []byte(`"added":1`)) {
		t.Fatalf("POST /v1/images:upload with an empty file = %d %s; want 200, one added, the empty one refused", resp.StatusCode, got)
	}
}
