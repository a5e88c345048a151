package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is a readiness check: nil when the dependency it probes works.
type Check struct {
	Name  string
	Check func(context.Context) error
}

// HTTPOptions are what the HTTP handler serves besides the probes.
type HTTPOptions struct {
	// API serves the REST gateway and the web console; nil serves only the
	// probes and metrics.
	API http.Handler
	// Admit, when set, wraps the API inside the metrics and the body
	// limits but in front of the rest: the gateway's bound on inference
	// requests, whose refusals then skip the API's own layers.
	Admit func(http.Handler) http.Handler
	// Gatherer is the registry /metrics exposes.
	Gatherer prometheus.Gatherer
	// Metrics, when set, counts and times the API's requests.
	Metrics *HTTPMetrics
	// MetricsAuth, when set, admits a request to /metrics or answers it
	// with the status and message to refuse it with.
	MetricsAuth func(r *http.Request) (code int, msg string)
	// Ready reports whether the process as a whole is ready (all services
	// started and not shutting down).
	Ready func() bool
	// Checks are run by /readyz once Ready is true.
	Checks []Check
	// ClientStreams are the routes ("POST /v1/images:upload") of
	// client-streaming RPCs: their bodies are newline-delimited messages,
	// so each message is bounded (by twice the message limit, for base64
	// and JSON) instead of the whole body.
	ClientStreams []string
}

// NewHTTPHandler returns the HTTP handler: /healthz (liveness), /readyz
// (readiness, with each check's result), /metrics, /debug/pprof/ when
// enabled, and the API.
func NewHTTPHandler(cfg Config, opts HTTPOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ready(w, r, opts)
	})
	metrics := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if opts.MetricsAuth != nil {
			if code, msg := opts.MetricsAuth(r); code != http.StatusOK {
				http.Error(w, msg, code)
				return
			}
		}
		metrics.ServeHTTP(w, r)
	})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if opts.API != nil {
		api := opts.API
		if opts.Admit != nil {
			api = opts.Admit(api)
		}
		mux.Handle("/", opts.Metrics.wrap(refuseURLTokens(limitBody(api, int64(cfg.MaxMessageBytes), cfg.ReadBodyTimeout, opts.ClientStreams))))
	}
	return securityHeaders(cors(mux, cfg.CORSOrigins))
}

// contentSecurityPolicy allows the console only its own scripts, styles and
// API; images may also be data: and blob: URLs (previews of picked files).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the browser-hardening headers on every response.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// urlTokenParams are query parameters that would carry a credential in a
// URL, where proxies, logs and browser history keep it.
var urlTokenParams = []string{"access_token", "token", "api_key", "apikey", "authorization"}

