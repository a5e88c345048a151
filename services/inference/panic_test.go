package inference_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/testlog"
	"github.com/shoalml/shoal/services/inference"
)

// Panics injected into a model load, preprocessing, a batch, the alias
// watch, the alias follower and an idle check: each fails only its
// request (or round), is counted under its component and logged with its
// stack, and the service goes on serving.

func newLoggedGuard() (*panics.Guard, *testlog.Buffer) {
	var logs testlog.Buffer
	return panics.NewGuard(slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry()), &logs
}

// getPanicStore is a blob store whose Get panics while armed (once).
type getPanicStore struct {
	blob.Store
	armed *atomic.Bool
}

func (p getPanicStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if p.armed.CompareAndSwap(true, false) {
		panic("injected: load")
	}
	return p.Store.Get(ctx, key)
}

// once returns a hook that panics with msg the first time after armed is
// set.
func once(armed *atomic.Bool, msg string) func() {
	return func() {
		if armed.CompareAndSwap(true, false) {
			panic(msg)
		}
	}
}

func wantInternal(t *testing.T, what string, err error, id string) {
	t.Helper()
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "request id "+id) || strings.Contains(err.Error(), "injected") {
		t.Errorf("%s = %v; want Internal naming the request id %s only", what, err, id)
	}
}

func TestInferenceRequestPanicsFailOnlyTheirRequest(t *testing.T) {
	guard, logs := newLoggedGuard()
	var loadArmed, preArmed, batchArmed atomic.Bool
	inference.InjectPreprocessHook(t, once(&preArmed, "injected: preprocess"))
	inference.InjectBatchHook(t, once(&batchArmed, "injected: batch"))
	e := newEnv(t, envOptions{panics: guard,
		blobs: func(s blob.Store) blob.Store { return getPanicStore{Store: s, armed: &loadArmed} }})
	e.addVersion(t, "pets", 1, newTestModel(0))
	// Two images: preprocessing runs them on goroutines of its own.
	images := [][]byte{imagingtest.PNG(4, 4, 1), imagingtest.PNG(5, 3, 2)}
	req := &inferencepb.PredictRequest{Model: "pets", Version: 1, Images: images}
	withID := func(id string) context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "x-request-id", id)
	}
	serves := func(after string) {
		t.Helper()
		resp, err := e.client.Predict(t.Context(), req)
		if err != nil {
			t.Fatalf("Predict after %s = %v", after, err)
		}
		if err := e.check(t, resp, images); err != nil {
			t.Errorf("Predict after %s: %v", after, err)
		}
	}

	for _, tc := range []struct {
		component string
		armed     *atomic.Bool
	}{
		{"inference load", &loadArmed},
		{"preprocess", &preArmed},
		{"batcher", &batchArmed},
	} {
		id := strings.ReplaceAll(tc.component, " ", "-") + "-panic"
		tc.armed.Store(true)
		_, err := e.client.Predict(withID(id), req)
		wantInternal(t, "Predict with a panic in "+tc.component, err, id)
		if n := guard.Count(tc.component); n != 1 {
			t.Errorf("shoal_panics_total{component=%q} = %v; want 1", tc.component, n)
		}
		serves("a panic in " + tc.component)
	}
	for _, want := range []string{"injected: load", "injected: preprocess", "injected: batch", "stack=", "goroutine"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the guard's log lacks %q", want)
		}
	}
}

// watchPanicRegistry wraps the Registry client: the first WatchAliases
// stream panics in its first Recv.
type watchPanicRegistry struct {
	registrypb.RegistryServiceClient
	done atomic.Bool
}

func (r *watchPanicRegistry) WatchAliases(ctx context.Context, in *registrypb.WatchAliasesRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[registrypb.WatchAliasesResponse], error) {
	s, err := r.RegistryServiceClient.WatchAliases(ctx, in, opts...)
	if err != nil || !r.done.CompareAndSwap(false, true) {
		return s, err
	}
	return recvPanicStream{s}, nil
}

type recvPanicStream struct {
	grpc.ServerStreamingClient[registrypb.WatchAliasesResponse]
}

func (recvPanicStream) Recv() (*registrypb.WatchAliasesResponse, error) { panic("injected: watch") }

// panicOnMessage is a log handler that panics, once, when the service
// logs msg: the seam into the alias follower's round.
type panicOnMessage struct {
	slog.Handler
	msg  string
	done *atomic.Bool
}

func (h panicOnMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg && h.done.CompareAndSwap(false, true) {
		panic("injected: follower")
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// Enabled is true for every level, so that msg reaches Handle whatever
// the level the wrapped handler logs.
func (panicOnMessage) Enabled(context.Context, slog.Level) bool { return true }

func (h panicOnMessage) WithAttrs(a []slog.Attr) slog.Handler {
	return panicOnMessage{h.Handler.WithAttrs(a), h.msg, h.done}
}

func (h panicOnMessage) WithGroup(n string) slog.Handler {
	return panicOnMessage{h.Handler.WithGroup(n), h.msg, h.done}
}

func TestInferenceFollowerPanicsAreContained(t *testing.T) {
	guard, logs := newLoggedGuard()
	var idleDone atomic.Bool
	idleAgain := make(chan struct{}, 1)
	e := newEnv(t, envOptions{
		panics: guard,
		cfg:    func(c *inference.Config) { c.PinnedIdleTimeout = 20 * time.Millisecond },
		registry: func(c registrypb.RegistryServiceClient) registrypb.RegistryServiceClient {
			return &watchPanicRegistry{RegistryServiceClient: c}
		},
		log: func(h slog.Handler) slog.Handler {
			return panicOnMessage{Handler: h, msg: "inference: alias swapped", done: new(atomic.Bool)}
		},
		svc: func(s *inference.Service) {
			inference.SetIdleCheckHook(s, func(string, int64, bool) {
				if idleDone.CompareAndSwap(false, true) {
					panic("injected: idle check")
				}
				select {
				case idleAgain <- struct{}{}:
				default:
				}
			})
		},
	})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersion(t, "pets", 2, newTestModel(3))
	e.reg.setAlias("pets", "production", 1)

	// The first watch panics and is started again (after a second); it
	// syncs, and the follower's first round panics after swapping v1 in.
	until(t, "a panic in the alias follower", func() bool { return guard.Count("alias follower") == 1 })
	if n := guard.Count("alias watch"); n != 1 {
		t.Errorf(`shoal_panics_total{component="alias watch"} = %v; want 1`, n)
	}
	// The follower goes on: the next promotion is served.
	e.reg.setAlias("pets", "production", 2)
	img := [][]byte{imagingtest.PNG(4, 4, 1)}
	until(t, "production v2 served", func() bool {
		resp, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Images: img})
		return err == nil && resp.GetVersion() == 2
	})
	// The first idle check panicked; the checks go on.
	select {
	case <-idleAgain:
	case <-time.After(30 * time.Second):
		t.Fatal("no idle check after the one that panicked")
	}
	if n := guard.Count("inference idle check"); n != 1 {
		t.Errorf(`shoal_panics_total{component="inference idle check"} = %v; want 1`, n)
	}
	if n := guard.Count("alias follower"); n != 1 {
		t.Errorf(`shoal_panics_total{component="alias follower"} = %v; want 1`, n)
	}
	for _, want := range []string{"injected: watch", "injected: follower", "injected: idle check", "stack="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the guard's log lacks %q", want)
		}
	}
}
