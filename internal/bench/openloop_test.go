package bench

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestScheduledAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rate float64
		i    int
		want time.Duration
	}{
		{100, 0, 0},
		{100, 1, 10 * time.Millisecond},
		{100, 250, 2500 * time.Millisecond},
		{3, 1_000_000, 333333*time.Second + 333333333}, // no drift over a long run
	} {
		if got := ScheduledAt(start, tc.rate, tc.i).Sub(start); got != tc.want {
			t.Errorf("ScheduledAt(start, %g, %d) = start+%v; want start+%v", tc.rate, tc.i, got, tc.want)
		}
	}
	for _, tc := range []struct {
		rate float64
		d    time.Duration
		want int
	}{{100, time.Second, 100}, {2.5, time.Second, 3}, {1000, 10 * time.Millisecond, 10}, {50, 0, 0}} {
		if got := RequestsIn(tc.rate, tc.d); got != tc.want {
			t.Errorf("RequestsIn(%g, %v) = %d; want %d", tc.rate, tc.d, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Outcome
	}{
		{nil, OK},
		{&HTTPStatusError{Code: http.StatusTooManyRequests, RetryAfter: "1"}, Shed},
		{&HTTPStatusError{Code: http.StatusTooManyRequests}, ShedNoRetryAfter},
		{&HTTPStatusError{Code: http.StatusServiceUnavailable, RetryAfter: "1"}, ServerError},
		{&HTTPStatusError{Code: http.StatusInternalServerError}, ServerError},
		{&HTTPStatusError{Code: http.StatusBadRequest}, OtherStatus},
		{context.DeadlineExceeded, Failed},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}

// TestOpenLoopDoesNotWaitForAnswers holds every answer until all requests
// of the schedule have been sent: a closed loop would send only as many as
// it has callers and then stall; the open loop sends them all on time.
// Latencies run from the scheduled time, so the held requests report the
// wait they were held.
func TestOpenLoopDoesNotWaitForAnswers(t *testing.T) {
	const rate, n = 2000.0, 100
	d := time.Duration(float64(n) / rate * float64(time.Second))
	var (
		mu      sync.Mutex
		started int
		release = make(chan struct{})
	)
	call := func(ctx context.Context) (Timings, error) {
		mu.Lock()
		started++
		i := started
		if started == n {
			close(release)
		}
		mu.Unlock()
		<-release
		switch {
		case i%10 == 0:
			return Timings{}, &HTTPStatusError{Code: http.StatusTooManyRequests, RetryAfter: "1"}
		case i%25 == 2:
			return Timings{}, &HTTPStatusError{Code: http.StatusBadGateway}
		}
		return Timings{}, nil
	}
	s := OpenLoop(context.Background(), rate, d, n, call)
	if s.Offered != n || s.MaxOut != n {
		t.Fatalf("OpenLoop(%g/s, %v) offered %d, at most %d outstanding; want %d and %d", rate, d, s.Offered, s.MaxOut, n, n)
	}
	want := [numOutcomes]int{OK: 86, Shed: 10, ServerError: 4}
	if s.Counts != want {
		t.Errorf("OpenLoop counts = %v; want %v", s.Counts, want)
	}
	// The first request was scheduled at 0 and held until the last one's
	// schedule, (n-1)/rate later.
	if held := time.Duration(float64(n-1) / rate * float64(time.Second)); s.P99 < held {
		t.Errorf("OpenLoop p99 = %v; want at least %v (the first request was held that long after its schedule)", s.P99, held)
	}
	if !errors.As(s.First[ServerError], new(*HTTPStatusError)) {
		t.Errorf("OpenLoop first 5xx = %v; want the 502", s.First[ServerError])
	}
}
