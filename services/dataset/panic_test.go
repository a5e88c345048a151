package dataset

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// Panics injected into each goroutine of an import, and into the sweep:
// each fails only its own import (or sweep round), is counted, and the
// service goes on serving.

// panickyStore is a blob store whose first Put (or every List) panics.
type panickyStore struct {
	blob.Store
	putPanicked atomic.Bool
	onList      func()
}

func (p *panickyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if p.putPanicked.CompareAndSwap(false, true) {
		panic("injected: blob Put")
	}
	return p.Store.Put(ctx, key, r, size)
}

func (p *panickyStore) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if p.onList != nil {
		p.onList()
		panic("injected: blob List")
	}
	return p.Store.List(ctx, prefix, fn)
}

// panickySource panics in its walk, or in the open of the entry it emits.
type panickySource struct{ inWalk bool }

func (p panickySource) walk(ctx context.Context, emit func(entry) error, _ func(string, string) error) error {
	if p.inWalk {
		panic("injected: walker")
	}
	return emit(entry{path: "train/A/x.png", split: datasetpb.Split_SPLIT_TRAIN, label: "A", name: "x.png", size: -1,
		open: func(context.Context) (io.ReadCloser, error) { panic("injected: decoder") }})
}

type discardEvents struct{}

func (discardEvents) progress(*datasetpb.ImportProgress) error { return nil }
func (discardEvents) rejection(*datasetpb.FileRejection) error { return nil }

func newGuard() *panics.Guard {
	return panics.NewGuard(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
}

func TestImportPanicsFailOnlyTheImport(t *testing.T) {
	local, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &panickyStore{Store: local}
	e := newEnv(t, envOpts{blobs: store})
	guard := newGuard()
	e.svc.deps.Panics = guard
	e.create(t, "fish")

	// The putter: through the real RPC, which answers Internal with the
	// request id and nothing of the panic.
	file := &datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
		Split: datasetpb.Split_SPLIT_TRAIN, Label: "A", FileName: "a.png", Content: imagingtest.PNG(4, 4, 1)}}}
	_, err = e.upload(t, header("fish"), file)
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "request id") || strings.Contains(err.Error(), "injected") {
		t.Fatalf("UploadImages with a panicking putter = %v; want Internal naming the request id only", err)
	}
	// The service goes on: the same upload now succeeds.
	if resp, err := e.upload(t, header("fish"), file); err != nil || resp.GetCounts().GetAdded() != 1 {
		t.Fatalf("UploadImages after the panic = %v, %v; want 1 added", resp.GetCounts(), err)
	}

	// The walker and a decoder.
	var ds datasetRow
	if err := e.svc.deps.DB.Where("name = ?", "fish").First(&ds).Error; err != nil {
		t.Fatal(err)
	}
	for _, src := range []panickySource{{inWalk: true}, {inWalk: false}} {
		_, err := e.svc.runImport(t.Context(), &ds, src, discardEvents{})
		if _, ok := err.(*panics.Error); !ok {
			t.Errorf("runImport(%+v) = %v; want a *panics.Error", src, err)
		}
	}
	for _, c := range []string{"import putter", "import walker", "import decoder"} {
		if n := guard.Count(c); n != 1 {
			t.Errorf("shoal_panics_total{component=%q} = %v; want 1", c, n)
		}
	}
	stats, err := e.client.GetDatasetStats(t.Context(), &datasetpb.GetDatasetStatsRequest{Dataset: "fish"})
	if err != nil || stats.GetImageCount() != 1 {
		t.Errorf("GetDatasetStats = %v, %v; want the one image stored before, nothing more", stats.GetImageCount(), err)
	}
}

func TestSweepPanicIsContained(t *testing.T) {
	local, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The panic ends the round; the cancel lets Run return right after, so
	// the test sees Run survive it without waiting for the next round.
	store := &panickyStore{Store: local, onList: cancel}
	e := newEnv(t, envOpts{blobs: store})
	guard := newGuard()
	e.svc.deps.Panics = guard
	if err := e.svc.Run(ctx); err != nil {
		t.Fatalf("Run() = %v; want nil after a contained panic", err)
	}
	if n := guard.Count("dataset sweep"); n != 1 {
		t.Errorf(`shoal_panics_total{component="dataset sweep"} = %v; want 1`, n)
	}
}
