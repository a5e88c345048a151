package bench

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeanPredictCall: the lean client posts the same multipart form as
// RESTPredictCall, reads 200s and 429s as it does, keeps at most its
// connections open and reuses them, and sends a request again on a new
// connection when a kept one was closed by the server while idle.
func TestLeanPredictCall(t *testing.T) {
	var (
		conns   atomic.Int64
		answers atomic.Int64
		mu      sync.Mutex
		open    = map[net.Conn]bool{}
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || r.URL.Path != "/predict" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		form, err := multipart.NewReader(r.Body, params["boundary"]).ReadForm(1 << 20)
		if err != nil || form.Value["model"][0] != "fish" || form.Value["version"][0] != "3" || len(form.File["file"]) != 1 {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		switch n := answers.Add(1); {
		case n%3 == 0:
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":8,"message":"busy"}`, http.StatusTooManyRequests)
		case n%7 == 0:
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, `{"timings_ms":{"compute":2.5,"batch_size":4}}`)
		default:
			_, _ = io.WriteString(w, `{"timings_ms":{"compute":2.5,"batch_size":4}}`)
		}
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			conns.Add(1)
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Start()
	defer srv.Close()

	const pool = 4
	call, closePool, err := LeanPredictCall(strings.TrimPrefix(srv.URL, "http://"), pool, 5*time.Second, "fish", 3, []byte("\xff\xd8 a jpeg"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outcomes := make([]atomic.Int64, numOutcomes)
	for range 16 {
		wg.Go(func() {
			for range 20 {
				tm, err := call(t.Context())
				o := Classify(err)
				outcomes[o].Add(1)
				if o == OK && (tm.Compute != 2500*time.Microsecond || tm.BatchSize != 4) {
					t.Errorf("timings %+v; want compute 2.5 ms, batch 4", tm)
				}
				if o != OK && o != Shed {
					t.Errorf("a call: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if ok, shed := outcomes[OK].Load(), outcomes[Shed].Load(); ok+shed != 320 || shed == 0 {
		t.Errorf("%d ok and %d 429 + Retry-After of 320 calls; want all answered, some refused", ok, shed)
	}
	// Connection: close every 7th answer: the pool dials again, but never
	// holds more than its size at once.
	mu.Lock()
	held := len(open)
	mu.Unlock()
	if held > pool {
		t.Errorf("%d connections open; want at most %d", held, pool)
	}
	if n := conns.Load(); n >= 320/2 {
		t.Errorf("%d connections for 320 calls; want them kept and reused", n)
	}

	// The server closes its idle connections: the next calls go again on
	// new ones rather than fail.
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	for i := range pool + 1 {
		if _, err := call(t.Context()); Classify(err) != OK && Classify(err) != Shed {
			t.Errorf("call %d after the server closed the idle connections: %v", i+1, err)
		}
	}
	// Closed, the pool dials again for the next call.
	closePool()
	if _, err := call(t.Context()); Classify(err) != OK && Classify(err) != Shed {
		t.Errorf("a call after the pool was closed: %v", err)
	}
	closePool()

	// A call with no free connection waits for one, and gives up with
	// its context.
	release := make(chan struct{})
	srvHeld := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srvHeld.Close()
	defer close(release)
	call, _, err = LeanPredictCall(strings.TrimPrefix(srvHeld.URL, "http://"), 1, 5*time.Second, "fish", 3, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = call(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := call(ctx); err != context.DeadlineExceeded {
		t.Errorf("a call with the only connection busy = %v; want its context's deadline", err)
	}
}
