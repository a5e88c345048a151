package app

import (
	"context"
	"flag"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// countingHealth answers Check and counts the calls.
type countingHealth struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int64
}

func (h *countingHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.calls.Add(1)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// A peer's name that resolves to several replicas (what a headless
// Service's DNS name does; here a resolver of the test's own gives two
// addresses) gets calls spread over all of them, not pinned to one.
func TestClientsSpreadCallsOverEveryAddress(t *testing.T) {
	replicas := []*countingHealth{{}, {}}
	var addrs []resolver.Address
	for _, h := range replicas {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, h)
		go s.Serve(lis)
		t.Cleanup(s.Stop)
		addrs = append(addrs, resolver.Address{Addr: lis.Addr().String()})
	}
	r := manual.NewBuilderWithScheme("replicas")
	r.InitialState(resolver.State{Addresses: addrs})

	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("serve", flag.ContinueOnError))
	a := &App{cfg: cfg}
	conn, err := grpc.NewClient("replicas:///inference", append(a.clientOptions(insecure.NewCredentials(), metadataCreds{}, true), grpc.WithResolvers(r))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	// Until both replicas have answered: round robin takes each into its
	// rotation as its connection becomes ready.
	for i := 0; i < 1000 && (replicas[0].calls.Load() == 0 || replicas[1].calls.Load() == 0); i++ {
		if _, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := replicas[0].calls.Load(), replicas[1].calls.Load(); a == 0 || b == 0 {
		t.Errorf("calls per replica: %d and %d; want both to get some", a, b)
	}
}
