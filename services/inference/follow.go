package inference

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage"
)

// defaultAlias is served when a request names neither version nor alias.
const defaultAlias = "production"

// resolve returns the warm model version a request asks for: a version
// number, else an alias (default "production") of a model (default the
// configured default model). A followed alias resolves locally to the
// version this process serves for it; any other is asked of the Registry
// once and followed from then on.
func (s *Service) resolve(ctx context.Context, name, alias string, version int64) (*model, error) {
	implicit := name == "" && alias == "" && version == 0
	if name == "" {
		name = s.cfg.DefaultModel
		if name == "" {
			return nil, status.Error(codes.InvalidArgument, "model is required: no default model is configured (--inference.default-model)")
		}
	}
	switch {
	case version < 0:
		return nil, status.Errorf(codes.InvalidArgument, "version %d: must be positive, or 0 for an alias", version)
	case version > 0:
		return s.acquire(ctx, versionKey{name, version}, nil, true)
	}
	if alias == "" {
		alias = defaultAlias
	}
	ak := aliasKey{name, alias}
	for {
		s.mu.Lock()
		v, followed := s.aliases[ak]
		s.mu.Unlock()
		if !followed {
			break
		}
		vk := versionKey{name, v}
		if m := s.loaded(vk); m != nil {
			return m, nil
		}
		m, err := s.acquire(ctx, vk, nil, false)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		now := s.aliases[ak]
		s.mu.Unlock()
		if now == v {
			return m, nil
		}
		// The alias moved on while this version was looked up, and it was
		// retired and then loaded again here: free it and follow the alias.
		s.retire(vk)
	}
	resp, err := s.deps.Registry.GetVersion(ctx, &registrypb.GetVersionRequest{Model: name, Alias: alias})
	if err != nil {
		if implicit && status.Code(err) == codes.NotFound {
			return nil, status.Errorf(codes.Unavailable, "no model is being served yet: the default model %q has no %q version", name, alias)
		}
		return nil, registryError(err, fmt.Sprintf("alias %q of model %q", alias, name))
	}
	m, err := s.acquire(ctx, versionKey{name, resp.GetVersion().GetVersion()}, resp.GetVersion(), false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	now, followed := s.aliases[ak]
	if !followed {
		s.aliases[ak], now = m.version, m.version
	}
	s.mu.Unlock()
	if !followed {
		s.pokeReport() // one more alias followed
	}
	if now != m.version {
		// The alias became followed, naming another version, while this
		// one was looked up: nothing would ever retire this one, so retire
		// it now (unless pinned) and serve what the alias names.
		s.retire(versionKey{name, m.version})
		return s.resolve(ctx, name, alias, 0)
	}
	s.poke() // the watch may already know a newer version
	return m, nil
}

func (s *Service) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// follow keeps the followed aliases in step with the Registry until ctx
// ends: a receiver keeps s.view equal to the Registry's aliases through
// WatchAliases (reconnecting with backoff), and after every change
// reconcile loads the versions they now name and swaps them in.
func (s *Service) follow(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A panic in the watch restarts it (after a second, so a panic
		// on every event cannot spin); serving goes on meanwhile.
		for ctx.Err() == nil {
			if s.deps.Panics.Call("alias watch", func() error { s.watch(ctx); return nil }) == nil {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	failed := map[versionKey]bool{}
	backoff := map[versionKey]time.Duration{}
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	// A panic in a reconcile round fails that round only; the next change
	// or retry runs another.
	reconcile := func() (next time.Duration) {
		_ = s.deps.Panics.Call("alias follower", func() error { next = s.reconcile(ctx, failed, backoff); return nil })
		return next
	}
	for {
		// The default model, if a previous view exists; then after every
		// change, and again when a load that failed for want of storage
		// is due for another try.
		if d := reconcile(); d > 0 {
			retry.Reset(d)
		}
		select {
		case <-ctx.Done():
			<-done
			return
		case <-s.changed:
		case <-retry.C:
		}
	}
}

// loadRetry bounds the wait between attempts to load a version whose
// load failed because the Registry or the blob store was unreachable; the
// longest is the alias watch's reconnect backoff, so a promotion reaches
// Inference within about 10 s of storage coming back.
const (
	minLoadRetry = time.Second
	maxLoadRetry = 10 * time.Second
)

// watch runs WatchAliases, reconnecting with exponential backoff.
func (s *Service) watch(ctx context.Context) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		synced, err := s.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if synced {
			backoff = minBackoff
		}
		s.deps.Log.Warn("inference: alias watch interrupted; reconnecting", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// watchOnce follows one WatchAliases stream until it fails; synced says
// whether it got as far as the Registry's snapshot.
func (s *Service) watchOnce(ctx context.Context) (synced bool, err error) {
	stream, err := s.deps.Registry.WatchAliases(ctx, &registrypb.WatchAliasesRequest{})
	if err != nil {
		return false, err
	}
	current := map[aliasKey]int64{}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return synced, err
		}
		a := ev.GetAlias()
		k := aliasKey{a.GetModel(), a.GetAlias()}
		switch ev.GetType() {
		case registrypb.AliasEventType_ALIAS_EVENT_TYPE_CURRENT:
			current[k] = a.GetVersion()
			continue
		case registrypb.AliasEventType_ALIAS_EVENT_TYPE_SYNCED:
			synced = true
			s.mu.Lock()
			s.view, s.synced = current, true
			s.mu.Unlock()
		case registrypb.AliasEventType_ALIAS_EVENT_TYPE_SET:
			s.mu.Lock()
			s.view[k] = a.GetVersion()
			s.mu.Unlock()
		case registrypb.AliasEventType_ALIAS_EVENT_TYPE_DELETED:
			s.mu.Lock()
			delete(s.view, k)
			s.mu.Unlock()
		default:
			continue
		}
		s.poke()
		s.pokeReport() // what the alias names now
	}
}

// reconcile makes every followed alias (and the default model's production
// alias) serve the version the Registry names: it loads and warms that
// version first, then swaps it in, then retires the old one. A failed load
// leaves the old version serving. One that failed because storage was
// unreachable is tried again after the returned delay (0: none due),
// backing off; any other is logged and not retried until the alias moves
// again.
func (s *Service) reconcile(ctx context.Context, failed map[versionKey]bool, backoff map[versionKey]time.Duration) (retryIn time.Duration) {
	type change struct {
		alias    aliasKey
		from, to int64 // 0: none
	}
	var changes []change
	s.mu.Lock()
	if !s.synced {
		s.mu.Unlock()
		return 0
	}
	followed := map[aliasKey]bool{}
	for k := range s.aliases {
		followed[k] = true
	}
	if s.cfg.DefaultModel != "" {
		followed[aliasKey{s.cfg.DefaultModel, defaultAlias}] = true
	}
	named := map[versionKey]bool{}
	for k := range followed {
		from, to := s.aliases[k], s.view[k]
		if from != to {
			changes = append(changes, change{k, from, to})
		}
		named[versionKey{k.model, to}] = true
	}
	s.mu.Unlock()
	// A version that failed to load is not tried again while an alias
	// names it; once none does it is forgotten, so that an alias set to it
	// again (its artifact restored, say) loads it anew.
	for vk := range failed {
		if !named[vk] {
			delete(failed, vk)
		}
	}
	for _, c := range changes {
		if ctx.Err() != nil {
			return 0
		}
		if c.to != 0 {
			vk := versionKey{c.alias.model, c.to}
			if failed[vk] {
				continue
			}
			if _, err := s.acquire(ctx, vk, nil, false); err != nil {
				// ResourceExhausted: the memory budget is held by
				// versions in use; room is made as they drain.
				if code := status.Code(err); code == codes.Unavailable || code == codes.ResourceExhausted || storage.Transient(err) {
					d := min(max(2*backoff[vk], minLoadRetry), maxLoadRetry)
					backoff[vk] = d
					if retryIn == 0 || d < retryIn {
						retryIn = d
					}
					s.deps.Log.Warn("inference: new version cannot be loaded while storage is unavailable; the previous one keeps serving",
						"model", c.alias.model, "alias", c.alias.alias, "version", c.to, "serving", c.from, "retry_in", d, "err", err)
					s.failedLoad(vk, err, true)
					continue
				}
				failed[vk] = true
				s.deps.Log.Error("inference: new version failed to load; the previous one keeps serving",
					"model", c.alias.model, "alias", c.alias.alias, "version", c.to, "serving", c.from, "err", err)
				s.failedLoad(vk, err, false)
				continue
			}
			delete(backoff, vk)
			s.loadedAfterAll(vk)
		}
		s.mu.Lock()
		// A request may have set the alias meanwhile (resolve, before the
		// alias was followed), to a version c.from is not: retire that
		// one too, or nothing ever would.
		now := s.aliases[c.alias]
		if c.to == 0 {
			delete(s.aliases, c.alias)
		} else {
			s.aliases[c.alias] = c.to
		}
		s.mu.Unlock()
		if c.from != 0 && c.from != c.to {
			s.retire(versionKey{c.alias.model, c.from})
		}
		if now != 0 && now != c.to && now != c.from {
			s.retire(versionKey{c.alias.model, now})
		}
		s.deps.Log.Info("inference: alias swapped", "model", c.alias.model, "alias", c.alias.alias, "from", c.from, "to", c.to)
		s.pokeReport()
	}
	return retryIn
}
