// Package webui serves the web console: the production build of frontend/,
// embedded into the binary, at / on the same HTTP server as the REST API.
package webui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// dist holds app/ (the Vite build, present once scripts/build-ui.sh ran)
// and a README that keeps the folder embeddable before that.
//
//go:embed all:dist
var dist embed.FS

// App returns the embedded build, or nil when the binary was built
// without it.
func App() fs.FS {
	app, err := fs.Sub(dist, "dist/app")
	if err != nil {
		return nil
	}
	if _, err := fs.Stat(app, "index.html"); err != nil {
		return nil
	}
	return app
}

// apiPrefixes are the paths the console never answers, so a mistyped API
// call gets the API's JSON 404, not the console's page.
var apiPrefixes = []string{"/v1/", "/v2/", "/predict", "/openapi.json"}

// Handler serves app's files and, for any other GET of a path that is not
// a file (a client-side route such as /models/fashion), app's index.html;
// API paths and every other method go to api. Files under /assets/ carry
// a content hash in their names and are cached for a year; index.html is
// revalidated on every load so a new build is picked up at once. Text
// files (scripts, styles, SVG, JSON) go gzip-compressed to clients that
// accept it; they are compressed once, here. A nil app answers a page
// saying the console was not built.
func Handler(app fs.FS, api http.Handler) http.Handler {
	files := http.FileServerFS(orEmpty(app))
	gz := compressAll(app)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || isAPI(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		if app == nil {
			notBuilt(w)
			return
		}
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		switch info, err := fs.Stat(app, name); {
		case name == "" || name == "index.html":
			serveIndex(w, r, app)
		case err == nil && !info.IsDir():
			if strings.HasPrefix(name, "assets/") {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				w.Header().Set("Cache-Control", "no-cache")
			}
			if z, ok := gz[name]; ok {
				w.Header().Add("Vary", "Accept-Encoding")
				if acceptsGzip(r) {
					w.Header().Set("Content-Type", z.contentType)
					w.Header().Set("Content-Encoding", "gzip")
					http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(z.data))
					return
				}
			}
			files.ServeHTTP(w, r)
		case path.Ext(name) != "" && errors.Is(err, fs.ErrNotExist):
			// A missing file (an asset of an older build, a typo) is a
			// 404, not the index page in its place.
			http.NotFound(w, r)
		default:
			serveIndex(w, r, app)
		}
	})
}

// compressible are the extensions worth gzip: text. Images and fonts are
// compressed already.
var compressible = map[string]bool{".js": true, ".mjs": true, ".css": true, ".svg": true, ".json": true, ".map": true, ".txt": true}

type gzipped struct {
	data        []byte
	contentType string
}

// compressAll gzips app's compressible files (index.html aside: it is
// small and served by serveIndex), keeping those that shrink.
func compressAll(app fs.FS) map[string]gzipped {
	out := map[string]gzipped{}
	if app == nil {
		return out
	}
	_ = fs.WalkDir(app, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !compressible[path.Ext(name)] {
			return nil
		}
		data, err := fs.ReadFile(app, name)
		if err != nil {
			return nil
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(data)
		if zw.Close() != nil || b.Len() >= len(data) {
			return nil
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = http.DetectContentType(data)
		}
		out[name] = gzipped{data: b.Bytes(), contentType: ct}
		return nil
	})
	return out
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (present, and not with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, found := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !found {
			return true
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(q), 64)
		return err == nil && v > 0
	}
	return false
}

func isAPI(p string) bool {
	if p == "/v2" {
		return true
	}
	for _, prefix := range apiPrefixes {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func serveIndex(w http.ResponseWriter, r *http.Request, app fs.FS) {
	index, err := fs.ReadFile(app, "index.html")
	if err != nil {
		http.Error(w, "web console: index.html unreadable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(index)
}

const notBuiltPage = `<!doctype html>
<meta charset="utf-8">
<title>Shoal</title>
<h1>Shoal</h1>
<p>The web console is not built into this binary: run <code>make build</code>
(or <code>scripts/build-ui.sh</code>, then <code>go build ./cmd/shoal</code>).
The REST API is served under <code>/v1</code> and <code>/v2</code>.</p>
`

func notBuilt(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(notBuiltPage))
}

type emptyFS struct{}

func (emptyFS) Open(string) (fs.File, error) { return nil, fs.ErrNotExist }

func orEmpty(app fs.FS) fs.FS {
	if app == nil {
		return emptyFS{}
	}
	return app
}
