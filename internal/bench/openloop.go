package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Outcome is how the server answered one request of an open loop.
type Outcome int

// The outcomes the soak tells apart.
const (
	// OK is an answer with a prediction.
	OK Outcome = iota
	// Shed is 429 (RESOURCE_EXHAUSTED) with a Retry-After header: the
	// answer an overloaded server owes its clients.
	Shed
	// ShedNoRetryAfter is 429 without Retry-After.
	ShedNoRetryAfter
	// ServerError is any 5xx.
	ServerError
	// OtherStatus is any other status (4xx but 429).
	OtherStatus
	// Failed is a request that got no HTTP answer: a transport error or
	// the client's own deadline.
	Failed
	// Dropped is a request the generator could not send because too many
	// were outstanding (Config.MaxOutstanding).
	Dropped
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "429 + Retry-After", "429 without Retry-After", "5xx", "other status", "no answer", "not sent"}

func (o Outcome) String() string { return outcomeNames[o] }

// HTTPStatusError is a non-200 answer of POST /predict.
type HTTPStatusError struct {
	Code       int
	RetryAfter string
	Body       string
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("POST /predict: %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// Classify maps a call's error to its outcome.
func Classify(err error) Outcome {
	var he *HTTPStatusError
	switch {
	case err == nil:
		return OK
	case errors.As(err, &he) && he.Code == http.StatusTooManyRequests && he.RetryAfter != "":
		return Shed
	case errors.As(err, &he) && he.Code == http.StatusTooManyRequests:
		return ShedNoRetryAfter
	case errors.As(err, &he) && he.Code >= 500:
		return ServerError
	case errors.As(err, &he):
		return OtherStatus
	}
	return Failed
}

// Tally counts an open loop's outcomes and keeps the latencies of its
// answered requests, each measured from the time the request was
// scheduled, not sent: a generator that falls behind its schedule does
// not hide the delay (no coordinated omission).
type Tally struct {
	mu        sync.Mutex
	counts    [numOutcomes]int
	latencies []time.Duration
	// Late counts requests sent more than a millisecond after their
	// scheduled time (the generator itself could not keep up).
	late   int
	first  map[Outcome]error
	maxOut int
}

// Add records one request scheduled at sched and answered (or failed) at
// done.
func (t *Tally) Add(o Outcome, sched, done time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[o]++
	if o == OK {
		t.latencies = append(t.latencies, done.Sub(sched))
	}
	if err != nil && o != OK {
		if t.first == nil {
			t.first = map[Outcome]error{}
		}
		if _, ok := t.first[o]; !ok {
			t.first[o] = err
		}
	}
}

// LoopStats summarises an open loop.
type LoopStats struct {
	Rate     float64 // requests per second offered
	Elapsed  time.Duration
	Counts   [numOutcomes]int
	Offered  int // requests scheduled
	Late     int
	MaxOut   int // most requests outstanding at once
	Accepted float64
	// P50 and P99 are of the answered requests, from their scheduled time.
	P50, P99 time.Duration
	First    map[Outcome]error
}

// Stats returns the summary of a loop that offered rate requests a second
// for elapsed.
func (t *Tally) Stats(rate float64, elapsed time.Duration) LoopStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := LoopStats{Rate: rate, Elapsed: elapsed, Counts: t.counts, Late: t.late, MaxOut: t.maxOut, First: t.first}
	for _, c := range t.counts {
		s.Offered += c
	}
	if elapsed > 0 {
		s.Accepted = float64(t.counts[OK]) / elapsed.Seconds()
	}
	lats := append([]time.Duration(nil), t.latencies...)
	s.P50, s.P99 = Percentile(lats, 0.50), Percentile(lats, 0.99)
	return s
}

// ScheduledAt is the time request i (from 0) of an open loop started at
// start is due at rate requests a second. Computed from i, not by adding
// intervals, so rounding does not drift.
func ScheduledAt(start time.Time, rate float64, i int) time.Time {
	return start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
}

// RequestsIn is how many requests an open loop at rate schedules in d.
func RequestsIn(rate float64, d time.Duration) int {
	n := 0
	for ; time.Duration(float64(n)/rate*float64(time.Second)) < d; n++ {
	}
	return n
}

// OpenLoop sends requests on a fixed schedule, rate a second for d,
// whatever the answers: each request is sent at its scheduled time (or at
// once, when the generator is behind) in a goroutine of its own, and its
// latency runs from that scheduled time. At most maxOutstanding requests
// are in flight; a request due while that many are is not sent and counts
// as Dropped. It returns once every sent request is answered.
func OpenLoop(ctx context.Context, rate float64, d time.Duration, maxOutstanding int, call CallFunc) LoopStats {
	var (
		t     Tally
		wg    sync.WaitGroup
		slots = make(chan struct{}, maxOutstanding)
	)
	n := RequestsIn(rate, d)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
loop:
	for i := range n {
		sched := ScheduledAt(start, rate, i)
		if wait := time.Until(sched); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break loop
			case <-timer.C:
			}
		}
		if time.Since(sched) > time.Millisecond {
			t.mu.Lock()
			t.late++
			t.mu.Unlock()
		}
		select {
		case slots <- struct{}{}:
		default:
			t.Add(Dropped, sched, time.Now(), nil)
			continue
		}
		t.mu.Lock()
		t.maxOut = max(t.maxOut, len(slots))
		t.mu.Unlock()
		wg.Go(func() {
			defer func() { <-slots }()
			_, err := call(ctx)
			t.Add(Classify(err), sched, time.Now(), err)
		})
	}
	elapsed := time.Since(start)
	wg.Wait()
	return t.Stats(rate, elapsed)
}
