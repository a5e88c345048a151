package bench

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of 4 unsorted", ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 0.99, 99 * time.Millisecond},
		{"p99 of 10 is the largest", ms(seq(10)...), 0.99, 10 * time.Millisecond},
		{"p100", ms(3, 9, 5), 1, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.in, tt.q); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v; want %v", tt.in, tt.q, got, tt.want)
			}
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

// TestLoad runs the closed loop against a function that counts its calls
// and never runs more than the concurrency at once.
func TestLoad(t *testing.T) {
	var calls, running, most atomic.Int64
	fail := errors.New("refused")
	call := func(ctx context.Context) (Timings, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		if calls.Add(1)%10 == 0 {
			return Timings{}, fail
		}
		return Timings{Preprocess: time.Millisecond, Queue: 2 * time.Millisecond, Compute: 3 * time.Millisecond, BatchSize: 4}, nil
	}
	// The server's clock: 3 ms of CPU per call.
	server := func(context.Context) (time.Duration, error) {
		return time.Duration(calls.Load()) * 3 * time.Millisecond, nil
	}
	s := Load(context.Background(), 3, 2, 0, 50*time.Millisecond, call, server)
	if s.Concurrency != 3 || s.Requests == 0 || s.Requests != int(calls.Load()) {
		t.Fatalf("Load() = %+v after %d calls; want every call counted at concurrency 3", s, calls.Load())
	}
	if most.Load() > 3 {
		t.Errorf("%d calls ran at once; want at most 3", most.Load())
	}
	if s.Errors != s.Requests/10 || !errors.Is(s.FirstError, fail) {
		t.Errorf("errors = %d (first %v) of %d requests; want every 10th", s.Errors, s.FirstError, s.Requests)
	}
	ok := s.Requests - s.Errors
	if want := float64(2*ok) / s.Elapsed.Seconds(); s.ImagesPerSecond != want {
		t.Errorf("ImagesPerSecond = %v; want %v (2 images × %d successes / %v)", s.ImagesPerSecond, want, ok, s.Elapsed)
	}
	if s.Preprocess != time.Millisecond || s.Queue != 2*time.Millisecond || s.Compute != 3*time.Millisecond || s.MeanBatch != 4 {
		t.Errorf("mean timings = %v/%v/%v batch %v; want 1ms/2ms/3ms batch 4", s.Preprocess, s.Queue, s.Compute, s.MeanBatch)
	}
	// Every call cost 3 ms and nine in ten answered 2 images.
	if want := time.Duration(float64(3*time.Millisecond) * float64(s.Requests) / float64(2*ok)); s.ServerCPU != want {
		t.Errorf("ServerCPU = %v per image; want %v (3 ms × %d calls / %d images)", s.ServerCPU, want, s.Requests, 2*ok)
	}
	if s.ClientCPU <= 0 {
		t.Errorf("ClientCPU = %v; want this process's CPU per image", s.ClientCPU)
	}
}

func TestServerCPU(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			io.WriteString(w, "go_goroutines 7\n")
			return
		}
		io.WriteString(w, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.34\nprocess_open_fds 9\n")
	}))
	defer srv.Close()
	if got, err := ServerCPU(srv.Client(), srv.URL+"/metrics")(t.Context()); err != nil || got != 12340*time.Millisecond {
		t.Errorf("ServerCPU() = %v, %v; want 12.34s", got, err)
	}
	if got, err := ServerCPU(srv.Client(), srv.URL+"/other")(t.Context()); err == nil {
		t.Errorf("ServerCPU() of a page without the metric = %v, nil; want an error", got)
	}
}
