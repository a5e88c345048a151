package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
		runtime.WithMiddlewares(boundFor(newInferenceBound(most, 0), &mux).middleware),
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
// A small body is read first and the refusal sent with its length; every
// refusal keeps the connection. The requests go over one raw connection,
// so what is checked is the server's behaviour, not a client's reuse rules
// (Go's transport drops a connection whose request write ends more than
// 50 ms after its answer was read, which a slow test machine can make so).
func TestInferenceBoundRefusalReachesALargeBody(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		runtime.WithMiddlewares(boundFor(newInferenceBound(1, 0), &mux).middleware),
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

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(conn)
	// A large body (read after the refusal is sent), a photo's (read
	// before it, the refusal then written at once with its length) and a
	// body of unknown length (chunked; read after).
	for _, c := range []struct {
		name    string
		size    int
		chunked bool
	}{{"16 MiB", 16 << 20, false}, {"22 KiB", 22 << 10, false}, {"22 KiB chunked", 22 << 10, true}} {
		body := bytes.Repeat([]byte{'x'}, c.size)
		for i := range 3 {
			var req bytes.Buffer
			fmt.Fprintf(&req, "POST /predict HTTP/1.1\r\nHost: shoal\r\nContent-Type: application/octet-stream\r\n")
			if c.chunked {
				fmt.Fprintf(&req, "Transfer-Encoding: chunked\r\n\r\n")
				for rest := body; len(rest) > 0; {
					n := min(len(rest), 4096)
					fmt.Fprintf(&req, "%x\r\n%s\r\n", n, rest[:n])
					rest = rest[n:]
				}
				req.WriteString("0\r\n\r\n")
			} else {
				fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n", len(body))
				req.Write(body)
			}
			// Written while the answer is read: the server answers a
			// large body before reading it.
			wrote := make(chan error, 1)
			go func() { _, err := conn.Write(req.Bytes()); wrote <- err }()
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s body, request %d with the bound full: %v; want a 429 on the connection of the requests before it", c.name, i+1, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := <-wrote; err != nil {
				t.Fatalf("%s body, request %d: writing its body: %v; want the server to read it all", c.name, i+1, err)
			}
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s body, request %d = %d %s (Retry-After %q); want 429 with Retry-After", c.name, i+1, resp.StatusCode, b, resp.Header.Get("Retry-After"))
			}
			if !json.Valid(b) || !bytes.Contains(b, []byte("inference requests are in flight")) {
				t.Errorf("%s body, request %d: refusal %q; want the gateway's JSON error naming the bound", c.name, i+1, b)
			}
			if resp.ContentLength != int64(len(b)) {
				t.Errorf("%s body, request %d: Content-Length %d for a %d-byte refusal; want it sent with its length", c.name, i+1, resp.ContentLength, len(b))
			}
			if resp.Close {
				t.Fatalf("%s body, request %d: the refusal closes the connection; want it kept open", c.name, i+1)
			}
		}
	}
	close(release)
	if err := <-held; err != nil {
		t.Errorf("the held request: %v", err)
	}
}

// TestInferenceBoundFollowsLatencyTarget: with a latency target, answers
// slower than the target, from the gateway's receipt, shrink the requests
// let through down to one, and the refusal names that number; Inference's
// own refusals (429) are not answers the target judges, and leave the
// bound as it is.
func TestInferenceBoundFollowsLatencyTarget(t *testing.T) {
	const target = 10 * time.Millisecond // windows of 50 ms
	// answer lets requests through one at a time for 600 ms
	// of wall time, each answered with status after took.
	answer := func(b *inferenceBound, status int, took time.Duration) {
		for start := time.Now(); time.Since(start) < 600*time.Millisecond; {
			if b.enter() {
				b.leave(status, took)
			}
		}
	}

	slow := newInferenceBound(8, target)
	answer(slow, http.StatusOK, 3*target)
	if got := slow.current(); got != 1 {
		t.Fatalf("current() after slow answers = %d; want 1", got)
	}
	if !slow.enter() {
		t.Fatal("enter() with none in flight = false; want the one place")
	}
	if slow.enter() {
		t.Error("enter() with one in flight = true; want a refusal at a bound of 1")
	}

	refused := newInferenceBound(8, target)
	answer(refused, http.StatusTooManyRequests, 3*target)
	if got := refused.current(); got != 8 {
		t.Errorf("current() after Inference's refusals = %d; want 8, unchanged", got)
	}

	// Over HTTP: the refusal says how many are let through now.
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		runtime.WithMiddlewares(boundFor(slow, &mux).middleware),
		runtime.WithErrorHandler(retryAfterOnOverload))
	if err := mux.HandlePath(http.MethodPost, "/predict", func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		w.WriteHeader(http.StatusOK)
	}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/predict", strings.NewReader("{}")))
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "1 inference requests are in flight") {
		t.Errorf("POST /predict with the one place taken = %d %s; want 429 naming a bound of 1", rec.Code, rec.Body)
	}
}

// boundFor gives b the error form of the mux *mux will hold.
func boundFor(b *inferenceBound, mux **runtime.ServeMux) *inferenceBound {
	b.mux = func() *runtime.ServeMux { return *mux }
	return b
}

// TestFrontRoute: only a POST whose path plainly names one inference
// route, each name one whole segment, is bounded in front of the gateway.
func TestFrontRoute(t *testing.T) {
	for target, want := range map[string]string{
		"/predict":                           routePredict,
		"/v1/models/fish:predict":            routeModelPredict,
		"/v2/models/fish/infer":              routeInfer,
		"/v2/models/fish/versions/2/infer":   routeVersionInfer,
		"/predict/":                          "",
		"/v1/models/:predict":                "",
		"/v1/models/a/b:predict":             "",
		"/v1/models/fish":                    "",
		"/v2/models//infer":                  "",
		"/v2/models/a/b/infer":               "",
		"/v2/models/fish/versions//infer":    "",
		"/v2/models/fish/versions/2/3/infer": "",
		"/v2/models/fish/ready":              "",
		"/v1/models/a%2Fb:predict":           "",
		"/v1/models/fi%73h:predict":          "",
	} {
		r := httptest.NewRequest(http.MethodPost, target, nil)
		if got, _ := frontRoute(r); got != want {
			t.Errorf("frontRoute(POST %s) = %q; want %q", target, got, want)
		}
	}
	if got, _ := frontRoute(httptest.NewRequest(http.MethodGet, "/predict", nil)); got != "" {
		t.Errorf("frontRoute(GET /predict) = %q; want none", got)
	}
}
