package trainer

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/storage"
)

// A job outlives short storage outages: training itself needs neither the
// database nor the blob store, so a job that was training when one went
// away keeps its events until they can be written, and waits for storage
// to return (within Config.StorageWait) when it comes to store its
// result, instead of throwing hours of training away.

// maxUnwritten bounds the events a job keeps while the database is away
// (progress events are never kept: the next replaces them).
const maxUnwritten = 1000

// emit records one event of a running job and wakes its watchers. An
// event that cannot be written (the database is away) is kept, with any
// before it, and written before the job's next event or its end; progress
// events are dropped instead, since the next one replaces them. Writing
// never stops training.
func (s *Service) emit(ctx context.Context, id string, e *trainerpb.WatchJobResponse) {
	s.mu.Lock()
	queue := append(s.unwritten[id], e)
	delete(s.unwritten, id)
	s.mu.Unlock()
	if s.writeEvents(ctx, id, queue) {
		s.changes.Notify()
	}
}

// flushEvents writes the events a job kept; it reports whether none is
// left.
func (s *Service) flushEvents(ctx context.Context, id string) bool {
	s.mu.Lock()
	queue := s.unwritten[id]
	delete(s.unwritten, id)
	s.mu.Unlock()
	if len(queue) == 0 {
		return true
	}
	ok := s.writeEvents(ctx, id, queue)
	s.changes.Notify()
	return ok
}

// writeEvents writes queue in order and keeps what it could not write.
func (s *Service) writeEvents(ctx context.Context, id string, queue []*trainerpb.WatchJobResponse) bool {
	for i, e := range queue {
		err := s.st.event(ctx, id, e)
		if err == nil {
			continue
		}
		var keep []*trainerpb.WatchJobResponse
		for _, k := range queue[i:] {
			if k.GetProgress() == nil {
				keep = append(keep, k)
			}
		}
		if n := len(keep) - maxUnwritten; n > 0 {
			keep = keep[n:]
		}
		if ctx.Err() == nil && i == 0 && len(queue) == 1 {
			s.deps.Log.Warn("recording a job event failed; keeping it until the database answers", "job", id, "err", err)
		}
		if len(keep) > 0 {
			s.mu.Lock()
			s.unwritten[id] = keep
			s.mu.Unlock()
		}
		return false
	}
	if len(queue) > 1 {
		s.deps.Log.Info("recorded a job's kept events", "job", id, "events", len(queue))
	}
	return true
}

// forgetEvents drops what a job kept once its end is recorded.
func (s *Service) forgetEvents(id string) {
	s.mu.Lock()
	delete(s.unwritten, id)
	s.mu.Unlock()
}

// retryStorage runs fn (attempt counts from 0) until it succeeds, fails
// for a reason other than unreachable storage, or Config.StorageWait has
// passed.
func (s *Service) retryStorage(ctx context.Context, id, what string, fn func(attempt int) error) error {
	deadline := time.Now().Add(s.cfg.StorageWait)
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		err := fn(attempt)
		if err == nil || !transient(err) || ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return err
		}
		s.deps.Log.Warn("storage is unavailable; retrying", "job", id, "step", what, "in", backoff, "err", err)
		s.logf(ctx, id, "%s failed: storage is unavailable (%s); retrying in %s", what, status.Convert(err).Message(), backoff)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// transient reports an error that storage coming back may cure: another
// service answered UNAVAILABLE, or this one's database or blob store
// could not be reached.
func transient(err error) bool {
	return status.Code(err) == codes.Unavailable || storage.Transient(err)
}
