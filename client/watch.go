package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

// Reconnection of a watch: the wait after a failed attempt doubles from
// the first to the last, and a watch gives up after maxReconnects attempts
// in a row that brought no event. Each attempt waits for the connection to
// be ready (gRPC's own reconnection), so these bound a server that takes
// calls and drops them, not one that is down for a while.
const (
	firstReconnectWait = 100 * time.Millisecond
	lastReconnectWait  = 5 * time.Second
	maxReconnects      = 30
)

type watchSettings struct{ after int64 }

// A WatchOption changes where WatchJob starts.
type WatchOption func(*watchSettings)

// AfterSequence starts the watch after the event with this sequence
// number, e.g. the last one a previous watch yielded; by default the
// job's whole history is replayed.
func AfterSequence(n int64) WatchOption { return func(s *watchSettings) { s.after = n } }

// WatchJob follows a training job: it yields the job's history (state
// changes, logs, each epoch's metrics, the test evaluation, the registered
// version; of the within-epoch progress events only the latest is kept),
// then its events as they happen, and ends after the event that moves the
// job to a final state (succeeded, failed or cancelled). Read that last
// event's GetState() for the outcome.
//
// When the connection is lost, or the server restarts, mid-watch
// (ErrUnavailable), WatchJob calls again from the last sequence number it
// yielded: no event is yielded twice, and none is lost. Until the first
// event arrives (of a watch without AfterSequence) nothing is retried: a
// server that cannot be reached, a job that does not exist or a missing
// token ends the sequence at once with that error. Any
// error is yielded once, with a nil event, and ends the sequence; so does
// ctx's end, and breaking out of the loop ends the call.
//
//	for ev, err := range c.WatchJob(ctx, jobID) {
//		if err != nil {
//			return err
//		}
//		if e := ev.GetEpoch(); e != nil {
//			fmt.Printf("epoch %d: val accuracy %.3f\n", e.GetEpoch(), e.GetValAccuracy())
//		}
//	}
func (c *Client) WatchJob(ctx context.Context, jobID string, opts ...WatchOption) iter.Seq2[*trainerpb.WatchJobResponse, error] {
	var s watchSettings
	for _, o := range opts {
		o(&s)
	}
	return func(yield func(*trainerpb.WatchJobResponse, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		after := s.after
		wait := firstReconnectWait
		for attempt := 0; ; attempt++ {
			// Once the watch is under way, a call waits for the
			// connection to come back rather than failing at once.
			stream, err := c.trainer.WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: jobID, AfterSequence: after}, grpc.WaitForReady(after > 0))
			for err == nil {
				var ev *trainerpb.WatchJobResponse
				if ev, err = stream.Recv(); err != nil {
					break
				}
				if ev.GetSequence() <= after {
					continue // already yielded, before a reconnection
				}
				after, attempt, wait = ev.GetSequence(), 0, firstReconnectWait
				if !yield(ev, nil) || final(ev) {
					return
				}
			}
			switch {
			case errors.Is(err, io.EOF):
				err = fmt.Errorf("watching job %s: the stream ended before the job did", jobID)
			case errors.Is(err, ErrUnavailable) && after > 0 && attempt < maxReconnects && ctx.Err() == nil:
				select {
				case <-ctx.Done():
				case <-time.After(wait):
					wait = min(2*wait, lastReconnectWait)
					continue
				}
				err = ctx.Err()
			}
			yield(nil, err)
			return
		}
	}
}

// final reports whether ev moves its job to a final state.
func final(ev *trainerpb.WatchJobResponse) bool {
	switch ev.GetState().GetState() {
	case trainerpb.JobState_JOB_STATE_SUCCEEDED, trainerpb.JobState_JOB_STATE_FAILED, trainerpb.JobState_JOB_STATE_CANCELLED:
		return true
	}
	return false
}
