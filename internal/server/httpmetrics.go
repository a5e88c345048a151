package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/prometheus/client_golang/prometheus"
)

// HTTPMetrics are the REST API's Prometheus series: each request counted
// and timed by method, route template and status code.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NoRoute is the route label of requests no REST route matched: the web
// console's files, unknown paths, and requests refused before routing (a
// credential in the URL, a body over the limit).
const NoRoute = "none"

// NewHTTPMetrics registers the REST API's series with reg.
func NewHTTPMetrics(reg prometheus.Registerer) (*HTTPMetrics, error) {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_http_requests_total",
			Help: "REST requests answered, by method, route template (" + NoRoute + ": no route matched) and HTTP status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoal_http_request_duration_seconds",
			Help:    "Time from a REST request's arrival to the end of its answer, by method and route template.",
			Buckets: LatencyBuckets,
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// routeKey holds the route SetHTTPRoute names for the request's metrics.
type routeKey struct{}

// SetHTTPRoute names the request's route template ("/v1/models/{name=*}",
// never the path, whose names and ids would make a series per request) in
// its metrics. The handler that matched the route calls it, on the
// request's goroutine.
func SetHTTPRoute(ctx context.Context, route string) {
	if r, _ := ctx.Value(routeKey{}).(*string); r != nil {
		*r = route
	}
}

// wrap counts and times next's requests; a nil m returns next.
func (m *HTTPMetrics) wrap(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := new(string)
		start := time.Now()
		// httpsnoop keeps the writer's optional interfaces (Flusher for
		// the streams, Hijacker), which a plain wrapper would hide.
		got := httpsnoop.CaptureMetrics(next, w, r.WithContext(context.WithValue(r.Context(), routeKey{}, route)))
		name := *route
		if name == "" {
			name = NoRoute
		}
		method := methodLabel(r.Method)
		m.requests.WithLabelValues(method, name, strconv.Itoa(got.Code)).Inc()
		m.duration.WithLabelValues(method, name).Observe(time.Since(start).Seconds())
	})
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
