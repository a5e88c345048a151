package webui_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shoalml/shoal/internal/webui"
)

func TestHandler(t *testing.T) {
	app := fstest.MapFS{
		"index.html":          {Data: []byte("<!doctype html><div id=root></div>")},
		"assets/index-abc.js": {Data: []byte("console.log(1)")},
		"favicon.svg":         {Data: []byte("<svg/>")},
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, `{"api":"`+r.Method+" "+r.URL.Path+`"}`)
	})
	h := webui.Handler(app, api)

	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
		wantCache    string
	}{
		{"GET", "/", 200, "<div id=root>", "no-cache"},
		{"GET", "/index.html", 200, "<div id=root>", "no-cache"},
		{"HEAD", "/", 200, "", "no-cache"},
		{"GET", "/assets/index-abc.js", 200, "console.log(1)", "public, max-age=31536000, immutable"},
		{"GET", "/favicon.svg", 200, "<svg/>", "no-cache"},
		// Client-side routes get the index page.
		{"GET", "/models/fashion", 200, "<div id=root>", "no-cache"},
		{"GET", "/training", 200, "<div id=root>", "no-cache"},
		{"GET", "/assets", 200, "<div id=root>", "no-cache"},
		// A missing file is a 404, not the index.
		{"GET", "/assets/index-old.js", 404, "404 page not found", ""},
		// The API keeps its paths, whatever the method.
		{"GET", "/v1/models", 418, `{"api":"GET /v1/models"}`, ""},
		{"GET", "/v1/nope", 418, `{"api":"GET /v1/nope"}`, ""},
		{"GET", "/v2", 418, `{"api":"GET /v2"}`, ""},
		{"GET", "/v2/health/ready", 418, `{"api":"GET /v2/health/ready"}`, ""},
		{"POST", "/predict", 418, `{"api":"POST /predict"}`, ""},
		{"GET", "/predict", 418, `{"api":"GET /predict"}`, ""},
		{"POST", "/", 418, `{"api":"POST /"}`, ""},
		{"PUT", "/models", 418, `{"api":"PUT /models"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("%s %s: status = %d; want %d", tt.method, tt.path, rec.Code, tt.wantStatus)
			}
			if body := rec.Body.String(); !strings.Contains(body, tt.wantBody) || (tt.method == "HEAD" && body != "") {
				t.Errorf("%s %s: body = %q; want it to contain %q", tt.method, tt.path, body, tt.wantBody)
			}
			if got := rec.Header().Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("%s %s: Cache-Control = %q; want %q", tt.method, tt.path, got, tt.wantCache)
			}
		})
	}
}

func TestHandlerNotBuilt(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := webui.Handler(nil, api)
	for _, tt := range []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/", 404, "make build"},
		{"/datasets", 404, "make build"},
		{"/v1/models", 418, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
			t.Errorf("GET %s = %d %q; want %d containing %q", tt.path, rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
		}
	}
}

// TestApp checks the embedded build is either whole or absent: a build
// without index.html would serve assets but no page.
func TestApp(t *testing.T) {
	app := webui.App()
	if app == nil {
		t.Log("the console is not built into this test binary (scripts/build-ui.sh)")
		return
	}
	if err := fstest.TestFS(app, "index.html"); err != nil {
		t.Fatalf("embedded build: %v", err)
	}
}

func TestHandlerGzip(t *testing.T) {
	js := strings.Repeat("export const fish = 'shoal';\n", 200)
	app := fstest.MapFS{
		"index.html":          {Data: []byte("<!doctype html><div id=root></div>")},
		"assets/index-abc.js": {Data: []byte(js)},
		"assets/fish.png":     {Data: []byte("\x89PNG\r\n\x1a\n" + strings.Repeat("\x00", 500))},
	}
	h := webui.Handler(app, http.NotFoundHandler())
	get := func(p, acceptEncoding string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", p, nil)
		if acceptEncoding != "" {
			r.Header.Set("Accept-Encoding", acceptEncoding)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	rec := get("/assets/index-abc.js", "gzip, deflate, br")
	if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET js accepting gzip = %d, Content-Encoding %q, Content-Type %q; want 200, gzip, text/javascript",
			rec.Code, rec.Header().Get("Content-Encoding"), rec.Header().Get("Content-Type"))
	}
	if rec.Body.Len() >= len(js)/4 {
		t.Errorf("gzip body is %d bytes for %d of script; want it compressed", rec.Body.Len(), len(js))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || string(got) != js {
		t.Errorf("gunzipped body = %d bytes, %v; want the script", len(got), err)
	}
	if got := rec.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
		t.Errorf("gzip Cache-Control = %q; want the assets' immutable caching", got)
	}
	if rec.Header().Get("Vary") != "Accept-Encoding" {
		t.Errorf("Vary = %q; want Accept-Encoding", rec.Header().Get("Vary"))
	}

	for _, ae := range []string{"", "identity", "gzip;q=0, br"} {
		rec := get("/assets/index-abc.js", ae)
		if rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != js || rec.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("GET js with Accept-Encoding %q: Content-Encoding %q, %d bytes, Vary %q; want the plain script, varying on Accept-Encoding",
				ae, rec.Header().Get("Content-Encoding"), rec.Body.Len(), rec.Header().Get("Vary"))
		}
	}
	if rec := get("/assets/fish.png", "gzip"); rec.Header().Get("Content-Encoding") != "" || rec.Body.Len() != 508 {
		t.Errorf("GET png: Content-Encoding %q, %d bytes; want the file as it is", rec.Header().Get("Content-Encoding"), rec.Body.Len())
	}
}
