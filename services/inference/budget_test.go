package inference_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/config"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/services/inference"
)

// wideTestModel is a classifier of 256x256 images: its weights (3×256×256×3
// floats, 2.25 MiB, per session) make up most of what a loaded version
// holds.
func wideTestModel(seed byte) testModel {
	m := newTestModel(seed)
	m.c.Height, m.c.Width = 256, 256
	m.spec = &registrypb.InputSpec{Channels: 3, Height: 256, Width: 256, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH,
		Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW}
	return m
}

// listLoaded returns ListLoadedModels' versions of pets and their bytes.
func listLoaded(t *testing.T, e *env) (*inferencepb.ListLoadedModelsResponse, map[int64]int64) {
	t.Helper()
	resp, err := e.client.ListLoadedModels(t.Context(), &inferencepb.ListLoadedModelsRequest{})
	if err != nil {
		t.Fatalf("ListLoadedModels() = %v", err)
	}
	out := map[int64]int64{}
	for _, m := range resp.GetModels() {
		out[m.GetVersion()] = m.GetLoadedBytes()
	}
	return resp, out
}

func versionsOf(m map[int64]int64) []int64 {
	var vs []int64
	for v := range m {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// predictVersion asks pets' version v for one image and checks the answer.
func predictVersion(t *testing.T, e *env, v int64) error {
	t.Helper()
	img := imagingtest.PNG(8, 8, int(v))
	resp, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "pets", Version: v, Images: [][]byte{img}})
	if err != nil {
		return err
	}
	return e.check(t, resp, [][]byte{img})
}

// versionSize loads one wideTestModel version with no budget and returns
// what it measured, the size every budget below is set from.
func versionSize(t *testing.T) int64 {
	t.Helper()
	e := newEnv(t, envOptions{cfg: func(c *inference.Config) { c.MaxBatchSize = 2 }})
	e.addVersion(t, "pets", 1, wideTestModel(0))
	if err := predictVersion(t, e, 1); err != nil {
		t.Fatal(err)
	}
	resp, sizes := listLoaded(t, e)
	size := sizes[1]
	// Two sessions, each holding the weights (3×256×256×3 float32).
	if weights := int64(2 * 4 * 3 * 256 * 256 * 3); size < weights {
		t.Fatalf("ListLoadedModels() = %v; want at least the two sessions' weights, %d bytes", resp, weights)
	}
	if resp.GetResidentBytes() != size || resp.GetMemoryBudgetBytes() != 0 {
		t.Fatalf("ListLoadedModels() = resident %d, budget %d; want %d, 0", resp.GetResidentBytes(), resp.GetMemoryBudgetBytes(), size)
	}
	return size
}

func budgetEnv(t *testing.T, budget int64, opts envOptions) *env {
	opts.cfg = func(c *inference.Config) { c.MemoryBudget, c.MaxBatchSize = config.Bytes(budget), 2 }
	e := newEnv(t, opts)
	for v := int64(1); v <= 4; v++ {
		e.addVersion(t, "pets", v, wideTestModel(byte(v)))
	}
	return e
}

// TestMemoryBudgetUnloadsLeastRecentlyUsed fills a budget of three and a
// half versions: the production version (loaded first, so the least
// recently used) and two pinned ones, then loads a fourth. The pinned
// version used longest ago goes; the aliased one stays although it is
// older, and the one just used stays.
func TestMemoryBudgetUnloadsLeastRecentlyUsed(t *testing.T) {
	size := versionSize(t)
	e := budgetEnv(t, 3*size+size/2, envOptions{})
	e.reg.setAlias("pets", "production", 1)
	until(t, "production loaded", func() bool { _, got := listLoaded(t, e); return len(got) == 1 })
	for _, v := range []int64{2, 3, 2} {
		if err := predictVersion(t, e, v); err != nil {
			t.Fatalf("Predict(v%d) = %v", v, err)
		}
	}
	if err := predictVersion(t, e, 4); err != nil {
		t.Fatalf("Predict(v4) = %v", err)
	}
	resp, got := listLoaded(t, e)
	if vs := versionsOf(got); !slices.Equal(vs, []int64{1, 2, 4}) {
		t.Fatalf("loaded after v4 = %v; want [1 2 4] (v3 least recently used, v1 aliased)", vs)
	}
	var total int64
	for v, b := range got {
		if b < size*85/100 || b > size*115/100 {
			t.Errorf("v%d holds %d bytes; want about %d", v, b, size)
		}
		total += b
	}
	if resp.GetMemoryBudgetBytes() != 3*size+size/2 || total > resp.GetMemoryBudgetBytes() {
		t.Errorf("ListLoadedModels() = budget %d, %d bytes loaded; want %d, within it", resp.GetMemoryBudgetBytes(), total, 3*size+size/2)
	}
	// Resident counts v3 until its sessions are freed, a moment later.
	until(t, "v3 freed", func() bool { resp, _ := listLoaded(t, e); return resp.GetResidentBytes() == total })
	if n := counterValue(t, e, "shoal_inference_budget_unloads_total"); n != 1 {
		t.Errorf("shoal_inference_budget_unloads_total = %v; want 1", n)
	}
	if b := gaugeValue(t, e, "shoal_inference_loaded_bytes", "4"); b != float64(got[4]) {
		t.Errorf("shoal_inference_loaded_bytes{v4} = %v; want %d", b, got[4])
	}
	// v3 comes back when asked for, and v1 (aliased) still stays.
	if err := predictVersion(t, e, 3); err != nil {
		t.Fatalf("Predict(v3) again = %v", err)
	}
	if _, got := listLoaded(t, e); !slices.Equal(versionsOf(got), []int64{1, 3, 4}) {
		t.Fatalf("loaded after v3 again = %v; want [1 3 4]", versionsOf(got))
	}
}

