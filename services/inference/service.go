// Package inference is the Inference service: it serves the Registry's
// model versions from ONNX Runtime sessions, batching concurrent requests,
// through Shoal's own API and the Open Inference Protocol.
package inference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// Deps are what the service is built from; the caller owns them. Artifacts
// are read from the shared blob store by the key the Registry names, so
// replicas load models without streaming them through the Registry.
type Deps struct {
	Log      *slog.Logger
	Blobs    blob.Store
	Registry registrypb.RegistryServiceClient
	// ONNXRuntime says where the ONNX Runtime library is; Start loads it.
	ONNXRuntime onnxrt.Config
	// Version is reported by the Open Inference Protocol's ServerMetadata.
	Version string
	// Metrics registers the service's Prometheus series; nil keeps them
	// unregistered.
	Metrics prometheus.Registerer
	// Panics recovers panics in loads, batches, preprocessing and the
	// alias follower: each fails its own request or load only (nil:
	// recovered and logged, not counted).
	Panics *panics.Guard
}

// Service is the Inference service.
type Service struct {
	cfg  Config
	deps Deps
	rt   *onnxrt.Runtime
	met  *metrics

	mu sync.Mutex
	// runCtx is Run's context, which owns every model's batcher; nil until
	// Run starts. Loads asked for before then wait for running to close.
	runCtx  context.Context
	running chan struct{}
	models  map[versionKey]*entry
	// aliases maps the aliases this process follows to the version it
	// serves for them: the Registry's value once that version is warm.
	aliases map[aliasKey]int64
	// view is the Registry's aliases as the watch last saw them, valid once
	// synced.
	view   map[aliasKey]int64
	synced bool
	// changed wakes the reconcile loop (capacity 1).
	changed chan struct{}
	// loadFailures holds why the last load of a version an alias names
	// failed, until it loads; the serving reports carry it.
	loadFailures map[versionKey]loadFailure
	// replica is the name this replica reports to the Registry under;
	// reportNow wakes the reporter for a change (capacity 1).
	replica   string
	reportNow chan struct{}
	// resident, freeing and sizes account for the memory budget (see
	// budget.go): sizes are the versions' bytes as measured at their last
	// load.
	resident, freeing int64
	sizes             map[versionKey]int64
	// owned tracks the goroutines of loads and batchers, all ended by
	// runCtx.
	owned sync.WaitGroup
	// idleChecked, when set (by tests), hears each idle check's outcome.
	idleChecked func(model string, version int64, unloaded bool)
}

type versionKey struct {
	model   string
	version int64
}

type aliasKey struct{ model, alias string }

// entry is a cached model version: loading until done is closed, then m or
// err.
type entry struct {
	done chan struct{}
	m    *model
	err  error
	// pinned entries were asked for by version number and are kept even
	// when no followed alias points at them, until idle for
	// Config.PinnedIdleTimeout.
	pinned bool
	// lastUsed is when a request last resolved to the entry (UnixNano).
	lastUsed atomic.Int64
	// inUse counts the requests holding the loaded version (Service.hold);
	// evict marks it to be unloaded for the memory budget when that count
	// falls to 0. Both guarded by Service.mu.
	inUse int
	evict bool
	// idle is the timer of the next idle check; guarded by Service.mu.
	idle *time.Timer
}

// loaded returns the entry's model once its load has finished, else nil;
// m and err are written before done is closed and only read after.
func (e *entry) loaded() *model {
	select {
	case <-e.done:
		return e.m
	default:
		return nil
	}
}

// New returns the service; it does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Log == nil || deps.Blobs == nil || deps.Registry == nil {
		return nil, errors.New("inference: Log, Blobs and Registry are required")
	}
	reg := deps.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("inference: metrics: %w", err)
	}
	met.budget.Set(float64(cfg.MemoryBudget))
	return &Service{cfg: cfg, deps: deps, met: met, models: map[versionKey]*entry{}, aliases: map[aliasKey]int64{},
		view: map[aliasKey]int64{}, sizes: map[versionKey]int64{}, changed: make(chan struct{}, 1), running: make(chan struct{}),
		loadFailures: map[versionKey]loadFailure{}, replica: replicaName(cfg), reportNow: make(chan struct{}, 1)}, nil
}

// Start loads ONNX Runtime; a missing library is a start-up error.
func (s *Service) Start(context.Context) error {
	rt, err := onnxrt.Load(s.deps.ONNXRuntime)
	if err != nil {
		return fmt.Errorf("inference: %w", err)
	}
	s.rt = rt
	return nil
}

