package gateway

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/shoalml/shoal/internal/overload"
)

// inferenceBound bounds the inference requests the gateway forwards at once,
// over every REST route that runs a model: the original POST /predict,
// Predict's route POST /v1/models/{model}:predict and the Open Inference
// Protocol's POST /v2/models/{model}[/versions/{v}]/infer. Beyond the bound
// a request is answered 429 with Retry-After before its body is read.
// Inference refuses what it cannot admit too, but only once a request has
// crossed the gateway's hop to it: under overload, requests waited on that
// hop, unbounded, and few reached the refusal (RELIABILITY.md, Overload).
//
// With a latency target the bound also follows what the gateway measures,
// from a request's receipt to its answer (overload.Limit): Inference's own
// target counts from its admission, out of sight of the time a request
// spends on the HTTP server and the gateway's hop before it, which under
// twice the saturating load doubled the client's p99 (RELIABILITY.md).
type inferenceBound struct {
	most int64
	// limit, when set, holds the bound below most as the target says.
	limit    *overload.Limit
	inflight atomic.Int64
	// refusals are rendered refusals by refusalKey: under overload the
	// gateway refuses most of what it receives, and each refusal's
	// rendering (a status with its RetryInfo, marshalled) cost as much as
	// the rest of it (RELIABILITY.md, Overload).
	refusals sync.Map
}

// refusalKey tells rendered refusals apart: their error form, content
// type and the bound they state.
type refusalKey struct {
	oip         bool
	contentType string
	bound       int64
}

// refusal is a rendered 429: its headers and body.
type refusal struct {
	header http.Header
	code   int
	body   []byte
}

// smallBody is the most of a refused request's body read before the
// refusal is written; a longer or unknown body is read after it is sent.
// It is what Go's HTTP server itself reads of a body a handler left, to
// keep the connection.
const smallBody = 256 << 10

// adaptiveHigh is where a latency-following bound starts when no fixed
// bound caps it: the limit shrinks from it by a quarter a window.
const adaptiveHigh = 1024

// newInferenceBound returns a bound of most requests, following target
// when it is positive; nil (no bound) when both are 0.
func newInferenceBound(most int, target time.Duration) *inferenceBound {
	if most <= 0 && target <= 0 {
		return nil
	}
	if most <= 0 {
		most = adaptiveHigh
	}
	b := &inferenceBound{most: int64(most)}
	if target > 0 {
		b.limit = overload.NewLimit(target, 1, b.most, max(1, b.most/32))
	}
	return b
}

// enter takes a place for a request, or reports that none is free.
func (b *inferenceBound) enter() bool {
	if b.inflight.Add(1) > b.current() {
		b.inflight.Add(-1)
		if b.limit != nil {
			b.limit.Refused()
		}
		return false
	}
	return true
}

// leave gives the place back; status is the answer's HTTP status and
// took the time from receipt to answer. Inference's own refusals (429)
// are not answers the latency target judges.
func (b *inferenceBound) leave(status int, took time.Duration) {
	b.inflight.Add(-1)
	if b.limit != nil && status != http.StatusTooManyRequests {
		b.limit.Answered(took)
	}
}

// current is the number of requests let through at once now.
func (b *inferenceBound) current() int64 {
	if b.limit != nil {
		return b.limit.Current()
	}
	return b.most
}

// boundedRoute says whether r runs a model, and whether it is an Open
// Inference Protocol route (whose errors take the protocol's form).
func boundedRoute(r *http.Request) (bounded, oip bool) {
	if r.Method != http.MethodPost {
		return false, false
	}
	p := r.URL.Path
	switch {
	case p == "/predict":
		return true, false
	case strings.HasPrefix(p, "/v1/models/") && strings.HasSuffix(p, ":predict"):
		return true, false
	case strings.HasPrefix(p, "/v2/models/") && strings.HasSuffix(p, "/infer"):
		return true, true
	}
	return false, false
}

// middleware applies the bound to the routes that run a model; mux gives
// the gateway's error form for the others.
func (b *inferenceBound) middleware(mux func() *runtime.ServeMux) runtime.Middleware {
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			bounded, oip := boundedRoute(r)
			if b == nil || !bounded {
				next(w, r, params)
				return
			}
			start := time.Now()
			if !b.enter() {
				b.refuse(w, r, oip, mux())
				return
			}
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			defer func() { b.leave(sw.status, time.Since(start)) }()
			next(sw, r, params)
		}
	}
}

// refuse answers r with 429 and Retry-After: in the Open Inference
// Protocol's error form when oip, else the gateway's.
func (b *inferenceBound) refuse(w http.ResponseWriter, r *http.Request, oip bool, mux *runtime.ServeMux) {
	_, outbound := runtime.MarshalerForRequest(mux, r)
	key := refusalKey{oip: oip, contentType: outbound.ContentType(nil), bound: b.current()}
	cached, ok := b.refusals.Load(key)
	if !ok {
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		err := overload.Errorf(time.Second, "%d inference requests are in flight, the most this gateway forwards at once now; retry shortly", key.bound)
		if oip {
			writeOIPError(rec, err)
		} else {
			retryAfterOnOverload(r.Context(), mux, outbound, rec, r, err)
		}
		cached, _ = b.refusals.LoadOrStore(key, &refusal{header: rec.header, code: rec.code, body: rec.body.Bytes()})
	}
	ans := cached.(*refusal)
	// A small body the client has sent by now: read and dropped first
	// (within the body's size and time limits, internal/server), then the
	// answer goes out in one write. A larger or unknown one: the refusal
	// goes out first, then what the client still sends is read and
	// dropped, as a server that closes a connection with bytes unread
	// resets it, and a client still writing a large body then saw "broken
	// pipe" instead of the 429.
	small := r.ContentLength >= 0 && r.ContentLength <= smallBody
	if small && r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	rc := http.NewResponseController(w)
	duplex := !small && rc.EnableFullDuplex() == nil
	h := w.Header()
	for k, v := range ans.header {
		h[k] = slices.Clone(v)
	}
	h.Set("Content-Length", strconv.Itoa(len(ans.body)))
	w.WriteHeader(ans.code)
	_, _ = w.Write(ans.body)
	if duplex && r.Body != nil {
		_ = rc.Flush()
		_, _ = io.Copy(io.Discard, r.Body)
	}
}

// recorder keeps what a handler writes, to render a refusal once.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

// statusWriter remembers the status of the answer it writes.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush sends what is buffered.
func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
