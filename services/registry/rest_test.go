package registry_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// TestREST: through the gateway, an upload is newline-delimited JSON
// CreateVersionRequest messages, and the download is newline-delimited
// chunks.
func TestREST(t *testing.T) {
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	gw, err := gateway.New(t.Context(), gateway.Conns{Registry: e.conn})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	artifact := classifier(5, 1)
	var body bytes.Buffer
	for _, m := range []*registrypb.CreateVersionRequest{
		{Payload: &registrypb.CreateVersionRequest_Spec{Spec: spec("fish", fish...)}},
		{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: artifact[:len(artifact)/2]}},
		{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: artifact[len(artifact)/2:]}},
	} {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		body.Write(append(b, '\n'))
	}
	resp, err := http.Post(srv.URL+"/v1/versions:upload", "application/x-ndjson", &body)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var created registrypb.CreateVersionResponse
	if resp.StatusCode != http.StatusOK || protojson.Unmarshal(got, &created) != nil || created.GetVersion().GetArtifact().GetSha256() != sha(artifact) {
		t.Fatalf("POST /v1/versions:upload = %d %s; want version 1 with the artifact's sha256", resp.StatusCode, got)
	}

	resp, err = http.Get(srv.URL + "/v1/models/fish/versions/1/artifact")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var download bytes.Buffer
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var line struct {
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("download line %q: %v", sc.Text(), err)
		}
		var chunk registrypb.DownloadArtifactResponse
		if err := protojson.Unmarshal(line.Result, &chunk); err != nil {
			t.Fatal(err)
		}
		download.Write(chunk.GetChunk())
	}
	if !bytes.Equal(download.Bytes(), artifact) {
		t.Errorf("GET .../artifact = %d bytes; want the %d uploaded", download.Len(), len(artifact))
	}

	resp, err = http.Get(srv.URL + "/v1/models/fish/aliases/production")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(got), "no alias") {
		t.Errorf("GET unknown alias = %d %s; want 404", resp.StatusCode, got)
	}
}
