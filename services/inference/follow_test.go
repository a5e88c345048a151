package inference_test

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/services/inference"
)

// until calls cond until it holds, failing the test after 30s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling an RPC; nothing to wait on
	}
}

func loaded(t *testing.T, e *env) []int64 {
	resp, err := e.client.ListLoadedModels(t.Context(), &inferencepb.ListLoadedModelsRequest{})
	if err != nil {
		t.Fatalf("ListLoadedModels() = %v", err)
	}
	var out []int64
	for _, m := range resp.GetModels() {
		out = append(out, m.GetVersion())
	}
	return out
}

func TestServesProductionOnceWarm(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.reg.setAlias("pets", "production", 1)
	until(t, "ServerReady", func() bool {
		r, err := e.oip.ServerReady(t.Context(), &oippb.ServerReadyRequest{})
		return err == nil && r.GetReady()
	})
	r, err := e.oip.ModelReady(t.Context(), &oippb.ModelReadyRequest{Name: "pets"})
	if err != nil || !r.GetReady() {
		t.Fatalf("ModelReady(pets) = %v, %v; want ready", r, err)
	}
	resp, err := e.client.ListLoadedModels(t.Context(), &inferencepb.ListLoadedModelsRequest{})
	if err != nil || len(resp.GetModels()) != 1 {
		t.Fatalf("ListLoadedModels() = %v, %v; want pets v1", resp, err)
	}
	m := resp.GetModels()[0]
	if m.GetModel() != "pets" || m.GetVersion() != 1 || !m.GetReady() || m.GetSessions() != 2 ||
		m.GetMaxBatchSize() != 8 || !slices.Equal(m.GetAliases(), []string{"production"}) {
		t.Fatalf("ListLoadedModels() = %v; want pets v1, ready, 2 sessions, batch 8, production", m)
	}
}

// TestPromoteUnderLoad promotes ten versions, one after another, while 32
// callers send requests: no request fails, every answer was computed by
// the version it names, and retired versions are freed.
func TestPromoteUnderLoad(t *testing.T) {
	e := newEnv(t, envOptions{})
	for v := int64(1); v <= 11; v++ {
		e.addVersion(t, "pets", v, newTestModel(byte(v)))
	}
	e.addVersionBytes(t, "pets", 12, newTestModel(0), []byte("broken"))
	e.reg.setAlias("pets", "production", 1)
	images := [][]byte{imagingtest.PNG(6, 5, 1), imagingtest.JPEG(8, 8, 2)}

	ctx, stop := context.WithCancel(context.Background())
	var (
		wg       sync.WaitGroup
		served   sync.Map // version -> true
		requests atomic.Int64
	)
	for range 32 { // callers, as a load generator at concurrency 32
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := e.client.Predict(context.Background(), &inferencepb.PredictRequest{Images: images})
				if err != nil {
					t.Errorf("Predict() during promotions = %v", err)
					return
				}
				if err := e.check(t, resp, images); err != nil {
					t.Error(err)
					return
				}
				served.Store(resp.GetVersion(), true)
				requests.Add(1)
			}
		})
	}
	for v := int64(2); v <= 11; v++ {
		if v == 6 {
			// A version that cannot load leaves v5 serving.
			e.reg.setAlias("pets", "production", 12)
			before := requests.Load()
			until(t, "requests after the failed promotion", func() bool { return requests.Load() > before+50 })
			if _, ok := served.Load(int64(12)); ok {
				t.Fatal("the broken version answered")
			}
		}
		e.reg.setAlias("pets", "production", v)
		until(t, "a response from the promoted version", func() bool { _, ok := served.Load(v); return ok })
	}
	stop()
	wg.Wait()
	var held []int64
	defer func() {
		if t.Failed() {
			t.Logf("loaded versions at the end: %v", held)
		}
	}()
	until(t, "the old versions to be freed", func() bool {
		held = loaded(t, e)
		return slices.Equal(held, []int64{11})
	})
	t.Logf("%d requests during 10 promotions", requests.Load())
}

// TestWatchReconnects cuts the alias watch, promotes while it is down, and
// expects the service to reconnect and catch up from the snapshot.
func TestWatchReconnects(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersion(t, "pets", 2, newTestModel(1))
	e.reg.setAlias("pets", "production", 1)
	until(t, "v1 loaded", func() bool { return slices.Equal(loaded(t, e), []int64{1}) })
	e.reg.cutWatches()
	e.reg.setAliasQuietly("pets", "production", 2)
	until(t, "v2 swapped in after reconnecting", func() bool { return slices.Equal(loaded(t, e), []int64{2}) })
	resp, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Images: [][]byte{imagingtest.PNG(3, 3, 1)}})
	if err != nil || resp.GetVersion() != 2 {
		t.Fatalf("Predict() = v%d, %v; want v2", resp.GetVersion(), err)
	}
}

