package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// TestInferenceBound: with as many inference requests in flight as the
// bound, over any of the routes that run a model, the next one on each is
// answered 429 with Retry-After at once (in the Open Inference Protocol's
// error form on /v2); other routes are not bounded; once the held ones end,
// requests are forwarded again.
func TestInferenceBound(t *testing.T) {
	const most = 2
	entered, release := make(chan struct{}), make(chan struct{})
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		runtime.WithMiddlewares(newInferenceBound(most).middleware(func() *runtime.ServeMux { return mux })),
		runtime.WithErrorHandler(retryAfterOnOverload))
	held := func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}
	routes := []string{"/predict", "/v1/models/{model}:predict", "/v2/models/{model}/infer"}
	for _, p := range routes {
		if err := mux.HandlePath(http.MethodPost, p, held); err != nil {
			t.Fatal(err)
		}
	}
	if err := mux.HandlePath(http.MethodGet, "/v1/models", func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		w.WriteHeader(http.StatusOK)
	}); err != nil {
		t.Fatal(err)
	}
	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader("{}")))
		return rec
	}

	done := make(chan *httptest.ResponseRecorder, most)
	for _, path := range []string{"/predict", "/v2/models/fish/infer"} {
		go func() { done <- do(http.MethodPost, path) }()
		<-entered
	}
	for _, path := range []string{"/predict", "/v1/models/fish:predict", "/v2/models/fish/infer"} {
		rec := do(http.MethodPost, path)
		if rec.Code != http.StatusTooManyRequests {
			t.Errorf("POST %s with %d in flight = %d %s; want 429", path, most, rec.Code, rec.Body)
			continue
		}
		if rec.Header().Get("Retry-After") == "" {
			t.Errorf("POST %s refused without Retry-After", path)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("POST %s refusal %q is not JSON: %v", path, rec.Body, err)
		}
		_, oipForm := body["error"]
		if wantOIP := strings.HasPrefix(path, "/v2/"); oipForm != wantOIP {
			t.Errorf("POST %s refusal = %s; want the %s error form", path, rec.Body, map[bool]string{true: "protocol's {\"error\"}", false: "gateway's {code, message}"}[wantOIP])
		}
	}
	if rec := do(http.MethodGet, "/v1/models"); rec.Code != http.StatusOK {
		t.Errorf("GET /v1/models with the inference bound full = %d; want 200: only inference is bounded", rec.Code)
	}
	close(release)
	for range most {
		if rec := <-done; rec.Code != http.StatusOK {
			t.Errorf("a held request = %d %s; want 200", rec.Code, rec.Body)
		}
	}
	go func() { <-entered }()
	if rec := do(http.MethodPost, "/v1/models/fish:predict"); rec.Code != http.StatusOK {
		t.Errorf("POST /v1/models/fish:predict after the held ones ended = %d %s; want 200", rec.Code, rec.Body)
	}
}

// A refused request's client still writing a large body reads the 429, on
// a connection that stays open for its next request: the gateway reads and
// drops the rest of the body after answering, rather than close a
// connection with bytes unread, which resets it under the client's write.
func TestInferenceBoundRefusalReachesALargeBody(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		runtime.WithMiddlewares(newInferenceBound(1).middleware(func() *runtime.ServeMux { return mux })),
		runtime.WithErrorHandler(retryAfterOnOverload))
	if err := mux.HandlePath(http.MethodPost, "/predict", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Query().Get("hold") != "" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	held := make(chan error, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/predict?hold=1", "application/octet-stream", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		held <- err
	}()
	<-entered

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	body := bytes.Repeat([]byte{'x'}, 16<<20) // far over what socket buffers hold
	for i := range 3 {
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) { reused = c.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodPost, srv.URL+"/predict", bytes.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d with the bound full: %v; want a 429", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("request %d = %d %s (Retry-After %q); want 429 with Retry-After", i+1, resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
		if i > 0 && !reused {
			t.Errorf("request %d came on a new connection; want the refused one's, kept open", i+1)
		}
	}
	close(release)
	if err := <-held; err != nil {
		t.Errorf("the held request: %v", err)
	}
}
