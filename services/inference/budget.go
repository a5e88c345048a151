package inference

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/overload"
)

// The memory budget (Config.MemoryBudget). Each version's size is measured
// when it loads (model.bytes: onnxrt.Footprint around opening and warming
// its sessions, plus their Go buffers). Accounting, all under Service.mu:
//
//   - resident is the bytes of every loaded version whose sessions are not
//     freed yet, including those unloading (draining their queue);
//   - freeing is the part of resident that is unloading;
//   - resident - freeing is what the budget bounds.
//
// A version is in use from the moment a request resolves to it until its
// batch is done (entry.inUse); one in use is never unloaded under the
// request: when the budget needs its room, it is marked (entry.evict) and
// unloaded as its last request ends. Versions that followed aliases name
// are unloaded after all others; within each group, the least recently
// used first. A version asked for again after being unloaded loads again.

// held is the bytes the budget bounds; s.mu must be held.
func (s *Service) held() int64 { return s.resident - s.freeing }

// hold marks m in use by one request and refreshes its place in the LRU
// order. It returns false when m is no longer the loaded instance of its
// version (unloaded since the request resolved it): resolve again.
func (s *Service) hold(m *model) (release func(), ok bool) {
	k := versionKey{m.name, m.version}
	s.mu.Lock()
	e := s.models[k]
	if e == nil || e.loaded() != m {
		s.mu.Unlock()
		return nil, false
	}
	e.inUse++
	e.lastUsed.Store(time.Now().UnixNano())
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		e.inUse--
		var victims []victim
		if e.inUse == 0 && e.evict {
			victims = s.evictLocked(versionKey{}, 0, true)
		}
		s.mu.Unlock()
		s.unload(victims)
	}, true
}

// victim is a version taken out of service to free its memory.
type victim struct {
	k versionKey
	m *model
}

// evictLocked takes idle versions out of service, least valuable first,
// until the loaded versions and need more bytes fit in the budget; keep is
// never chosen. With mark, versions in use that would have to go are
// marked to go when their last request ends (and earlier marks are
// recomputed). The caller unloads the victims once it has released s.mu.
func (s *Service) evictLocked(keep versionKey, need int64, mark bool) []victim {
	budget := int64(s.cfg.MemoryBudget)
	if budget <= 0 {
		return nil
	}
	type candidate struct {
		k       versionKey
		e       *entry
		aliased bool
	}
	var cands []candidate
	for k, e := range s.models {
		if mark {
			e.evict = false
		}
		if m := e.loaded(); m != nil && k != keep {
			cands = append(cands, candidate{k, e, s.aliased(k)})
		}
	}
	// Unaliased first, then the least recently used.
	slices.SortFunc(cands, func(a, b candidate) int {
		if a.aliased != b.aliased {
			if a.aliased {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.e.lastUsed.Load(), b.e.lastUsed.Load())
	})
	var victims []victim
	over := s.held() + need - budget
	for _, c := range cands {
		if over <= 0 {
			break
		}
		if c.e.inUse > 0 {
			if mark {
				c.e.evict = true
				over -= c.e.m.bytes
			}
			continue
		}
		victims = append(victims, victim{c.k, c.e.m})
		over -= c.e.m.bytes
		s.dropLocked(c.k, c.e)
		s.met.budgetUnloads.Inc()
	}
	return victims
}

// dropLocked takes entry e of k out of s.models; a loaded version's
// bytes count as freeing until its batcher ends and frees its sessions.
func (s *Service) dropLocked(k versionKey, e *entry) {
	if s.models[k] != e {
		return
	}
	delete(s.models, k)
	if e.idle != nil {
		e.idle.Stop()
	}
	if m := e.loaded(); m != nil && !m.dropped {
		m.dropped = true
		s.freeing += m.bytes
	}
}

// unload stops the victims' batchers: each finishes what is queued (nothing,
// unless a request came in since it was chosen, which then still
// completes) and its goroutine frees the sessions.
func (s *Service) unload(victims []victim) {
	for _, v := range victims {
		v.m.ready.Store(false)
		v.m.batcher.Close()
		s.deps.Log.Info("inference: version unloaded to stay within the memory budget", "model", v.k.model,
			"version", v.k.version, "bytes", v.m.bytes, "budget", int64(s.cfg.MemoryBudget))
	}
}

// freed is called once m's sessions are freed.
func (s *Service) freed(m *model) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resident -= m.bytes
	if m.dropped {
		s.freeing -= m.bytes
	}
	s.met.resident.Set(float64(s.resident))
	close(m.gone)
}

// roomFor is asked before version k starts loading: it refuses a version
// known (from an earlier load) to be larger than the whole budget, unloads
// idle versions to make room for one of known size, and refuses to load
// anything while versions in use hold more than the budget. So the budget
// is exceeded only by the last version loaded while the versions in use
// filled it (a hot swap under traffic, for one), and only until they
// drain. s.mu must be held; the victims are the caller's to unload.
func (s *Service) roomFor(k versionKey) ([]victim, error) {
	budget := int64(s.cfg.MemoryBudget)
	if budget <= 0 {
		return nil, nil
	}
	need := s.sizes[k]
	if need > budget {
		return nil, tooLarge(k, need, budget)
	}
	victims := s.evictLocked(k, need, false)
	if s.held() > budget {
		return victims, overload.Errorf(time.Second,
			"model %q version %d cannot be loaded now: the memory budget (%s, --inference.memory-budget) is held by versions serving requests; retry shortly",
			k.model, k.version, formatBytes(budget))
	}
	return victims, nil
}

// admitLoaded counts a freshly loaded version against the budget: it
// refuses one larger than the whole budget and unloads others to make
// room for it. s.mu must be held; the victims are the caller's to unload.
func (s *Service) admitLoaded(k versionKey, m *model) ([]victim, error) {
	s.sizes[k] = m.bytes
	if budget := int64(s.cfg.MemoryBudget); budget > 0 && m.bytes > budget {
		return nil, tooLarge(k, m.bytes, budget)
	}
	s.resident += m.bytes
	s.met.resident.Set(float64(s.resident))
	s.met.loadedBytes.WithLabelValues(m.name, m.verName).Set(float64(m.bytes))
	return s.evictLocked(k, 0, true), nil
}

func tooLarge(k versionKey, size, budget int64) error {
	return status.Errorf(codes.FailedPrecondition,
		"model %q version %d needs %s loaded, more than the whole memory budget of %s: raise --inference.memory-budget to serve it",
		k.model, k.version, formatBytes(size), formatBytes(budget))
}

// formatBytes writes n in MiB with one decimal, or in bytes when small.
func formatBytes(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