// Register adds the service's RPCs, Shoal's and the Open Inference
// Protocol's, to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	h := &handler{svc: s}
	inferencepb.RegisterInferenceServiceServer(r, h)
	oippb.RegisterGRPCInferenceServiceServer(r, &oipHandler{svc: s})
}

// Run owns the loaded models: it follows the Registry's aliases, loading
// and swapping in new versions, and tells the Registry what it serves,
// until ctx ends; then it stops every batcher and frees every session.
func (s *Service) Run(ctx context.Context) error {
	if s.rt == nil {
		return errors.New("inference: Run before Start")
	}
	s.mu.Lock()
	s.runCtx = ctx
	s.mu.Unlock()
	close(s.running)
	var reporter sync.WaitGroup
	reporter.Go(func() { s.report(ctx) })
	s.follow(ctx)
	reporter.Wait()
	s.mu.Lock()
	for _, e := range s.models {
		if e.idle != nil {
			e.idle.Stop()
		}
	}
	s.mu.Unlock()
	s.owned.Wait()
	return nil
}

// ready reports whether any model version is warm.
func (s *Service) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.models {
		if m := e.loaded(); m != nil && m.ready.Load() {
			return true
		}
	}
	return false
}

// loaded returns the warm version, or nil.
func (s *Service) loaded(k versionKey) *model {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.models[k]; e != nil {
		if m := e.loaded(); m != nil && m.ready.Load() {
			return m
		}
	}
	return nil
}

