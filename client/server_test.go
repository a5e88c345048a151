package client_test

import (
	"context"
	"flag"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoalml/shoal/client"
	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// defaults is `shoal serve`'s configuration with every default, its
// storage (SQLite, a blob folder) and admin token under a temporary folder.
func defaults(t *testing.T) app.Config {
	t.Helper()
	var cfg app.Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	dir := t.TempDir()
	cfg.DB.DSN = dir + "/shoal.db"
	cfg.Blob.Local.Dir = dir + "/blobs"
	cfg.Auth.AdminTokenFile = dir + "/admin-token"
	cfg.LogLevel = "warn"
	cfg.Server.ShutdownTimeout = 5 * time.Second
	return cfg
}

// server is a whole Shoal, as `shoal serve` runs it, in this process.
type server struct {
	addr  string // the gRPC listener's address
	admin string // the admin token it wrote on its first start
	// stop shuts it down as SIGTERM does; the test's end calls it too.
	stop func()
}

// serve runs cfg on 127.0.0.1:0 listeners until the test ends and waits
// until it reports SERVING, through a Client made with opts.
func serve(t *testing.T, cfg app.Config, opts ...client.Option) server {
	t.Helper()
	onnxtest.Runtime(t) // Inference and the Trainer's default backend need ONNX Runtime
	a, err := app.New(cfg, app.NewLogger(cfg, io.Discard), "test")
	if err != nil {
		t.Fatalf("app.New() = %v", err)
	}
	var lis [2]net.Listener
	for i := range lis {
		if lis[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, app.Listeners{GRPC: lis[0], HTTP: lis[1]}) }()
	s := server{addr: lis[0].Addr().String(), stop: sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v; want nil after cancel", err)
		}
	})}
	t.Cleanup(s.stop)
	c := dial(t, s.addr, opts...)
	wctx, wcancel := context.WithTimeout(t.Context(), time.Minute)
	defer wcancel()
	// The health service's Watch says when the process turns SERVING.
	stream, err := healthpb.NewHealthClient(c.Conn()).Watch(wctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("Health.Watch() = %v", err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Health.Watch: Recv() = %v before SERVING", err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	b, err := os.ReadFile(cfg.Auth.AdminTokenFile)
	if err != nil {
		t.Fatalf("reading the admin token: %v", err)
	}
	s.admin = strings.TrimSpace(string(b))
	return s
}

// dial is client.New, closed when the test ends.
func dial(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(addr, opts...)
	if err != nil {
		t.Fatalf("client.New(%s) = %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