// TestRetriesLoadsWhileStorageIsAway: a promotion while the blob store
// cannot be reached leaves the previous version serving; once the store
// answers again, the promoted version is loaded and swapped in without
// another promotion.
func TestRetriesLoadsWhileStorageIsAway(t *testing.T) {
	away := &awayBlobs{}
	e := newEnv(t, envOptions{blobs: func(s blob.Store) blob.Store { away.Store = s; return away }})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersion(t, "pets", 2, newTestModel(1))
	e.reg.setAlias("pets", "production", 1)
	until(t, "v1 loaded", func() bool { return slices.Equal(loaded(t, e), []int64{1}) })
	// Listed is not yet swapped in: the alias must answer with v1 before
	// the store goes away, or the follower has nothing to keep serving.
	until(t, "v1 serving production", func() bool {
		resp, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Images: [][]byte{imagingtest.PNG(3, 3, 1)}})
		return err == nil && resp.GetVersion() == 1
	})

	away.down.Store(true)
	e.reg.setAlias("pets", "production", 2)
	until(t, "two failed loads of v2", func() bool { return away.failed.Load() >= 2 })
	resp, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Images: [][]byte{imagingtest.PNG(3, 3, 1)}})
	if err != nil || resp.GetVersion() != 1 {
		t.Fatalf("Predict() while the store is away = v%d, %v; want v1", resp.GetVersion(), err)
	}
	away.down.Store(false)
	until(t, "v2 swapped in once the store is back", func() bool { return slices.Equal(loaded(t, e), []int64{2}) })
}

// awayBlobs is a blob store whose reads fail as an unreachable S3
// server's do while down is set.
type awayBlobs struct {
	blob.Store
	down   atomic.Bool
	failed atomic.Int64
}

func (a *awayBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if a.down.Load() {
		a.failed.Add(1)
		return nil, fmt.Errorf("blob: s3 get %q: %w", key, &url.Error{Op: "Get", URL: "http://s3/" + key, Err: syscall.ECONNREFUSED})
	}
	return a.Store.Get(ctx, key)
}

// TestUnloadsIdlePinnedVersions: a version asked for by number is unloaded
// once it has served nothing for --inference.pinned-idle-timeout, and
// loaded again when asked for; the version the followed production alias
// names stays, however idle.
func TestUnloadsIdlePinnedVersions(t *testing.T) {
	type check struct {
		version  int64
		unloaded bool
	}
	checks := make(chan check, 64)
	e := newEnv(t, envOptions{
		cfg: func(c *inference.Config) { c.PinnedIdleTimeout = 20 * time.Millisecond },
		svc: func(s *inference.Service) {
			inference.SetIdleCheckHook(s, func(model string, version int64, unloaded bool) {
				select {
				case checks <- check{version, unloaded}:
				default: // the test has seen enough
				}
			})
		},
	})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersion(t, "pets", 2, newTestModel(3))
	e.reg.setAlias("pets", "production", 1)
	img := [][]byte{imagingtest.PNG(4, 4, 1)}
	for _, req := range []*inferencepb.PredictRequest{
		{Images: img},                            // production: v1, followed
		{Model: "pets", Version: 1, Images: img}, // v1 pinned too
		{Model: "pets", Version: 2, Images: img}, // v2 pinned only
	} {
		if _, err := e.client.Predict(t.Context(), req); err != nil {
			t.Fatalf("Predict(%v) = %v", req, err)
		}
	}
	timeout := time.After(20 * time.Second)
	var v1Kept, v2Unloaded bool
	for !v1Kept || !v2Unloaded {
		select {
		case c := <-checks:
			switch {
			case c.version == 1 && c.unloaded:
				t.Fatal("v1, which production names, was unloaded as idle")
			case c.version == 1:
				v1Kept = true
			case c.version == 2 && c.unloaded:
				v2Unloaded = true
			}
		case <-timeout:
			t.Fatalf("after 20s: v1 kept %v, v2 unloaded %v; want both", v1Kept, v2Unloaded)
		}
	}
	resp, err := e.client.ListLoadedModels(t.Context(), &inferencepb.ListLoadedModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.GetModels() {
		if m.GetVersion() == 2 {
			t.Errorf("ListLoadedModels() lists v2 after it was unloaded: %v", resp)
		}
	}
	got, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "pets", Version: 2, Images: img})
	if err != nil || got.GetVersion() != 2 {
		t.Fatalf("Predict(v2) after unloading = %v, %v; want v2 loaded again", got, err)
	}
	if err := e.check(t, got, img); err != nil {
		t.Fatal(err)
	}
}
