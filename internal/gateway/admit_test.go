package gateway_test

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/server"
)

// TestAdmitFront: with the gateway's bound in front of the REST handler,
// a request to an inference route named plainly is refused (429 with
// Retry-After) before anything behind the bound runs; one whose path has
// escaped characters goes on to the gateway, whose routing matches it and
// whose middleware refuses it the same way. Both count in the metrics
// under the route template the gateway's route has, and the bound
// forwards requests again once the held one ends.
func TestAdmitFront(t *testing.T) {
	conn, err := grpc.NewClient("passthrough:///127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g, err := gateway.New(t.Context(), gateway.Conns{Inference: conn, MaxPredicts: 1})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics, err := server.NewHTTPMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var behind atomic.Int64 // requests that reached the handler behind the bound
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		behind.Add(1)
		g.ServeHTTP(w, r)
	})
	var cfg server.Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	srv := httptest.NewServer(server.NewHTTPHandler(cfg, server.HTTPOptions{API: api, Admit: g.Admit, Gatherer: reg, Metrics: metrics}))
	defer srv.Close()

	// The bound's one place, held by a /predict whose body never ends.
	body, hold := io.Pipe()
	held := make(chan error, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/predict", "multipart/form-data; boundary=x", body)
		if err == nil {
			resp.Body.Close()
		}
		held <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); behind.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the held request never reached the gateway")
		}
	}
	post := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	routes := map[string]string{
		"/predict":                         "/predict",
		"/v1/models/fish:predict":          "/v1/models/{model=*}:predict",
		"/v2/models/fish/infer":            "/v2/models/{name=*}/infer",
		"/v2/models/fish/versions/2/infer": "/v2/models/{name=*}/versions/{version=*}/infer",
	}
	escaped := map[string]string{
		"/v1/models/fi%73h:predict":          "/v1/models/fish:predict",
		"/v2/models/fi%73h/infer":            "/v2/models/fish/infer",
		"/v2/models/fish/versions/%32/infer": "/v2/models/fish/versions/2/infer",
	}
	for path := range routes {
		before := behind.Load()
		resp, b := post(path)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("POST %s with the bound full = %d %s (Retry-After %q); want 429 with Retry-After", path, resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("POST %s: the refusal lacks the security headers: %v", path, resp.Header)
		}
		if n := behind.Load() - before; n != 0 {
			t.Errorf("POST %s: refused after reaching the handler behind the bound; want it refused in front", path)
		}
	}
	for path, plain := range escaped {
		before := behind.Load()
		resp, b := post(path)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("POST %s with the bound full = %d %s; want 429 with Retry-After from the gateway's routing", path, resp.StatusCode, b)
		}
		if behind.Load() == before {
			t.Errorf("POST %s: refused in front; want it left to the gateway's routing (the path is not plain)", path)
		}
		if strings.HasPrefix(plain, "/v2/") != strings.Contains(b, `"error"`) {
			t.Errorf("POST %s: refusal %s; want the error form of %s", path, b, plain)
		}
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exposition, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for path, route := range routes {
		want := 1
		for _, plain := range escaped {
			if plain == path {
				want = 2
			}
		}
		series := fmt.Sprintf(`shoal_http_requests_total{code="429",method="POST",route=%q} %d`, route, want)
		if !strings.Contains(string(exposition), series+"\n") {
			t.Errorf("/metrics lacks %s", series)
		}
	}

	_ = hold.CloseWithError(io.ErrUnexpectedEOF)
	if err := <-held; err != nil {
		t.Logf("the held request: %v", err)
	}
	// The held request's client may see its error before the server's
	// handler has ended and given its place back.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		before := behind.Load()
		resp, b := post("/v1/models/fish:predict")
		if resp.StatusCode != http.StatusTooManyRequests && behind.Load() > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /v1/models/fish:predict 10 s after the held request ended = %d %s; want it forwarded", resp.StatusCode, b)
		}
	}
}
