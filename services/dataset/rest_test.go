package dataset

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// TestREST: through the gateway, an image's content is the body itself,
// with its content type, so a browser can show it; thumbnails are JPEG.
func TestREST(t *testing.T) {
	e := newEnv(t, envOpts{})
	png := imagingtest.PNG(100, 50, 1)
	writeFile(t, e.root, "p/train/Gold Fish/a.png", png)
	e.create(t, "pets")
	if r := e.importLocal(t, "pets", e.root+"/p"); r.err != nil {
		t.Fatal(r.err)
	}
	gw, err := gateway.New(t.Context(), gateway.Conns{Dataset: e.conn})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	resp, body := get("/v1/datasets/pets/images?label=Gold%20Fish")
	var list struct {
		Images []struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		} `json:"images"`
		TotalSize int64 `json:"totalSize"` // a 64-bit integer: a JSON number in the REST voice
	}
	if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 || len(list.Images) != 1 || list.TotalSize != 1 {
		t.Fatalf("GET images = %d %s (%v)", resp.StatusCode, body, err)
	}
	resp, body = get(list.Images[0].URL)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(body, png) {
		t.Errorf("GET %s = %d %q, %d bytes; want the PNG itself", list.Images[0].URL, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	resp, body = get(list.Images[0].URL + "?thumbnail_size=32")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.HasPrefix(body, []byte{0xff, 0xd8}) {
		t.Errorf("GET thumbnail = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get("/v1/datasets/pets/images/999/content"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET missing image = %d; want 404", resp.StatusCode)
	}
	resp, body = get("/v1/datasets/pets/stats")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"label":"Gold Fish"`)) {
		t.Errorf("GET stats = %d %s", resp.StatusCode, body)
	}
}
