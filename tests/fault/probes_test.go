package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// failFast bounds how long a call may take to fail while a storage server
// is away: long enough for a connection attempt and a few retries, far
// shorter than the outage (a call that waits for the server to return is a
// hang to its client).
const failFast = 5 * time.Second

// probe is one call made while a storage server is away.
type probe struct {
	name string
	call func(context.Context) error
}

// probeResult is how a probe ended.
type probeResult struct {
	name string
	took time.Duration
	code codes.Code
	msg  string
}

func (r probeResult) String() string {
	return fmt.Sprintf("%s: %s after %s: %q", r.name, r.code, r.took.Round(time.Millisecond), r.msg)
}

// runProbes runs each probe once, bounded so that a hang shows as a
// DeadlineExceeded after far longer than failFast.
func runProbes(ctx context.Context, probes []probe) []probeResult {
	out := make([]probeResult, 0, len(probes))
	for _, p := range probes {
		pctx, cancel := context.WithTimeout(ctx, 3*failFast)
		began := time.Now()
		err := p.call(pctx)
		cancel()
		code, msg := codeAndMessage(err)
		out = append(out, probeResult{name: p.name, took: time.Since(began), code: code, msg: msg})
	}
	return out
}

// checkUnavailable requires every probe to have failed fast with
// UNAVAILABLE (or RESOURCE_EXHAUSTED where noted) and a message that
// names the cause without internal detail.
func checkUnavailable(t *testing.T, results []probeResult, cause string) {
	t.Helper()
	for _, r := range results {
		t.Logf("during the outage: %s", r)
		if r.code != codes.Unavailable {
			t.Errorf("%s = %s; want UNAVAILABLE", r.name, r)
		}
		if r.took > failFast {
			t.Errorf("%s took %s to fail; want at most %s", r.name, r.took.Round(time.Millisecond), failFast)
		}
		if !strings.Contains(r.msg, cause) {
			t.Errorf("%s: message %q does not say %q", r.name, r.msg, cause)
		}
		for _, leak := range []string{"dial tcp", "SQLSTATE", "pgconn", "127.0.0.1", "minio", "connection refused"} {
			if strings.Contains(r.msg, leak) {
				t.Errorf("%s: message %q shows internal detail (%q)", r.name, r.msg, leak)
			}
		}
	}
}

// predictor classifies one image over and over, through gRPC Predict and
// REST /predict in turn, at a steady pace, and counts what failed: the
// loaded model needs no storage, so nothing may.
type predictor struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	versions   map[int64]int
	stop       chan struct{}
	done       chan struct{}
}

func startPredicting(s *shoal, image []byte) *predictor {
	p := &predictor{stop: make(chan struct{}), done: make(chan struct{}), versions: map[int64]int{}}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var v int64
			var err error
			if i%2 == 0 {
				var resp interface{ GetVersion() int64 }
				resp, err = predictFile(ctx, s.Inference, image)
				if err == nil {
					v = resp.GetVersion()
				}
			} else {
				v, err = predictREST(ctx, s.httpURL("/predict"), image)
			}
			cancel()
			p.mu.Lock()
			if err != nil {
				p.failed.Add(1)
				if len(p.errs) < 10 {
					p.errs = append(p.errs, err.Error())
				}
			} else {
				p.ok.Add(1)
				p.versions[v]++
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// Stop ends the loop and reports its counts.
func (p *predictor) Stop(t *testing.T) {
	t.Helper()
	close(p.stop)
	<-p.done
	t.Logf("predictions: %d answered, %d failed, by version %v", p.ok.Load(), p.failed.Load(), p.versions)
	if p.failed.Load() > 0 {
		t.Errorf("%d predictions failed; want none (the model was loaded): %v", p.failed.Load(), p.errs)
	}
}

// predictREST posts the image to /predict as a multipart form and
// returns the version that answered.
func predictREST(ctx context.Context, url string, image []byte) (int64, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "image.png")
	if err != nil {
		return 0, err
	}
	fw.Write(image)
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST /predict: %d %s", resp.StatusCode, b)
	}
	var out struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("POST /predict: %v: %s", err, b)
	}
	return out.Version, nil
}

// readiness polls /readyz until its answer's code is want, and returns how
// long that took and the body.
func readiness(ctx context.Context, t *testing.T, s *shoal, want int) (time.Duration, string) {
	t.Helper()
	began := time.Now()
	var body string
	err := waitFor(ctx, fmt.Sprintf("/readyz to answer %d", want), func() bool {
		var code int
		code, body, _ = get(ctx, s.httpURL("/readyz"))
		return code == want
	})
	if err != nil {
		t.Fatalf("%v (last: %q)", err, body)
	}
	return time.Since(began), body
}

// TestPostgresOutage stops the process's PostgreSQL server for 30 s while
// an import runs, a training job trains and predictions are served, then
// starts it again on the same port. While it is away: calls that need the
// database fail within seconds with UNAVAILABLE, /readyz answers 503, and
// every prediction from the loaded model is answered. When it is back,
// without a restart of Shoal: /readyz answers 200, the import re-run
// converges, the job ends, and its promotion reaches Inference.
