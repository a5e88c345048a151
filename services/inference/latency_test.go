package inference_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/overload"
	"github.com/shoalml/shoal/services/inference"
)

const admissionLimit = "shoal_inference_admission_limit"

// Without a latency target, a version takes in its queue plus a batch per
// session, and says so in its metrics.
func TestFixedAdmissionLimitInMetrics(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *inference.Config) {
		c.Sessions, c.MaxBatchSize, c.QueueSize = 2, 4, 40
	}})
	e.addVersion(t, "pets", 1, newTestModel(0))
	if err := predictVersion(t, e, 1); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, e, admissionLimit, "1"); got != 40+2*4 {
		t.Errorf("%s = %v; want the queue plus a batch per session, %d", admissionLimit, got, 40+2*4)
	}
}

// With a latency target that no answer meets, the admission limit falls to
// an image per session: a crowd of requests then gets the excess refused at
// once, RESOURCE_EXHAUSTED with a retry delay and the target named, while
// every admitted request is answered right.
func TestLatencyTargetShrinksTheAdmissionLimit(t *testing.T) {
	const sessions, maxBatch, queue = 2, 2, 64
	e := newEnv(t, envOptions{cfg: func(c *inference.Config) {
		c.Sessions, c.MaxBatchSize, c.QueueSize, c.LatencyTarget = sessions, maxBatch, queue, time.Nanosecond
		c.WideSession = false
	}})
	e.addVersion(t, "pets", 1, newTestModel(0))
	if err := predictVersion(t, e, 1); err != nil {
		t.Fatal(err)
	}
	floor := func(v float64) bool { return v == sessions }

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	refused := make(chan error, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for w := range 24 {
		wg.Go(func() {
			img := imagingtest.PNG(8, 8, w)
			for ctx.Err() == nil {
				resp, err := e.client.Predict(ctx, &inferencepb.PredictRequest{Model: "pets", Version: 1, Images: [][]byte{img}})
				switch {
				case err == nil:
					if err := e.check(t, resp, [][]byte{img}); err != nil {
						mu.Lock()
						failures = append(failures, err.Error())
						mu.Unlock()
					}
				case status.Code(err) == codes.ResourceExhausted:
					select {
					case refused <- err:
					default:
					}
				case ctx.Err() == nil:
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	var last error
	limit := -1.0
	for limit < 0 || !floor(limit) {
		select {
		case last = <-refused:
			limit = gaugeValue(t, e, admissionLimit, "1")
		case <-ctx.Done():
			t.Errorf("the admission limit did not fall to an image per session under a crowd: %s = %v, last refusal %v", admissionLimit, limit, last)
		}
		if ctx.Err() != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	for _, f := range failures {
		t.Errorf("a request of the crowd: %s", f)
	}
	if last == nil {
		t.Fatal("no request was refused")
	}
	if msg := status.Convert(last).Message(); !strings.Contains(msg, "latency target (1ns)") {
		t.Errorf("refusal %q does not name the latency target", msg)
	}
	if after, ok := overload.RetryAfter(last); !ok || after < time.Second {
		t.Errorf("refusal carries retry delay %v, %v; want at least 1s", after, ok)
	}
	// The crowd gone, the version answers again, and its limit stays at
	// its floor, never below. The crowd's last requests may still hold
	// their admission for a moment after their answers reached the client
	// (it is released as the handler returns): refusals until then.
	err := predictVersion(t, e, 1)
	for deadline := time.Now().Add(5 * time.Second); status.Code(err) == codes.ResourceExhausted && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		err = predictVersion(t, e, 1)
	}
	if err != nil {
		t.Errorf("after the crowd: %v", err)
	}
	if got := gaugeValue(t, e, admissionLimit, "1"); !floor(got) {
		t.Errorf("after the crowd: %s = %v; want an image per session", admissionLimit, got)
	}
}
