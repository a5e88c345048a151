// Package grpctest runs a gRPC service in a test as Shoal serves it: behind
// the production interceptors and server options (internal/server), on an
// in-memory listener and, when a client needs a real address (the CLI), on
// TCP at 127.0.0.1:0, with the service's Run loop owned by the test.
//
//	srv := grpctest.Start(t, svc, grpctest.Options{})
//	client := datasetpb.NewDatasetServiceClient(srv.Conn)
//
// Everything it starts stops when the test ends: Run first (which ends the
// service's open streams), then the server.
package grpctest

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/shoalml/shoal/internal/server"
	"github.com/shoalml/shoal/internal/testlog"
)

// Service is what a Shoal service, or a fake of one, offers a server. A
// service that also has Start(ctx) error is started before it serves, and
// one with Run(ctx) error runs until the test ends.
type Service interface {
	Register(grpc.ServiceRegistrar)
}

// RegisterFunc is a Service made of a function, for fakes:
//
//	grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) { registrypb.RegisterRegistryServiceServer(r, fake) })
type RegisterFunc func(grpc.ServiceRegistrar)

// Register calls f.
func (f RegisterFunc) Register(r grpc.ServiceRegistrar) { f(r) }

// Options change how Start serves a service; the zero value serves it on
// bufconn only, logging warnings to the test's output.
type Options struct {
	// TCP serves on a TCP listener on 127.0.0.1:0 as well (Server.Addr).
	TCP bool
	// NoRun leaves the service's Run loop unstarted.
	NoRun bool
	// Log receives the interceptors' log lines; by default warnings and
	// errors go to the test's output.
	Log *slog.Logger
	// Metrics receives the RPC metrics; by default a registry of its own.
	Metrics prometheus.Registerer
	// StreamInterceptors run outside the production ones, in this order.
	StreamInterceptors []grpc.StreamServerInterceptor
	// Gates run inside the production interceptors, as the auth gate does
	// in the server (server.WithGate).
	Gates []server.Gate
	// Bare serves without the production interceptors, for a fake whose
	// answers (statuses, headers) the test sets to the letter; Gates are
	// left out with them.
	Bare bool
	// MaxMessageBytes, when not zero, replaces the server's default bound
	// on a message (grpc.max-message-bytes), for the server and the client.
	MaxMessageBytes int
}

// Server is a service being served until its test ends.
type Server struct {
	// Conn is a client connection over the in-memory listener.
	Conn *grpc.ClientConn
	// Addr is the TCP address, when Options.TCP asked for one.
	Addr string

	stopRun func()
}

// Start starts svc (its Start, if it has one), serves it, starts its Run
// loop (if it has one and o.NoRun is false) and returns a client connection.
// It fails t if any step fails, and reports an error Run returns.
func Start(t testing.TB, svc Service, o Options) *Server {
	t.Helper()
	if s, ok := svc.(interface{ Start(context.Context) error }); ok {
		if err := s.Start(t.Context()); err != nil {
			t.Fatalf("Start() = %v", err)
		}
	}
	if o.Log == nil {
		o.Log = testlog.New(t)
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
	}
	var cfg server.Config
	cfg.RegisterFlags(flag.NewFlagSet("server", flag.ContinueOnError))
	if o.MaxMessageBytes != 0 {
		cfg.MaxMessageBytes = o.MaxMessageBytes
	}
	opts := server.GRPCOptions(cfg, server.NewInterceptors(o.Log, o.Metrics), o.Gates...)
	if o.Bare {
		opts = []grpc.ServerOption{grpc.MaxRecvMsgSize(cfg.MaxMessageBytes), grpc.MaxSendMsgSize(cfg.MaxMessageBytes)}
	}
	if len(o.StreamInterceptors) > 0 {
		// The first chained interceptor is the outermost.
		opts = append([]grpc.ServerOption{grpc.ChainStreamInterceptor(o.StreamInterceptors...)}, opts...)
	}
	gs := grpc.NewServer(opts...)
	svc.Register(gs)

	listeners := []net.Listener{bufconn.Listen(1 << 20)}
	srv := &Server{stopRun: func() {}}
	if o.TCP {
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, tcp)
		srv.Addr = tcp.Addr().String()
	}
	var serving sync.WaitGroup
	for _, lis := range listeners {
		serving.Go(func() {
			// ErrServerStopped: the test ended before this goroutine began.
			if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				t.Errorf("Serve(%s) = %v", lis.Addr(), err)
			}
		})
	}
	bc := listeners[0].(*bufconn.Listener)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return bc.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMessageBytes), grpc.MaxCallSendMsgSize(cfg.MaxMessageBytes)))
	if err != nil {
		gs.Stop()
		serving.Wait()
		t.Fatal(err)
	}
	srv.Conn = conn

	if r, ok := svc.(interface{ Run(context.Context) error }); ok && !o.NoRun {
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			if err := r.Run(ctx); err != nil {
				t.Errorf("Run() = %v", err)
			}
		}()
		srv.stopRun = sync.OnceFunc(func() { cancel(); <-ran })
	}
	t.Cleanup(func() {
		srv.StopRun()
		conn.Close()
		gs.Stop()
		serving.Wait()
	})
	return srv
}

// StopRun ends the service's Run loop and waits for it to return, as a
// shutdown would; the server keeps serving. Later calls do nothing.
func (s *Server) StopRun() { s.stopRun() }
