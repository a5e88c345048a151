package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMeasureRefusals: against a server of one place, the measurement
// holds it with a body that never ends, sees every request of its open
// loop refused, and reports CPU per request from the server's metrics;
// against a server that stops refusing, it fails naming the outcomes.
func TestMeasureRefusals(t *testing.T) {
	for _, refuseAll := range []bool{true, false} {
		var held, served atomic.Int64
		mux := http.NewServeMux()
		mux.HandleFunc("POST /predict", func(w http.ResponseWriter, r *http.Request) {
			if held.CompareAndSwap(0, 1) {
				defer held.Store(0)
				_, _ = io.Copy(io.Discard, r.Body) // until the client goes
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			if refuseAll || served.Add(1) < 5 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "full", http.StatusTooManyRequests)
				return
			}
			http.Error(w, "no such model", http.StatusNotFound)
		})
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "process_cpu_seconds_total %g\n", float64(time.Now().UnixNano())/1e9)
		})
		srv := httptest.NewServer(mux)
		cfg := RefusalConfig{HTTPAddr: strings.TrimPrefix(srv.URL, "http://"), Rate: 200, Duration: 500 * time.Millisecond, ImageSize: 32, Connections: 8}
		r, err := MeasureRefusals(t.Context(), cfg)
		srv.Close()
		if refuseAll {
			if err != nil {
				t.Fatalf("MeasureRefusals = %v", err)
			}
			if r.Loop.Counts[Shed] != r.Loop.Offered || r.Loop.Offered != 100 {
				t.Errorf("refused %d of %d; want all 100", r.Loop.Counts[Shed], r.Loop.Offered)
			}
			// The fake's CPU clock is the wall clock: about 5 ms a request.
			if r.Server < 3*time.Millisecond || r.Server > 20*time.Millisecond || r.Generator <= 0 {
				t.Errorf("server %v, generator %v a request; want about 5 ms and some", r.Server, r.Generator)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "were refused") {
			t.Errorf("MeasureRefusals against a server that stopped refusing = %v; want an error saying so", err)
		}
	}
}
