package server_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalml/shoal/internal/server"
)

func defaultConfig() server.Config {
	var c server.Config
	c.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	return c
}

func TestProbes(t *testing.T) {
	ready := false
	dbErr := errors.New("dial tcp 10.1.2.3:5432: connection refused")
	h := server.NewHTTPHandler(defaultConfig(), server.HTTPOptions{
		Gatherer: prometheus.NewRegistry(),
		Ready:    func() bool { return ready },
		Checks: []server.Check{
			{Name: "db", Check: func(context.Context) error { return dbErr }},
			{Name: "blob", Check: func(context.Context) error { return nil }},
		},
	})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d; want 200 (liveness does not depend on readiness)", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "starting or shutting down") {
		t.Errorf("/readyz before ready = %d %q; want 503", code, body)
	}
	ready = true
	code, body := get("/readyz")
	if code != 503 || !strings.Contains(body, "db: failing") || !strings.Contains(body, "blob: ok") {
		t.Errorf("/readyz with db down = %d %q; want 503 naming db", code, body)
	}
	if strings.Contains(body, "10.1.2.3") {
		t.Errorf("/readyz = %q; leaks the database address", body)
	}
	dbErr = nil
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz all ok = %d %q; want 200", code, body)
	}
	if code, _ := get("/metrics"); code != 200 {
		t.Errorf("/metrics = %d; want 200", code)
	}
}

func TestBodyLimitAndCORS(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxMessageBytes = 8 << 20
	cfg.CORSOrigins = "http://localhost:5173"
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		}
	})
	h := server.NewHTTPHandler(cfg, server.HTTPOptions{API: api, Gatherer: prometheus.NewRegistry(), ClientStreams: []string{"POST /v1/images:upload"}})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/datasets", strings.NewReader(strings.Repeat("x", 9<<20))))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST 9 MiB with an 8 MiB limit = %d; want 413", rec.Code)
	}
	// The Open Inference Protocol's routes answer in its error form.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(strings.Repeat("x", 9<<20))))
	if rec.Code != http.StatusRequestEntityTooLarge || rec.Body.String() != `{"error":"request body of 9437184 bytes is over the limit of 8388608 bytes"}` {
		t.Errorf("POST 9 MiB to /v2 with an 8 MiB limit = %d %s; want 413 {\"error\": ...}", rec.Code, rec.Body)
	}
	// A client stream may be longer than the limit; each message may not
	// be over twice it.
	line := strings.Repeat("x", 15<<20) + "\n"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/images:upload", strings.NewReader(line+line+line)))
	if rec.Code != http.StatusOK {
		t.Errorf("POST a 45 MiB stream of 15 MiB lines with an 8 MiB limit = %d %s; want 200", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/images:upload", strings.NewReader(line+strings.Repeat("y", 17<<20))))
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "a message of the request stream is over 16777216 bytes") {
		t.Errorf("POST a stream with a 17 MiB line = %d %s; want the line refused", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("PUT", "/v1/images:upload", strings.NewReader(strings.Repeat("x", 9<<20))))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("PUT 9 MiB to the stream's path (another route) = %d; want 413", rec.Code)
	}

	req := httptest.NewRequest("OPTIONS", "/v1/datasets", nil)
	req.Header.Set("Origin", "http://localhost:5173")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
		t.Errorf("preflight from allowed origin = %d %v; want 204 with Allow-Origin", rec.Code, rec.Header())
	}
	req.Header.Set("Origin", "http://evil.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from other origin got Allow-Origin %q; want none", rec.Header().Get("Access-Control-Allow-Origin"))
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	for _, on := range []bool{false, true} {
		cfg := defaultConfig()
		cfg.Pprof = on
		h := server.NewHTTPHandler(cfg, server.HTTPOptions{Gatherer: prometheus.NewRegistry(), API: api})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/goroutine?debug=1", nil))
		if got := rec.Code == 200 && strings.Contains(rec.Body.String(), "goroutine profile"); got != on {
			t.Errorf("--http.pprof=%v: /debug/pprof/goroutine = %d; served %v, want %v", on, rec.Code, got, on)
		}
	}
}