// acquire returns version k, loaded and warm, loading it if need be; v is
// its Registry record, fetched if nil. Concurrent callers share one load,
// which runs under Run's context so a caller giving up does not abort it.
func (s *Service) acquire(ctx context.Context, k versionKey, v *registrypb.Version, pin bool) (*model, error) {
	// The process is ready once every service has started; Run may be a
	// moment behind, and a request that comes in that moment waits for it.
	select {
	case <-s.running:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	s.mu.Lock()
	e := s.models[k]
	var victims []victim // unloaded as the load starts, to make room for it
	if e == nil {
		if s.runCtx == nil || s.runCtx.Err() != nil {
			s.mu.Unlock()
			return nil, status.Error(codes.Unavailable, "the inference service is not running")
		}
		var err error
		if victims, err = s.roomFor(k); err != nil {
			s.mu.Unlock()
			s.unload(victims)
			return nil, err
		}
		e = &entry{done: make(chan struct{})}
		s.models[k] = e
		runCtx, room := s.runCtx, victims
		s.owned.Go(func() {
			// The versions unloaded to make room are freed first: their
			// memory is not the new version's, and Footprint would not
			// see it go (Session.Close waits for a measurement).
			for _, v := range room {
				select {
				case <-v.m.gone:
				case <-runCtx.Done():
				}
			}
			s.loadEntry(runCtx, k, v, e)
		})
	}
	if pin {
		e.pinned = true
	}
	s.mu.Unlock()
	s.unload(victims)
	e.lastUsed.Store(time.Now().UnixNano())
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return e.m, e.err
}

// checkIdle unloads entry e of version k if it is pinned, no followed alias
// names it and it has served nothing for Config.PinnedIdleTimeout;
// otherwise it arms the next check for when it could first be that idle.
// One timer per loaded version, re-armed at most once per timeout: no
// polling.
func (s *Service) checkIdle(k versionKey, e *entry) {
	timeout := s.cfg.PinnedIdleTimeout
	s.mu.Lock()
	if s.models[k] != e || s.runCtx == nil || s.runCtx.Err() != nil {
		s.mu.Unlock()
		return
	}
	idle := time.Since(time.Unix(0, e.lastUsed.Load()))
	unload := e.pinned && idle >= timeout && !s.aliased(k)
	if unload {
		e.pinned = false // retire now frees it
	} else {
		e.idle = time.AfterFunc(max(timeout-idle, timeout/8, time.Millisecond), func() { s.guardedCheckIdle(k, e) })
	}
	hook := s.idleChecked
	s.mu.Unlock()
	if unload {
		s.deps.Log.Info("inference: unloading an idle version", "model", k.model, "version", k.version, "idle", idle.Round(time.Second))
		s.retire(k)
	}
	if hook != nil {
		hook(k.model, k.version, unload)
	}
}

// guardedCheckIdle is checkIdle on its timer's goroutine.
func (s *Service) guardedCheckIdle(k versionKey, e *entry) {
	defer s.deps.Panics.Recover("inference idle check", nil)
	s.checkIdle(k, e)
}

// aliased reports whether a followed alias names k; s.mu must be held.
func (s *Service) aliased(k versionKey) bool {
	for a, v := range s.aliases {
		if a.model == k.model && v == k.version {
			return true
		}
	}
	return false
}

// loadEntry fills e, starts the model's batcher under runCtx, and forgets
// e if the load failed so a later request tries again.
func (s *Service) loadEntry(runCtx context.Context, k versionKey, v *registrypb.Version, e *entry) {
	defer close(e.done)
	defer s.deps.Panics.Recover("inference load", func(err error) {
		e.m, e.err = nil, status.Errorf(codes.Internal, "loading version %d of model %q failed: %v", k.version, k.model, err)
		s.forget(k, e)
	})
	if v == nil {
		resp, err := s.deps.Registry.GetVersion(runCtx, &registrypb.GetVersionRequest{Model: k.model, Version: k.version})
		if err != nil {
			e.err = registryError(err, fmt.Sprintf("version %d of model %q", k.version, k.model))
			s.forget(k, e)
			return
		}
		v = resp.GetVersion()
	}
	m, err := s.load(runCtx, v)
	if err != nil {
		s.deps.Log.Error("inference: load failed", "model", k.model, "version", k.version, "err", err)
		e.err = loadError(err, k)
		s.forget(k, e)
		return
	}
	s.mu.Lock()
	victims, err := s.admitLoaded(k, m)
	if err != nil {
		s.mu.Unlock()
		m.free()
		s.deps.Log.Error("inference: load refused", "model", k.model, "version", k.version, "bytes", m.bytes, "err", err)
		e.err = err
		s.forget(k, e)
		return
	}
	m.ready.Store(true)
	e.m = m
	if s.cfg.PinnedIdleTimeout > 0 {
		e.idle = time.AfterFunc(s.cfg.PinnedIdleTimeout, func() { s.guardedCheckIdle(k, e) })
	}
	s.mu.Unlock()
	s.unload(victims)
	s.deps.Log.Info("inference: model loaded", "model", k.model, "version", k.version,
		"sessions", len(m.sessions), "wide", m.wide, "wide_only", m.wideOnly, "max_batch", m.batchCap, "bytes", m.bytes)
	s.owned.Go(func() {
		if err := s.deps.Panics.Call("batcher", func() error { return m.batcher.Run(runCtx) }); err != nil {
			// A panic closed the batcher: forget the version, so that the
			// callers it failed (ErrClosed, retried) and later ones load
			// it afresh instead of finding a closed one.
			m.ready.Store(false)
			s.forgetAfterPanic(k, e)
		}
		m.free()
		s.freed(m)
		s.mu.Lock()
		_, again := s.models[k] // reloaded since: keep its series
		s.mu.Unlock()
		if !again {
			s.met.forget(m.name, m.version)
		}
	})
}

// forgetAfterPanic is forget for a loaded version whose batcher panicked:
// its idle timer goes too.
func (s *Service) forgetAfterPanic(k versionKey, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(k, e)
}

func (s *Service) forget(k versionKey, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.models[k] == e {
		delete(s.models, k)
	}
}

// retire drains and frees version k unless it is pinned or a followed
// alias still names it.
func (s *Service) retire(k versionKey) {
	s.mu.Lock()
	e := s.models[k]
	if e == nil || e.pinned || s.aliased(k) {
		s.mu.Unlock()
		return
	}
	s.dropLocked(k, e)
	s.mu.Unlock()
	<-e.done
	if e.m != nil {
		e.m.ready.Store(false)
		// The batcher finishes what is queued, then its goroutine frees
		// the sessions; callers that still hold e.m retry on ErrClosed.
		e.m.batcher.Close()
		s.deps.Log.Info("inference: model retired", "model", k.model, "version", k.version)
	}
}

// registryError turns a Registry failure into the status to return: its
// own words for what the caller got wrong, Unavailable when it cannot be
// reached, and a wrapped internal error otherwise.
func registryError(err error, what string) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("registry: %s: %w", what, err)
	}
	switch st.Code() {
	case codes.NotFound, codes.InvalidArgument:
		return status.Error(st.Code(), st.Message())
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return status.Errorf(codes.Unavailable, "the model registry is unavailable: %s", st.Message())
	}
	return fmt.Errorf("registry: %s: %w", what, err)
}

func loadError(err error, k versionKey) error {
	if errors.Is(err, errBadModel) {
		return status.Errorf(codes.FailedPrecondition, "model %q version %d cannot be served: %v", k.model, k.version, err)
	}
	if errors.Is(err, blob.ErrNotFound) {
		return status.Errorf(codes.FailedPrecondition, "model %q version %d: its artifact is missing from the blob store", k.model, k.version)
	}
	return fmt.Errorf("load %s v%d: %w", k.model, k.version, err)
}
