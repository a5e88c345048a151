package server_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/server"
	"github.com/shoalml/shoal/internal/testlog"
)

// fakeHealth is a real gRPC service whose behaviour each test sets.
type fakeHealth struct {
	healthpb.UnimplementedHealthServer
	check func(ctx context.Context) error
	watch func(stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error
}

func (f *fakeHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (f *fakeHealth) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	return f.watch(s)
}

// serve runs fake behind the production interceptors over bufconn.
func serve(t *testing.T, fake *fakeHealth) (healthpb.HealthClient, *testlog.Buffer, *prometheus.Registry) {
	t.Helper()
	logs := &testlog.Buffer{}
	reg := prometheus.NewRegistry()
	srv := grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) { healthpb.RegisterHealthServer(r, fake) }),
		grpctest.Options{Log: slog.New(slog.NewTextHandler(logs, nil)), Metrics: reg})
	return healthpb.NewHealthClient(srv.Conn), logs, reg
}

func TestInterceptorsMaskInternalErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string // substring the client sees
		hidden   string // must not reach the client, must reach the log
	}{
		{"plain error", errors.New(`pq: relation "datasets" does not exist`), codes.Internal, "internal error (request id", "does not exist"},
		{"internal status", status.Error(codes.Internal, "s3: AccessDenied bucket shoal"), codes.Internal, "internal error", "AccessDenied"},
		{"unknown status", status.Error(codes.Unknown, "dial tcp 10.0.0.1:5432"), codes.Internal, "internal error", "10.0.0.1"},
		{"client error passes", status.Error(codes.NotFound, `dataset "fish" not found`), codes.NotFound, `dataset "fish" not found`, ""},
		{"invalid argument passes", status.Error(codes.InvalidArgument, "name is required"), codes.InvalidArgument, "name is required", ""},
		{"wrapped deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, logs, _ := serve(t, &fakeHealth{check: func(context.Context) error { return tt.err }})
			_, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{})
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Errorf("Check() = %v; want code %v with message containing %q", err, tt.wantCode, tt.wantMsg)
			}
			if tt.hidden != "" {
				if strings.Contains(st.Message(), tt.hidden) {
					t.Errorf("Check() = %v; leaks %q to the client", err, tt.hidden)
				}
				if !strings.Contains(logs.String(), tt.hidden) {
					t.Errorf("log = %q; want the original error %q in it", logs, tt.hidden)
				}
			}
		})
	}
}

func TestInterceptorsLogOneLinePerRPC(t *testing.T) {
	client, logs, reg := serve(t, &fakeHealth{check: func(ctx context.Context) error {
		if server.RequestID(ctx) != "abc-123" {
			return status.Errorf(codes.FailedPrecondition, "request id = %q; want abc-123", server.RequestID(ctx))
		}
		return nil
	}})
	var header metadata.MD
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "abc-123")
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "abc-123" {
		t.Errorf("response header x-request-id = %v; want [abc-123]", got)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("log has %d lines; want 1:\n%s", len(lines), logs)
	}
	for _, want := range []string{"method=/grpc.health.v1.Health/Check", "code=OK", "duration=", "request_id=abc-123"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line %q; want it to contain %q", lines[0], want)
		}
	}
	const check = `grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"}`
	if got := metricValue(t, reg, check); got != 1 {
		t.Errorf("%s = %v; want 1", check, got)
	}
	const latency = `grpc_server_handling_seconds_count{grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"}`
	if got := metricValue(t, reg, latency); got != 1 {
		t.Errorf("%s = %v; want 1", latency, got)
	}
}

// TestInterceptorsCountMaskedCodes: the standard metrics count the code the
// client gets, Internal for a panic, not the handler's own.
func TestInterceptorsCountMaskedCodes(t *testing.T) {
	client, _, reg := serve(t, &fakeHealth{check: func(context.Context) error { panic("handler bug") }})
	if _, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Internal {
		t.Fatalf("Check() = %v; want Internal", err)
	}
	const internal = `grpc_server_handled_total{grpc_code="Internal",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"}`
	if got := metricValue(t, reg, internal); got != 1 {
		t.Errorf("%s = %v; want 1", internal, got)
	}
}

