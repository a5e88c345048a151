package badinput

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/badinput"
)

// TestVanishingClients cuts clients off midway through what they send:
// uploads (REST and gRPC, files and archives), a model upload and
// predictions. The process stays up, stores nothing of them, removes what
// it spooled, frees the slots they held and ends the goroutines that
// served them.
func TestVanishingClients(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where uploads are spooled
	s := startServer(t, func(c *app.Config) { c.GatewayMaxPredicts = 1 })
	createDataset(t, s, "gone")
	ctx := t.Context()
	// The first prediction loads the model, and a first call of each route
	// connects the gateway to its service (connections are made on first
	// use); from then on, goroutines are what the process needs at rest.
	if code := predictForm200(t, s, badinput.GoodPNG(1)); code != http.StatusOK {
		t.Fatalf("POST /predict = %d", code)
	}
	for _, path := range []string{"/v1/images:upload", "/v1/versions:upload", "/v2/models/fish/versions/1/infer"} {
		if r, _, err := s.postJSON(ctx, path, "application/json", strings.NewReader("{}"), nil); err != nil || r.httpStatus != http.StatusBadRequest {
			t.Fatalf("POST %s {} = %d %q, %v; want 400", path, r.httpStatus, r.msg, err)
		}
	}
	before, err := s.inventory(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	goroutines := runtime.NumGoroutine()

	archive, err := badinput.Pack(".zip", []badinput.Entry{{Path: "train/Cat/a.png", Data: badinput.GoodPNG(2)}, {Path: "train/Cat/b.png", Data: badinput.GoodPNG(3)}})
	if err != nil {
		t.Fatal(err)
	}
	img := badinput.GoodPNG(4)
	fileLine := fmt.Sprintf(`{"file":{"split":"train","label":"Cat","fileName":"a.png","content":"%s"}}`+"\n", base64.StdEncoding.EncodeToString(img))
	chunkLine := fmt.Sprintf(`{"archiveChunk":{"fileName":"a.zip","data":"%s"}}`+"\n", base64.StdEncoding.EncodeToString(archive[:len(archive)/2]))
	predict, ct := predictBody(t, img)
	for _, c := range []struct {
		name, path, contentType string
		body                    []byte
	}{
		{"a REST upload of files, inside its first file", "/v1/images:upload", "application/json", []byte(`{"header":{"dataset":"gone"}}` + "\n" + fileLine[:len(fileLine)/2])},
		{"a REST upload of an archive, between its chunks", "/v1/images:upload", "application/json", []byte(`{"header":{"dataset":"gone"}}` + "\n" + chunkLine)},
		{"a REST model upload, inside its chunk", "/v1/versions:upload", "application/json", []byte(`{"spec":{"model":"fish"}}` + "\n" + `{"chunk":"` + base64.StdEncoding.EncodeToString(badinput.Model.Bytes())[:200])},
		{"POST /predict, inside its body", "/predict?model=fish&version=1", ct, predict[:len(predict)/2]},
		{"POST /v2/.../infer, inside its body", "/v2/models/fish/versions/1/infer", "application/json", []byte(`{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["`)},
	} {
		if strings.HasPrefix(c.path, "/predict") || strings.HasPrefix(c.path, "/v2/") {
			// The one inference slot is free again only once the server has
			// seen the previous vanished request end; until then a request
			// is refused at once with 429, which this probe tells apart from
			// the 400 its empty body gets when admitted.
			waitFor(t, "the inference slot to be free", func() bool {
				r, _, err := s.postJSON(ctx, "/v2/models/fish/versions/1/infer", "application/json", strings.NewReader("{}"), nil)
				return err == nil && r.httpStatus == http.StatusBadRequest
			})
		}
		t.Run(c.name, func(t *testing.T) { vanishHTTP(t, s, c.path, c.contentType, c.body) })
	}
	t.Run("a gRPC upload of an archive, between its chunks", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		stream, err := s.dataset.UploadImages(cctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: "gone"}}})
		stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_ArchiveChunk{ArchiveChunk: &datasetpb.ArchiveChunk{FileName: "a.zip", Data: archive[:len(archive)/2]}}})
		waitFor(t, "the archive to be spooled", func() bool { return spooled(t, tmp) > 0 })
		cancel()
		if _, err := stream.CloseAndRecv(); status.Code(err) != codes.Canceled {
			t.Errorf("CloseAndRecv() after cancel = %v; want Canceled", err)
		}
	})
	t.Run("a gRPC model upload, between its chunks", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		stream, err := s.registry.CreateVersion(cctx)
		if err != nil {
			t.Fatal(err)
		}
		model := badinput.Model.Bytes()
		stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{Model: "fish", InputSpec: modelInput()}}})
		stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: model[:len(model)/2]}})
		waitFor(t, "the upload to be received", func() bool { return spooled(t, s.cfg.Registry.UploadDir) > 0 })
		cancel()
		if _, err := stream.CloseAndRecv(); status.Code(err) != codes.Canceled {
			t.Errorf("CloseAndRecv() after cancel = %v; want Canceled", err)
		}
	})

	// Afterwards: alive, the one inference slot free, nothing stored,
	// nothing left spooled, the goroutines back to what they were.
	if err := s.alive(ctx); err != nil {
		t.Fatal(err)
	}
	if code := predictForm200(t, s, img); code != http.StatusOK {
		t.Errorf("POST /predict after the vanished ones = %d; want 200: their slot is free", code)
	}
	after, err := s.inventory(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for tbl, n := range after.rows {
		if n != before.rows[tbl] {
			t.Errorf("table %s: %d rows after the vanished clients; want %d", tbl, n, before.rows[tbl])
		}
	}
	waitFor(t, "spooled uploads to be removed", func() bool { return spooled(t, tmp)+spooled(t, s.cfg.Registry.UploadDir) == 0 })
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, fmt.Sprintf("the goroutines to come back to %d (+5)", goroutines), func() bool { return runtime.NumGoroutine() <= goroutines+5 }, func() {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Logf("goroutines now:\n%s", b.String())
	})
}

// vanishHTTP sends the start of a request whose Content-Length says more,
// waits until the server has read it (its answer could come only later),
// and closes the connection.
func vanishHTTP(t *testing.T, s *server, path, contentType string, part []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.http, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: shoal\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path, s.token, contentType, len(part)+1<<20)
	if _, err := conn.Write(part); err != nil {
		t.Fatal(err)
	}
	// Nothing comes back before the body is whole; a short read bound
	// shows the server is waiting on the rest rather than refusing.
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
		t.Errorf("POST %s answered %q before its body was whole", path, line)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("POST %s: reading the answer: %v; want nothing yet", path, err)
	}
}

// spooled counts the uploads being received in dir: the Dataset service's
// spooled archives and the Registry's models.
func spooled(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "shoal-upload-") || strings.HasPrefix(e.Name(), "shoal-registry-upload-") {
			n++
		}
	}
	return n
}

// waitFor waits up to 30 s for cond, checking it as the server works; on
// failure it calls explain (if any) to say what is in the way.
func waitFor(t *testing.T, what string, cond func() bool, explain ...func()) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, e := range explain {
				e()
			}
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