// refuseURLTokens answers 400 to a request with a credential in its URL.
func refuseURLTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		for _, p := range urlTokenParams {
			if q.Has(p) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"code":3,"message":"a credential in the URL (%s) is refused: send it in the Authorization header as 'Bearer <token>'","details":[]}`+"\n", p)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func ready(w http.ResponseWriter, r *http.Request, opts HTTPOptions) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if opts.Ready != nil && !opts.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready: starting or shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	var b strings.Builder
	failed := false
	for _, c := range opts.Checks {
		if err := c.Check(ctx); err != nil {
			failed = true
			// The reason stays in the server log; the probe names only the
			// failing dependency.
			fmt.Fprintf(&b, "%s: failing\n", c.Name)
			continue
		}
		fmt.Fprintf(&b, "%s: ok\n", c.Name)
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprint(w, b.String())
}

// limitBody refuses request bodies larger than the gRPC message limit with
// 413 before they are read whole, and bounds the time a body may take
// (slowBody). The bodies of client streams may be of any length and take
// any time; each of their messages is bounded instead, and the wait
// between two reads.
func limitBody(next http.Handler, limit int64, timeout time.Duration, streams []string) http.Handler {
	stream := map[string]bool{}
	for _, s := range streams {
		stream[s] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stream[r.Method+" "+r.URL.Path] {
			r.Body = newSlowBody(w, &messageLimit{r: r.Body, max: 2 * limit}, timeout, true)
			next.ServeHTTP(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = newSlowBody(w, r.Body, timeout, false)
		}
		if r.ContentLength > limit {
			msg := fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, limit)
			if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
				// The Open Inference Protocol's clients read an error from
				// {"error": "..."}; Triton's fails on any other body.
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				b, _ := json.Marshal(map[string]string{"error": msg})
				_, _ = w.Write(b)
				return
			}
			http.Error(w, msg, http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// ErrBodyTimeout ends the read of a request body that arrived too slowly
// (--http.read-body-timeout); handlers answer it 408.
var ErrBodyTimeout = errors.New("the request body arrived too slowly")

// slowBody bounds the time a request body takes to arrive with the
// connection's read deadline: the whole body, or (idle) each read of a
// stream. A client that trickles its body would otherwise hold its
// connection, and on the inference routes a slot of the gateway's bound,
// for as long as it likes. Once the body has been read whole the deadline
// is lifted, so that a handler still working is not cut off.
type slowBody struct {
	r       io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	idle    bool
}

func newSlowBody(w http.ResponseWriter, r io.ReadCloser, timeout time.Duration, idle bool) io.ReadCloser {
	b := &slowBody{r: r, rc: http.NewResponseController(w), timeout: timeout, idle: idle}
	if !idle {
		// A writer without deadlines (a test's recorder) leaves the body
		// unbounded.
		_ = b.rc.SetReadDeadline(time.Now().Add(timeout))
	}
	return b
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.idle {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.r.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		if b.idle {
			return n, fmt.Errorf("%w: no byte of it for %s (--http.read-body-timeout)", ErrBodyTimeout, b.timeout)
		}
		return n, fmt.Errorf("%w: not whole within %s (--http.read-body-timeout)", ErrBodyTimeout, b.timeout)
	}
	return n, err
}

func (b *slowBody) Close() error { return b.r.Close() }

// messageLimit fails a read once one message of a client stream grows
// past max bytes. The stream's decoder holds the JSON value it is reading
// whole, with the blank space before it, so lines alone cannot bound it: a
// message may span many short lines, and blank lines pile up. messageLimit
// follows just enough of JSON to see where a top-level value ends, and
// counts the bytes since.
type messageLimit struct {
	r        io.ReadCloser
	max      int64
	cur      int64 // bytes since the last top-level value ended
	depth    int   // of objects and arrays
	inString bool
	escaped  bool // the byte before was a backslash in a string
	inScalar bool // a top-level number, literal or stray byte has begun
	err      error
}

func (l *messageLimit) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if l.inString && !l.escaped {
			// Skip to the next quote or backslash: base64 is long.
			j := bytes.IndexAny(p[i:n], `"\`)
			if j < 0 {
				l.cur += int64(n - i)
				break
			}
			l.cur += int64(j)
			i += j
		}
		c := p[i]
		l.cur++
		ended := false
		switch {
		case l.inString:
			switch {
			case l.escaped:
				l.escaped = false
			case c == '\\':
				l.escaped = true
			case c == '"':
				l.inString, ended = false, l.depth == 0
			}
		case c == '"':
			l.inString = true
		case c == '{' || c == '[':
			l.depth++
		case (c == '}' || c == ']') && l.depth > 0:
			l.depth--
			ended = l.depth == 0
		case l.depth > 0:
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if l.inScalar {
				// The scalar ended before this byte, which counts
				// towards the next value, as the decoder keeps it.
				l.inScalar, l.cur = false, 1
			}
		default:
			l.inScalar = true
		}
		if l.cur > l.max {
			break
		}
		if ended {
			l.cur, l.inScalar = 0, false
		}
	}
	if l.cur > l.max {
		l.err = fmt.Errorf("a message of the request stream is over %d bytes: send one message per line, each within the server's message limit", l.max)
		return 0, l.err
	}
	return n, err
}

func (l *messageLimit) Close() error { return l.r.Close() }

// cors answers browser preflights and tags responses for the allowed origins.
func cors(next http.Handler, origins string) http.Handler {
	if origins == "" {
		return next
	}
	allowed := map[string]bool{}
	for _, o := range strings.Split(origins, ",") {
		allowed[strings.TrimSpace(o)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (allowed["*"] || allowed[origin]) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Request-Id")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