// TestMemoryBudgetNeverUnloadsUnderARequest holds requests inside their
// batch while other versions load: a version in use stays loaded until its
// request is answered, correctly, and then goes; while versions in use
// hold more than the budget, a new load is refused as overload.
func TestMemoryBudgetNeverUnloadsUnderARequest(t *testing.T) {
	size := versionSize(t)
	var (
		armed   atomic.Int32 // batches still to hold
		entered = make(chan struct{}, 4)
		proceed = make(chan struct{})
	)
	e := budgetEnv(t, size+size/2, envOptions{svc: func(*inference.Service) {
		inference.InjectBatchHook(t, func() {
			if armed.Add(-1) >= 0 {
				entered <- struct{}{}
				<-proceed
			}
		})
	}})
	armed.Store(2)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for _, v := range []int64{2, 3} {
		wg.Go(func() { errs <- predictVersion(t, e, v) })
		<-entered // v's request is in its batch
	}
	// v2 and v3 are both in use and hold 2 versions' bytes against a
	// budget of 1.5: nothing else loads, and neither is unloaded.
	err := predictVersion(t, e, 4)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "memory budget") {
		t.Errorf("Predict(v4) while v2 and v3 are in use = %v; want ResourceExhausted naming the memory budget", err)
	}
	if _, got := listLoaded(t, e); !slices.Equal(versionsOf(got), []int64{2, 3}) {
		t.Errorf("loaded while in use = %v; want [2 3]", versionsOf(got))
	}
	close(proceed)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Predict() held in its batch = %v", err)
		}
	}
	// Back within the budget: v2, marked when v3 loaded, went as its
	// request ended.
	if _, got := listLoaded(t, e); !slices.Equal(versionsOf(got), []int64{3}) {
		t.Errorf("loaded after the requests = %v; want [3]", versionsOf(got))
	}
	if err := predictVersion(t, e, 4); err != nil {
		t.Fatalf("Predict(v4) once idle = %v", err)
	}
	if _, got := listLoaded(t, e); !slices.Equal(versionsOf(got), []int64{4}) {
		t.Errorf("loaded after v4 = %v; want [4]", versionsOf(got))
	}
}

// TestVersionLargerThanTheBudget is refused with FailedPrecondition naming
// both sizes, the second time without loading it again, while a version
// that fits is served.
func TestVersionLargerThanTheBudget(t *testing.T) {
	size := versionSize(t)
	var gets atomic.Int32
	e := budgetEnv(t, size/2, envOptions{blobs: func(s blob.Store) blob.Store { return countingStore{s, &gets} }})
	e.addVersion(t, "pets", 5, newTestModel(5)) // 4x4 images: a few kilobytes
	for range 2 {
		err := predictVersion(t, e, 1)
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "more than the whole memory budget") {
			t.Fatalf("Predict(v1) = %v; want FailedPrecondition: more than the whole memory budget", err)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("v1's artifact was read %d times; want 1 (its size is remembered)", n)
	}
	if err := predictVersion(t, e, 5); err != nil {
		t.Fatalf("Predict(v5), which fits = %v", err)
	}
	if _, got := listLoaded(t, e); !slices.Equal(versionsOf(got), []int64{5}) {
		t.Errorf("loaded = %v; want [5]", versionsOf(got))
	}
}

// TestConcurrentLoadsAreCoalesced sends 16 first requests for one version
// at once: the artifact is read and the version loaded once.
func TestConcurrentLoadsAreCoalesced(t *testing.T) {
	var gets atomic.Int32
	e := budgetEnv(t, 0, envOptions{blobs: func(s blob.Store) blob.Store { return countingStore{s, &gets} }})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := predictVersion(t, e, 2); err != nil {
				t.Errorf("Predict(v2) = %v", err)
			}
		})
	}
	wg.Wait()
	if n := gets.Load(); n != 1 {
		t.Errorf("16 concurrent first requests read the artifact %d times; want 1", n)
	}
}

// countingStore counts Gets.
type countingStore struct {
	blob.Store
	n *atomic.Int32
}

func (c countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.n.Add(1)
	return c.Store.Get(ctx, key)
}

// counterValue reads an unlabelled counter.
func counterValue(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// gaugeValue reads a gauge of pets at version.
func gaugeValue(t *testing.T, e *env, name, version string) float64 {
	t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] == "pets" && labels["version"] == version {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
