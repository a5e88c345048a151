package trainer_test

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"gorm.io/gorm"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
)

// Panics injected into a worker (outside any job), a job, a job's
// heartbeat and a WatchJob stream's sender: each fails only what it
// belongs to, is counted, and the trainer goes on running jobs and
// answering.

// snapshotReader wraps the Dataset client: its first ReadSnapshot panics,
// its second waits for the job's context to end (holding the job running
// until its heartbeat fails it) after closing blocked.
type snapshotReader struct {
	datasetpb.DatasetServiceClient
	calls   atomic.Int32
	blocked chan struct{}
}

func (r *snapshotReader) ReadSnapshot(ctx context.Context, in *datasetpb.ReadSnapshotRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[datasetpb.ReadSnapshotResponse], error) {
	switch r.calls.Add(1) {
	case 1:
		panic("injected: job")
	case 2:
		close(r.blocked)
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	return r.DatasetServiceClient.ReadSnapshot(ctx, in, opts...)
}

// injectDBPanics makes gdb panic in the first job claim's query (which
// a worker makes as soon as Run starts, closing claimed first) and, once
// heartbeats is closed, in the next heartbeat's lease renewal.
func injectDBPanics(t *testing.T, gdb *gorm.DB, claimed chan struct{}, heartbeats <-chan struct{}) {
	t.Helper()
	var claimDone, beatDone atomic.Bool
	err := gdb.Callback().Query().Before("gorm:query").Register("test:claim-panic", func(tx *gorm.DB) {
		// The claim reads candidates into a slice; the job lookups read
		// one row.
		dest := reflect.TypeOf(tx.Statement.Dest)
		if tx.Statement.Table == "trainer_jobs" && dest != nil && dest.Kind() == reflect.Pointer && dest.Elem().Kind() == reflect.Slice &&
			claimDone.CompareAndSwap(false, true) {
			close(claimed)
			panic("injected: worker")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Before the update's own transaction begins, so none is left open.
	err = gdb.Callback().Update().Before("gorm:begin_transaction").Register("test:heartbeat-panic", func(tx *gorm.DB) {
		select {
		case <-heartbeats:
		default:
			return
		}
		m, ok := tx.Statement.Dest.(map[string]any)
		if tx.Statement.Table == "trainer_jobs" && ok && len(m) == 1 && m["heartbeat_at"] != nil &&
			beatDone.CompareAndSwap(false, true) {
			panic("injected: heartbeat")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// finalReason watches job id to its end and returns its final state and
// reason.
func (e *env) finalReason(t *testing.T, id string) (trainerpb.JobState, string) {
	t.Helper()
	evs, err := e.watch(t, id, 0)
	if err != nil || len(evs) == 0 {
		t.Fatalf("WatchJob(%s) = %v, %v; want events to the job's end", id, evs, err)
	}
	last := evs[len(evs)-1].GetState()
	return last.GetState(), last.GetReason()
}

func TestTrainerPanicsFailOnlyTheirJob(t *testing.T) {
	gdb := dbtest.Open(t, dbtest.Config(t, db.SQLite))
	claimed, heartbeats := make(chan struct{}), make(chan struct{})
	injectDBPanics(t, gdb, claimed, heartbeats)
	var logs testlog.Buffer
	guard := panics.NewGuard(slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	reader := &snapshotReader{blocked: make(chan struct{})}
	rpcMetrics := prometheus.NewRegistry()
	e := newEnv(t, db.Config{}, envOptions{
		gdb: gdb, panics: guard,
		datasets: func(c datasetpb.DatasetServiceClient) datasetpb.DatasetServiceClient {
			reader.DatasetServiceClient = c
			return reader
		},
		server: grpctest.Options{Metrics: rpcMetrics, StreamInterceptors: []grpc.StreamServerInterceptor{grpctest.PanicOnFirstSend()}},
	})

	// The worker's first claim panics; it starts again and runs the jobs
	// below, so the worker pool lives on.
	<-claimed

	// A panic in the job fails that job with an internal error.
	a := e.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1})
	// The first WatchJob's sender panics: Internal with the request id.
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "watch-panic-1")
	w, err := e.client.WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: a.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); status.Code(err) != codes.Internal ||
		!strings.Contains(err.Error(), "request id watch-panic-1") || strings.Contains(err.Error(), "injected") {
		t.Fatalf("WatchJob with a panicking sender: Recv() = %v; want Internal naming the request id only", err)
	}
	if state, reason := e.finalReason(t, a.GetId()); state != trainerpb.JobState_JOB_STATE_FAILED || reason != "internal error: panic in trainer job" {
		t.Errorf("job with a panic: ended %v (%q); want FAILED, internal error: panic in trainer job", state, reason)
	}

	// A panic in the heartbeat fails its job, which was running.
	b := e.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1})
	<-reader.blocked
	close(heartbeats)
	if state, reason := e.finalReason(t, b.GetId()); state != trainerpb.JobState_JOB_STATE_FAILED || reason != "internal error: panic in trainer heartbeat" {
		t.Errorf("job whose heartbeat panicked: ended %v (%q); want FAILED, internal error: panic in trainer heartbeat", state, reason)
	}

	for c, want := range map[string]float64{"trainer worker": 1, "trainer job": 1, "trainer heartbeat": 1} {
		if n := guard.Count(c); n != want {
			t.Errorf("shoal_panics_total{component=%q} = %v; want %v", c, n, want)
		}
	}
	if n, err := panics.Gathered(rpcMetrics, "rpc"); err != nil || n != 1 {
		t.Errorf(`shoal_panics_total{component="rpc"} = %v (%v); want 1`, n, err)
	}
	// The service answers (and its restarted worker took both jobs).
	got, err := e.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: a.GetId()})
	if err != nil || got.GetJob().GetState() != trainerpb.JobState_JOB_STATE_FAILED || got.GetJob().GetError() == "" {
		t.Errorf("GetJob(%s) = %v, %v; want FAILED with its error", a.GetId(), got, err)
	}
	for _, want := range []string{"injected: worker", "injected: job", "injected: heartbeat", "stack=", "goroutine"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the guard's log lacks %q", want)
		}
	}
}
