package registry_test

import (
	"context"
	"errors"
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
	"gorm.io/gorm"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
	"github.com/shoalml/shoal/services/registry"
)

// Panics injected into the Run loop's three jobs (artifact sweep, alias
// event prune, alias revision poll) and into a WatchAliases stream's
// sender: each fails only its own round or stream, is counted, and the
// service goes on serving.

// listPanicStore is a blob store whose first List panics.
type listPanicStore struct {
	blob.Store
	done atomic.Bool
}

func (p *listPanicStore) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if p.done.CompareAndSwap(false, true) {
		panic("injected: artifact list")
	}
	return p.Store.List(ctx, prefix, fn)
}

func TestRegistryRunPanicsAreContained(t *testing.T) {
	gdb := dbtest.Open(t, dbtest.Config(t, db.SQLite))
	local, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs testlog.Buffer
	guard := panics.NewGuard(slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	cfg := defaultConfig()
	cfg.UploadDir = t.TempDir()
	cfg.WatchPollInterval = 10 * time.Millisecond
	svc, err := registry.New(cfg, registry.Deps{Log: testlog.New(t), DB: gdb, Blobs: &listPanicStore{Store: local}, Panics: guard})
	if err != nil {
		t.Fatal(err)
	}
	rpcMetrics := prometheus.NewRegistry()
	srv := grpctest.Start(t, svc, grpctest.Options{NoRun: true, Metrics: rpcMetrics,
		StreamInterceptors: []grpc.StreamServerInterceptor{grpctest.PanicOnFirstSend()}})
	client := registrypb.NewRegistryServiceClient(srv.Conn)

	// The prune reads the newest alias event first (a Row query); the
	// poll reads the revision (a Query). The first prune panics; the
	// first two polls (Run's opening one and the first round's) panic;
	// the third tells the test the loop went on.
	armed := atomic.Bool{}
	armed.Store(true)
	var polls atomic.Int32
	var pruned atomic.Bool
	polledAgain := make(chan struct{})
	table := func(tx *gorm.DB) string { return tx.Statement.Table }
	if err := gdb.Callback().Row().Before("gorm:row").Register("test:prune-panic", func(tx *gorm.DB) {
		if armed.Load() && table(tx) == "registry_alias_events" && pruned.CompareAndSwap(false, true) {
			panic("injected: prune")
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := gdb.Callback().Query().Before("gorm:query").Register("test:poll-panic", func(tx *gorm.DB) {
		if !armed.Load() || table(tx) != "registry_alias_revision" {
			return
		}
		switch polls.Add(1) {
		case 1, 2:
			panic("injected: poll")
		case 3:
			close(polledAgain)
		}
	}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	select {
	case <-polledAgain:
	case err := <-ran:
		t.Fatalf("Run() = %v before its loop went on past the panics", err)
	}
	armed.Store(false)
	for c, want := range map[string]float64{"registry sweep": 1, "registry prune": 1, "registry alias poll": 2} {
		if n := guard.Count(c); n != want {
			t.Errorf("shoal_panics_total{component=%q} = %v; want %v", c, n, want)
		}
	}

	// A stream whose sender panics ends with Internal naming the request
	// id only; the next stream is served.
	reqCtx := metadata.AppendToOutgoingContext(ctx, "x-request-id", "watch-panic-1")
	w, err := client.WatchAliases(reqCtx, &registrypb.WatchAliasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); status.Code(err) != codes.Internal ||
		!strings.Contains(err.Error(), "request id watch-panic-1") || strings.Contains(err.Error(), "injected") {
		t.Fatalf("WatchAliases with a panicking sender: Recv() = %v; want Internal naming the request id only", err)
	}
	if n, err := panics.Gathered(rpcMetrics, "rpc"); err != nil || n != 1 {
		t.Errorf(`shoal_panics_total{component="rpc"} = %v (%v); want 1`, n, err)
	}
	w, err = client.WatchAliases(t.Context(), &registrypb.WatchAliasesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Recv(); err != nil || ev.GetType() != registrypb.AliasEventType_ALIAS_EVENT_TYPE_SYNCED {
		t.Fatalf("WatchAliases after the panic: Recv() = %v, %v; want SYNCED", ev, err)
	}
	if _, err := client.ListModels(ctx, &registrypb.ListModelsRequest{}); err != nil {
		t.Errorf("ListModels() after the panics = %v", err)
	}

	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run() = %v; want nil after contained panics", err)
	}
	// Run's end ends the open stream.
	if ev, err := w.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("WatchAliases after Run returned: Recv() = %v, %v; want EOF", ev, err)
	}
	for _, want := range []string{"injected: artifact list", "injected: prune", "injected: poll", "stack=", "goroutine"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the guard's log lacks %q", want)
		}
	}
}