// metricValue returns the value of one series, written as the exposition
// format writes it (labels sorted by name); a histogram's _count and _sum
// are series of their own. A series reg does not have fails the test.
func metricValue(t *testing.T, reg prometheus.Gatherer, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := func(suffix string) string {
				return mf.GetName() + suffix + "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil && name("") == series:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil && name("_count") == series:
				return float64(m.GetHistogram().GetSampleCount())
			}
			seen = append(seen, name(""))
		}
	}
	t.Fatalf("no series %s among %d: %v", series, len(seen), seen)
	return 0
}

func TestInterceptorsRecoverPanics(t *testing.T) {
	client, logs, reg := serve(t, &fakeHealth{
		check: func(context.Context) error { panic("nil map write in handler") },
		watch: func(grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error { panic("stream handler bug") },
	})
	_, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "nil map") {
		t.Errorf("Check() = %v; want Internal without the panic text", err)
	}
	stream, err := client.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Internal {
		t.Errorf("Watch().Recv() = %v; want Internal", err)
	}
	// The server survived: a second call still gets an answer.
	if _, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Internal {
		t.Errorf("second Check() = %v; want Internal (server still up)", err)
	}
	for _, want := range []string{"nil map write in handler", "stream handler bug", "stack="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if got := panicsTotal(t, reg, "rpc"); got != 3 {
		t.Errorf(`shoal_panics_total{component="rpc"} = %v; want 3`, got)
	}
}

// panicsTotal returns shoal_panics_total's value for component.
func panicsTotal(t *testing.T, reg prometheus.Gatherer, component string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "shoal_panics_total" && l.GetName() == "component" && l.GetValue() == component {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestInterceptorsRejectUnsafeRequestIDs(t *testing.T) {
	client, logs, _ := serve(t, &fakeHealth{check: func(context.Context) error { return nil }})
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "bad id level=ERROR forged")
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "forged") {
		t.Errorf("log = %q; an unsafe request id was logged as is", logs)
	}
}

// A client that goes away (a closed watch) is nothing an operator acts on:
// its RPC is logged at debug, not as a warning.
func TestClientCancelIsLoggedAtDebug(t *testing.T) {
	started := make(chan struct{})
	logs := &testlog.Buffer{}
	fake := &fakeHealth{watch: func(s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
		close(started)
		<-s.Context().Done()
		return s.Context().Err()
	}}
	srv := grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) { healthpb.RegisterHealthServer(r, fake) }),
		grpctest.Options{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := healthpb.NewHealthClient(srv.Conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after cancel = %v; want Canceled", err)
	}
	// The server writes its line when its handler returns, soon after.
	var line string
	for line == "" {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "/Watch") {
				line = l
			}
		}
		runtime.Gosched()
	}
	if !strings.Contains(line, "level=DEBUG") || !strings.Contains(line, "code=Canceled") {
		t.Errorf("the cancelled watch's line = %q; want it at debug", line)
	}
}

// TestInterceptorsMapStorageFailures: a store that cannot be reached or a
// full disk reaches the client as UNAVAILABLE or RESOURCE_EXHAUSTED with a
// message naming the store, never the driver's text, which goes to the log.
func TestInterceptorsMapStorageFailures(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
		hidden   string
	}{
		{"database away", fmt.Errorf("find model: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}),
			codes.Unavailable, "the database is unavailable", "administrator"},
		{"database refused", fmt.Errorf("read job: dial tcp 10.0.0.1:5432: %w", refused), codes.Unavailable, "the database is unavailable", "10.0.0.1"},
		{"blob store away", fmt.Errorf("blob: s3 get %q: %w", "k", &url.Error{Op: "Get", URL: "http://10.0.0.2:8333/b/k", Err: refused}),
			codes.Unavailable, "the blob store is unavailable", "10.0.0.2"},
		{"database full", fmt.Errorf("insert: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"}), codes.ResourceExhausted, "the database's disk is full", "extend"},
		{"disk full", fmt.Errorf("spool: %w", &fs.PathError{Op: "write", Path: "/var/tmp/x", Err: syscall.ENOSPC}), codes.ResourceExhausted, "disk is full", "/var/tmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, logs, _ := serve(t, &fakeHealth{check: func(context.Context) error { return tt.err }})
			_, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{})
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) || !strings.Contains(st.Message(), "request id") {
				t.Errorf("Check() = %v; want code %v with message containing %q and the request id", err, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(st.Message(), tt.hidden) {
				t.Errorf("Check() = %v; leaks %q to the client", err, tt.hidden)
			}
			if !strings.Contains(logs.String(), tt.hidden) {
				t.Errorf("log = %q; want the original error %q in it", logs, tt.hidden)
			}
		})
	}
}
