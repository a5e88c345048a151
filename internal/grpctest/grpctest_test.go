package grpctest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/grpctest"
)

// service is a health service with Start and Run that records its life.
type service struct {
	healthpb.UnimplementedHealthServer
	started  atomic.Bool
	running  chan struct{} // closed when Run begins
	ran      chan struct{} // closed when Run returns
	checkErr error
}

func newService() *service {
	return &service{running: make(chan struct{}), ran: make(chan struct{})}
}

func (s *service) Register(r grpc.ServiceRegistrar) { healthpb.RegisterHealthServer(r, s) }

func (s *service) Start(context.Context) error {
	s.started.Store(true)
	return nil
}

func (s *service) Run(ctx context.Context) error {
	defer close(s.ran)
	close(s.running)
	<-ctx.Done()
	return nil
}

func (s *service) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if s.checkErr != nil {
		return nil, s.checkErr
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (s *service) Watch(_ *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	return s.checkErr
}

func TestStartServesBehindTheInterceptors(t *testing.T) {
	svc := newService()
	srv := grpctest.Start(t, svc, grpctest.Options{})
	if !svc.started.Load() {
		t.Error("Start() was not called before serving")
	}
	<-svc.running
	var header metadata.MD
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "req-1")
	if _, err := healthpb.NewHealthClient(srv.Conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	// The request id comes back only from the production interceptors.
	if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "req-1" {
		t.Errorf("x-request-id = %v; want [req-1]", got)
	}
	if srv.Addr != "" {
		t.Errorf("Addr = %q without Options.TCP; want none", srv.Addr)
	}
	srv.StopRun()
	select {
	case <-svc.ran:
	default:
		t.Error("StopRun() returned before Run did")
	}
	srv.StopRun() // a second call does nothing
}

func TestTCPServesTheSameServer(t *testing.T) {
	svc := newService()
	svc.checkErr = errors.New("pq: password authentication failed")
	srv := grpctest.Start(t, svc, grpctest.Options{TCP: true, NoRun: true})
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for name, c := range map[string]*grpc.ClientConn{"bufconn": srv.Conn, "tcp": conn} {
		_, err := healthpb.NewHealthClient(c).Check(t.Context(), &healthpb.HealthCheckRequest{})
		if status.Code(err) != codes.Internal || status.Convert(err).Message() == svc.checkErr.Error() {
			t.Errorf("%s: Check() = %v; want Internal with the cause masked", name, err)
		}
	}
	select {
	case <-svc.running:
		t.Error("Run started with Options.NoRun")
	default:
	}
}

func TestStreamInterceptorsRunOutside(t *testing.T) {
	svc := newService()
	svc.checkErr = errors.New("plain error")
	var seen atomic.Value
	outer := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		err := h(srv, ss)
		seen.Store(status.Code(err))
		return err
	}
	srv := grpctest.Start(t, svc, grpctest.Options{NoRun: true, StreamInterceptors: []grpc.StreamServerInterceptor{outer}})
	stream, err := healthpb.NewHealthClient(srv.Conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Internal {
		t.Fatalf("Watch().Recv() = %v; want Internal", err)
	}
	// The outer interceptor returned before the client saw the status.
	if got := seen.Load(); got != codes.Internal {
		t.Errorf("outer interceptor saw %v; want Internal, the masked error", got)
	}
}

func TestRegisterFunc(t *testing.T) {
	svc := newService()
	srv := grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) { healthpb.RegisterHealthServer(r, svc) }), grpctest.Options{})
	if _, err := healthpb.NewHealthClient(srv.Conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	if svc.started.Load() {
		t.Error("a RegisterFunc has no Start, yet the service's was called")
	}
}
