package registry_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

const (
	serving = registrypb.ServingState_SERVING_STATE_SERVING
	loading = registrypb.ServingState_SERVING_STATE_LOADING
	failed  = registrypb.ServingState_SERVING_STATE_FAILED
	pending = registrypb.ServingState_SERVING_STATE_PENDING
)

// rolloutRecv is the next message of a WatchRollout stream, or its end,
// within d.
func rolloutRecv(t *testing.T, s registrypb.RegistryService_WatchRolloutClient, d time.Duration) (*registrypb.WatchRolloutResponse, error) {
	t.Helper()
	type result struct {
		msg *registrypb.WatchRolloutResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := s.Recv()
		ch <- result{m, err}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-timer.C:
		t.Fatalf("WatchRollout: nothing within %s", d)
		return nil, nil
	}
}

// rolloutText is a rollout message as "phase v=N replica:state:serving ...".
func rolloutText(m *registrypb.WatchRolloutResponse) string {
	parts := []string{fmt.Sprintf("%s v=%d", strings.TrimPrefix(m.GetPhase().String(), "ROLLOUT_PHASE_"), m.GetVersion())}
	for _, r := range m.GetReplicas() {
		p := fmt.Sprintf("%s:%s:%d", r.GetReplica(), strings.TrimPrefix(r.GetState().String(), "SERVING_STATE_"), r.GetServingVersion())
		if r.GetError() != "" {
			p += ":" + r.GetError()
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func serves(model, alias string, version, target int64, state registrypb.ServingState, errText string) *registrypb.AliasServing {
	return &registrypb.AliasServing{Model: model, Alias: alias, Version: version, TargetVersion: target, State: state, Error: errText}
}

// TestWatchRollout follows promotions through replicas' reports made to
// one registry process and watched on another sharing the database.
func TestWatchRollout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		a := newEnv(t, cfg, envOptions{})
		b := newEnv(t, cfg, envOptions{blobs: a.blobs})
		ctx := t.Context()
		for seed := range byte(3) {
			mustUpload(t, a.client, spec("fish", fish...), classifier(5, seed))
		}
		setAlias := func(alias string, v int64) {
			t.Helper()
			if _, err := a.client.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: alias, Version: v}); err != nil {
				t.Fatalf("SetAlias(%s=%d) = %v", alias, v, err)
			}
		}
		setAlias("production", 1)
		report := func(replica string, lease time.Duration, aliases ...*registrypb.AliasServing) {
			t.Helper()
			if _, err := a.client.ReportServing(ctx, &registrypb.ReportServingRequest{Replica: replica, Lease: durationpb.New(lease), Aliases: aliases}); err != nil {
				t.Fatalf("ReportServing(%s) = %v", replica, err)
			}
		}
		watch := func(alias string, version int64) registrypb.RegistryService_WatchRolloutClient {
			t.Helper()
			s, err := b.client.WatchRollout(ctx, &registrypb.WatchRolloutRequest{Model: "fish", Alias: alias, Version: version})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		expect := func(s registrypb.RegistryService_WatchRolloutClient, want string) {
			t.Helper()
			m, err := rolloutRecv(t, s, 10*time.Second)
			if err != nil || rolloutText(m) != want {
				t.Fatalf("WatchRollout: %v, %v; want %s", rolloutText(m), err, want)
			}
		}
		expectEnd := func(s registrypb.RegistryService_WatchRolloutClient, code codes.Code) {
			t.Helper()
			m, err := rolloutRecv(t, s, 10*time.Second)
			if code == codes.OK && err != io.EOF || code != codes.OK && status.Code(err) != code {
				t.Fatalf("WatchRollout after its last message: %v, %v; want %v", m, err, map[bool]any{true: io.EOF, false: code}[code == codes.OK])
			}
		}

		// No replica has reported: the rollout waits for them.
		s := watch("", 0)
		expect(s, "IN_PROGRESS v=1")
		report("r1", time.Minute, serves("fish", "production", 0, 1, loading, ""))
		expect(s, "IN_PROGRESS v=1 r1:LOADING:0")
		// A heartbeat that changes nothing sends nothing; r2 arriving does.
		report("r1", time.Minute, serves("fish", "production", 0, 1, loading, ""))
		report("r2", time.Minute, serves("fish", "production", 1, 1, serving, ""), serves("cats", "production", 4, 4, serving, ""))
		expect(s, "IN_PROGRESS v=1 r1:LOADING:0 r2:SERVING:1")
		report("r1", time.Minute, serves("fish", "production", 1, 1, serving, ""))
		expect(s, "DONE v=1 r1:SERVING:1 r2:SERVING:1")
		expectEnd(s, codes.OK)

		// A promotion: each replica turns over in its own time; one fails.
		setAlias("production", 2)
		s = watch("production", 2)
		expect(s, "IN_PROGRESS v=2 r1:PENDING:1 r2:PENDING:1")
		report("r1", time.Minute, serves("fish", "production", 1, 2, loading, ""))
		expect(s, "IN_PROGRESS v=2 r1:LOADING:1 r2:PENDING:1")
		report("r1", time.Minute, serves("fish", "production", 2, 2, serving, ""))
		expect(s, "IN_PROGRESS v=2 r1:SERVING:2 r2:PENDING:1")
		report("r2", time.Minute, serves("fish", "production", 1, 2, failed, "artifact missing"))
		expect(s, "FAILED v=2 r1:SERVING:2 r2:FAILED:1:artifact missing")
		expectEnd(s, codes.OK)

		// A replica that stops reporting drops out when its lease lapses.
		report("r2", 2*time.Second, serves("fish", "production", 1, 2, loading, ""))
		s = watch("production", 2)
		expect(s, "IN_PROGRESS v=2 r1:SERVING:2 r2:LOADING:1")
		expect(s, "DONE v=2 r1:SERVING:2")
		expectEnd(s, codes.OK)

		// One that says it leaves drops out at once.
		report("r2", time.Minute, serves("fish", "production", 1, 2, loading, ""))
		s = watch("production", 2)
		expect(s, "IN_PROGRESS v=2 r1:SERVING:2 r2:LOADING:1")
		if _, err := a.client.ReportServing(ctx, &registrypb.ReportServingRequest{Replica: "r2", Leaving: true}); err != nil {
			t.Fatal(err)
		}
		expect(s, "DONE v=2 r1:SERVING:2")
		expectEnd(s, codes.OK)

		// An alias no replica follows; an alias that moves on.
		setAlias("staging", 1)
		s = watch("staging", 0)
		expect(s, "NOT_FOLLOWED v=1 r1:NOT_FOLLOWING:0")
		expectEnd(s, codes.OK)
		report("r2", time.Minute, serves("fish", "production", 1, 2, loading, ""))
		s = watch("production", 2)
		expect(s, "IN_PROGRESS v=2 r1:SERVING:2 r2:LOADING:1")
		setAlias("production", 3)
		expectEnd(s, codes.Aborted)
		expectEnd(watch("production", 2), codes.Aborted)
		expectEnd(watch("canary", 0), codes.NotFound)
		unknown, err := b.client.WatchRollout(ctx, &registrypb.WatchRolloutRequest{Model: "shark"})
		if err != nil {
			t.Fatal(err)
		}
		expectEnd(unknown, codes.NotFound)
		s = watch("production", 0)
		expect(s, "IN_PROGRESS v=3 r1:PENDING:2 r2:PENDING:1")
		if _, err := a.client.DeleteAlias(ctx, &registrypb.DeleteAliasRequest{Model: "fish", Alias: "production"}); err != nil {
			t.Fatal(err)
		}
		expectEnd(s, codes.Aborted)
	})
}

