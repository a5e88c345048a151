package gateway

import (
	"io"
	"net/http"
	"strings"
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
type inferenceBound struct {
	slots chan struct{}
}

// newInferenceBound returns a bound of most requests; nil (no bound) when
// most is 0.
func newInferenceBound(most int) *inferenceBound {
	if most <= 0 {
		return nil
	}
	return &inferenceBound{slots: make(chan struct{}, most)}
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
			select {
			case b.slots <- struct{}{}:
				defer func() { <-b.slots }()
				next(w, r, params)
			default:
				// The refusal goes out first, then what the client still
				// sends of its body is read and dropped: a server that
				// closes a connection with bytes unread resets it, and a
				// client still writing a large body then saw "broken
				// pipe" instead of the 429. The body's size and time
				// limits (internal/server) bound the read.
				rc := http.NewResponseController(w)
				duplex := rc.EnableFullDuplex() == nil
				err := overload.Errorf(time.Second, "%d inference requests are in flight, the most this gateway forwards at once; retry shortly", cap(b.slots))
				if oip {
					writeOIPError(w, err)
				} else {
					_, outbound := runtime.MarshalerForRequest(mux(), r)
					retryAfterOnOverload(r.Context(), mux(), outbound, w, r, err)
				}
				if duplex && r.Body != nil {
					_ = rc.Flush()
					_, _ = io.Copy(io.Discard, r.Body)
				}
			}
		}
	}
}