// TestStreamMessageLimit checks that the bound of a client stream applies
// to each message, not to each line: a message spread over short lines,
// or blank lines piling up, are refused like a long line, while messages
// within the bound pass however they are laid out.
func TestStreamMessageLimit(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxMessageBytes = 100 // each message at most 200 bytes
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		}
	})
	h := server.NewHTTPHandler(cfg, server.HTTPOptions{API: api, Gatherer: prometheus.NewRegistry(), ClientStreams: []string{"POST /v1/images:upload"}})
	msg := `{"file":{"label":"Fish","content":"` + strings.Repeat("A", 120) + `"}}` + "\n"
	lines := "{\n" + strings.Repeat(`"label": "Fish",`+"\n", 20) + "\"x\": 1}\n"
	tests := []struct {
		name string
		body string
		want int
	}{
		{"messages within the bound", strings.Repeat(msg, 50), http.StatusOK},
		{"two messages on one line", strings.TrimSuffix(msg, "\n") + msg, http.StatusOK},
		{"a string with escaped quotes and brackets", `{"a":"\"}]\\"}` + strings.Repeat(msg, 3), http.StatusOK},
		{"a message over short lines", lines, http.StatusRequestEntityTooLarge},
		{"blank lines", msg + strings.Repeat("\n", 300) + msg, http.StatusRequestEntityTooLarge},
		{"a long line", strings.Repeat("x", 300) + "\n", http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/images:upload", strings.NewReader(tt.body)))
		if rec.Code != tt.want {
			t.Errorf("POST %s = %d %s; want %d", tt.name, rec.Code, rec.Body, tt.want)
		}
	}
}

// A request body that stalls is cut off after --http.read-body-timeout: a
// whole body within it, an upload stream's each read; a body that keeps
// arriving within the bound is read whole, and a handler still working
// after reading it is not cut off.
func TestSlowBodies(t *testing.T) {
	cfg := defaultConfig()
	cfg.ReadBodyTimeout = 300 * time.Millisecond
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if errors.Is(err, server.ErrBodyTimeout) {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Work on past the deadline: the read deadline was lifted.
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusInternalServerError)
			return
		case <-time.After(2 * cfg.ReadBodyTimeout):
		}
		fmt.Fprintf(w, "%d bytes", len(b))
	})
	srv := httptest.NewServer(server.NewHTTPHandler(cfg, server.HTTPOptions{API: api, Gatherer: prometheus.NewRegistry(), ClientStreams: []string{"POST /v1/images:upload"}}))
	t.Cleanup(srv.Close)

	// trickle sends n pieces of the body, one each every, then stalls
	// (stall) or ends.
	post := func(path string, n int, every time.Duration, stall bool) (int, string) {
		t.Helper()
		pr, pw := io.Pipe()
		go func() {
			for range n {
				time.Sleep(every)
				if _, err := pw.Write([]byte(`{"x":1}` + "\n")); err != nil {
					return
				}
			}
			if !stall {
				pw.Close()
			}
		}()
		t.Cleanup(func() { pw.Close() })
		resp, err := http.Post(srv.URL+path, "application/json", pr)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		name, path string
		n          int
		every      time.Duration
		stall      bool
		code       int
		msg        string
	}{
		{"a body that stalls", "/v1/datasets", 2, 10 * time.Millisecond, true, 408, "not whole within 300ms"},
		{"a body that trickles past the bound", "/v1/datasets", 20, 50 * time.Millisecond, false, 408, "not whole within 300ms"},
		{"a body within the bound", "/v1/datasets", 2, 10 * time.Millisecond, false, 200, "16 bytes"},
		{"a stream that keeps arriving", "/v1/images:upload", 12, 50 * time.Millisecond, false, 200, "96 bytes"},
		{"a stream that stalls", "/v1/images:upload", 3, 50 * time.Millisecond, true, 408, "no byte of it for 300ms"},
	} {
		code, body := post(tt.path, tt.n, tt.every, tt.stall)
		if code != tt.code || !strings.Contains(body, tt.msg) {
			t.Errorf("%s: POST %s = %d %q; want %d %q", tt.name, tt.path, code, body, tt.code, tt.msg)
		}
	}
}