// TestReportServingRefusesBadReports: a report the Registry cannot use is
// INVALID_ARGUMENT, saying why.
func TestReportServingRefusesBadReports(t *testing.T) {
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	ok := serves("fish", "production", 1, 1, serving, "")
	for _, tt := range []struct {
		name string
		req  *registrypb.ReportServingRequest
		want string
	}{
		{"no replica", &registrypb.ReportServingRequest{Lease: durationpb.New(time.Minute)}, "replica"},
		{"control characters", &registrypb.ReportServingRequest{Replica: "r\n1", Lease: durationpb.New(time.Minute)}, "printable"},
		{"no lease", &registrypb.ReportServingRequest{Replica: "r1"}, "lease"},
		{"lease too long", &registrypb.ReportServingRequest{Replica: "r1", Lease: durationpb.New(time.Hour)}, "lease"},
		{"bad model", &registrypb.ReportServingRequest{Replica: "r1", Lease: durationpb.New(time.Minute),
			Aliases: []*registrypb.AliasServing{serves("Fish!", "production", 1, 1, serving, "")}}, "aliases[0].model"},
		{"state a replica cannot report", &registrypb.ReportServingRequest{Replica: "r1", Lease: durationpb.New(time.Minute),
			Aliases: []*registrypb.AliasServing{serves("fish", "production", 1, 2, pending, "")}}, "state"},
		{"twice", &registrypb.ReportServingRequest{Replica: "r1", Lease: durationpb.New(time.Minute),
			Aliases: []*registrypb.AliasServing{ok, ok}}, "twice"},
		{"negative version", &registrypb.ReportServingRequest{Replica: "r1", Lease: durationpb.New(time.Minute),
			Aliases: []*registrypb.AliasServing{serves("fish", "production", -1, 1, loading, "")}}, "aliases[0].version = -1"},
	} {
		_, err := e.client.ReportServing(t.Context(), tt.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.want) {
			t.Errorf("ReportServing(%s) = %v; want INVALID_ARGUMENT naming %q", tt.name, err, tt.want)
		}
	}
	if n := e.count(t, "registry_serving_replicas"); n != 0 {
		t.Errorf("registry_serving_replicas holds %d rows after refused reports; want 0", n)
	}
}
