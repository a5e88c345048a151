package gateway

import (
	"bytes"
	"context"
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
	"github.com/shoalml/shoal/internal/server"
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
//
// The bound stands in front of the whole REST handler (Gateway.Admit): a
// request to a route that runs a model is admitted or refused there,
// before the console's router, the tracing and the gateway's routing
// (under twice the saturating load the gateway refuses about as many
// requests as it forwards; behind those layers a refusal cost the server
// 119-133 µs of CPU, in front of them 88-95 µs: RELIABILITY.md). A
// request whose path is not plainly one of those routes (an escaped
// character in it) is admitted or refused by the gateway's own
// middleware, once its route has matched.
type inferenceBound struct {
	most int64
	// mux is the gateway's, whose error form the refusals take.
	mux func() *runtime.ServeMux
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

// The route templates of the inference routes, as the gateway's routes
// name them (TestAdmitFront checks that they agree).
const (
	routePredict      = "/predict"
	routeModelPredict = "/v1/models/{model=*}:predict"
	routeInfer        = "/v2/models/{name=*}/infer"
	routeVersionInfer = "/v2/models/{name=*}/versions/{version=*}/infer"
)

// frontRoute is the inference route r's path names plainly, or "" when
// it names none, or not plainly (escaped characters; the gateway's own
// routing then decides, and its middleware bounds the request).
func frontRoute(r *http.Request) (route string, oip bool) {
	if r.Method != http.MethodPost || r.URL.RawPath != "" {
		return "", false
	}
	p := r.URL.Path
	if p == "/predict" {
		return routePredict, false
	}
	if rest, ok := strings.CutPrefix(p, "/v1/models/"); ok {
		if name, ok := strings.CutSuffix(rest, ":predict"); ok && segment(name) {
			return routeModelPredict, false
		}
		return "", false
	}
	rest, ok := strings.CutPrefix(p, "/v2/models/")
	if !ok {
		return "", false
	}
	if rest, ok = strings.CutSuffix(rest, "/infer"); !ok {
		return "", false
	}
	if name, version, ok := strings.Cut(rest, "/versions/"); ok {
		if segment(name) && segment(version) {
			return routeVersionInfer, true
		}
		return "", false
	}
	if segment(rest) {
		return routeInfer, true
	}
	return "", false
}

// segment says whether s is one whole path segment.
func segment(s string) bool { return s != "" && !strings.Contains(s, "/") }

// boundedRoute says whether r, whose route the gateway matched, runs a
// model, and whether it is an Open Inference Protocol route (whose errors
// take the protocol's form).
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

// admittedKey marks a request the bound admitted in front of the gateway.
type admittedKey struct{}

// Admit applies the gateway's bound on inference requests to next, the
// whole REST handler in front of the gateway (server.HTTPOptions.Admit);
// without a bound it returns next.
func (g *Gateway) Admit(next http.Handler) http.Handler {
	b := g.bound
	if b == nil {
		return next
	}
	forward := func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), admittedKey{}, true)))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, oip := frontRoute(r)
		if route == "" {
			next.ServeHTTP(w, r)
			return
		}
		b.admit(w, r, oip, route, forward)
	})
}

// middleware applies the bound to the routes that run a model and were not
// admitted in front of the gateway (see Admit).
func (b *inferenceBound) middleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		bounded, oip := boundedRoute(r)
		if b == nil || !bounded || r.Context().Value(admittedKey{}) != nil {
			next(w, r, params)
			return
		}
		b.admit(w, r, oip, "", func(w http.ResponseWriter, r *http.Request) { next(w, r, params) })
	}
}

// admit forwards r to next within a place of the bound, its answer timed
// from now, or refuses it when no place is free; route, when set, names
// the refused request's route in the metrics (the gateway's routing has
// named it otherwise).
func (b *inferenceBound) admit(w http.ResponseWriter, r *http.Request, oip bool, route string, next func(http.ResponseWriter, *http.Request)) {
	start := time.Now()
	if !b.enter() {
		if route != "" {
			server.SetHTTPRoute(r.Context(), route)
		}
		b.refuse(w, r, oip)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() { b.leave(sw.status, time.Since(start)) }()
	next(sw, r)
}

// refuse answers r with 429 and Retry-After: in the Open Inference
// Protocol's error form when oip, else the gateway's.
func (b *inferenceBound) refuse(w http.ResponseWriter, r *http.Request, oip bool) {
	mux := b.mux()
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
		discard(r.Body)
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
		discard(r.Body)
	}
}

// discardBuffers are what refusals read bodies into: a photo's body in
// one read, where io.Discard's 8 KiB buffer takes three.
var discardBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// discard reads r to its end and drops what it read.
func discard(r io.Reader) {
	buf := discardBuffers.Get().(*[]byte)
	defer discardBuffers.Put(buf)
	// The wrappers hide io.Discard's ReaderFrom, which would use its own
	// buffer.
	_, _ = io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{r}, *buf)
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
