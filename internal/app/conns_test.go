package app

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
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
	a := &App{cfg: cfg, rpcClient: grpcprom.NewClientMetrics()}
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

// flakyRegistry answers GetModel and SetAlias, or refuses them all with
// UNAVAILABLE (a replica that is going away), counting the calls.
type flakyRegistry struct {
	registrypb.UnimplementedRegistryServiceServer
	down  bool
	calls atomic.Int64
}

func (r *flakyRegistry) GetModel(context.Context, *registrypb.GetModelRequest) (*registrypb.GetModelResponse, error) {
	r.calls.Add(1)
	if r.down {
		return nil, status.Error(codes.Unavailable, "going away")
	}
	return &registrypb.GetModelResponse{}, nil
}

func (r *flakyRegistry) SetAlias(context.Context, *registrypb.SetAliasRequest) (*registrypb.SetAliasResponse, error) {
	r.calls.Add(1)
	if r.down {
		return nil, status.Error(codes.Unavailable, "going away")
	}
	return &registrypb.SetAliasResponse{}, nil
}

// Calls that change nothing are retried on another replica when one
// answers UNAVAILABLE, so none fails; calls that write are not retried
// (their first attempt may have taken effect).
func TestClientsRetryOnlyWhatChangesNothing(t *testing.T) {
	replicas := []*flakyRegistry{{down: true}, {}}
	var addrs []string
	for _, r := range replicas {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		registrypb.RegisterRegistryServiceServer(s, r)
		go s.Serve(lis)
		t.Cleanup(s.Stop)
		addrs = append(addrs, lis.Addr().String())
	}
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("serve", flag.ContinueOnError))
	*cfg.Clients.Addresses[Registry] = strings.Join(addrs, ",")
	reg := prometheus.NewRegistry()
	a := &App{cfg: cfg, targets: []string{Inference}, rpcClient: grpcprom.NewClientMetrics()}
	reg.MustRegister(a.rpcClient)
	conns, err := a.dial(nil, []string{Registry}, func(bool) credentials.TransportCredentials { return insecure.NewCredentials() }, metadataCreds{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(conns)
	client := registrypb.NewRegistryServiceClient(conns[Registry])
	// Until the refusing replica has had calls too: round robin takes
	// each replica into its rotation as its connection becomes ready.
	gets := 0
	for ; gets < 1000 && (gets < 20 || replicas[0].calls.Load() == 0); gets++ {
		if _, err := client.GetModel(t.Context(), &registrypb.GetModelRequest{Name: "m"}); err != nil {
			t.Fatalf("GetModel() #%d with one of two replicas refusing = %v; want it retried on the other", gets, err)
		}
	}
	// The client metrics count calls, not attempts: each retried call once.
	getsOK := `grpc_client_handled_total{grpc_code="OK",grpc_method="GetModel",grpc_service="shoal.registry.v1.RegistryService",grpc_type="unary"}`
	if got := clientCounter(t, reg, getsOK); got != float64(gets) {
		t.Errorf("%s = %v after %d calls; want %d", getsOK, got, gets, gets)
	}
	if replicas[0].calls.Load() == 0 {
		t.Error("the refusing replica got no GetModel call; want round robin to send it some")
	}
	before := replicas[0].calls.Load() + replicas[1].calls.Load()
	failed := 0
	for range 20 {
		if _, err := client.SetAlias(t.Context(), &registrypb.SetAliasRequest{Model: "m", Alias: "a", Version: 1}); status.Code(err) == codes.Unavailable {
			failed++
		}
	}
	if calls := replicas[0].calls.Load() + replicas[1].calls.Load() - before; calls != 20 || failed == 0 {
		t.Errorf("20 SetAlias calls reached the replicas %d times, %d failed; want each once (never retried), some failed", calls, failed)
	}
	setsFailed := `grpc_client_handled_total{grpc_code="Unavailable",grpc_method="SetAlias",grpc_service="shoal.registry.v1.RegistryService",grpc_type="unary"}`
	if got := clientCounter(t, reg, setsFailed); got != float64(failed) {
		t.Errorf("%s = %v; want %d", setsFailed, got, failed)
	}
}

// clientCounter is the value of one counter series of reg, named as the
// exposition format writes it (labels sorted by name); 0 when absent.
func clientCounter(t *testing.T, reg prometheus.Gatherer, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if mf.GetName()+"{"+strings.Join(labels, ",")+"}" == series {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
