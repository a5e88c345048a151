package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalml/shoal/internal/server"
)

// TestHTTPMetrics: REST requests are counted by the route template the API
// names, never their path, and with the status their client got, also
// when refused before any route matched.
func TestHTTPMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := server.NewHTTPMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/models/") {
			server.SetHTTPRoute(r.Context(), "/v1/models/{name=*}")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.(http.Flusher).Flush() // the streams' writer keeps flushing
		w.Write([]byte("console"))
	})
	h := server.NewHTTPHandler(defaultConfig(), server.HTTPOptions{API: api, Gatherer: reg, Metrics: m})
	for _, target := range []string{"/v1/models/fish", "/v1/models/bream", "/index.html", "/v1/models/x?access_token=secret"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", target, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil)) // not the API's

	for series, want := range map[string]float64{
		`shoal_http_requests_total{code="404",method="GET",route="/v1/models/{name=*}"}`:      2,
		`shoal_http_requests_total{code="200",method="GET",route="none"}`:                     1,
		`shoal_http_requests_total{code="400",method="GET",route="none"}`:                     1,
		`shoal_http_request_duration_seconds_count{method="GET",route="/v1/models/{name=*}"}`: 2,
	} {
		if got := metricValue(t, reg, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
}
