// Package apptest runs a whole Shoal process (an app.App, every module of
// its target) inside a test, on 127.0.0.1:0 listeners, and waits until it
// reports SERVING: the kit shared by the tests that drive Shoal from
// outside (the app's own, the Go SDK's, the bad-input matrix).
package apptest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// stopWithin bounds a clean shutdown; a process that takes longer fails
// the test rather than hanging it.
const stopWithin = 30 * time.Second

// Defaults is `shoal serve`'s configuration with every default, its
// storage (SQLite, a blob folder) and admin token under a temporary
// folder, logging warnings only.
func Defaults(t testing.TB) app.Config {
	t.Helper()
	var cfg app.Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	dir := t.TempDir()
	cfg.DB.DSN = filepath.Join(dir, "shoal.db")
	cfg.Blob.Local.Dir = filepath.Join(dir, "blobs")
	cfg.Auth.AdminTokenFile = filepath.Join(dir, "admin-token")
	cfg.LogLevel = "warn"
	cfg.Server.ShutdownTimeout = 5 * time.Second
	return cfg
}

// Process is a running App.
type Process struct {
	App      *app.App
	Config   app.Config
	GRPCAddr string // the gRPC listener's address
	HTTPAddr string // the HTTP listener's address
	HTTPURL  string // "http://" + HTTPAddr
	// Conn is a plaintext connection without credentials, set by Start.
	Conn *grpc.ClientConn
	// Admin is the admin token the process bootstrapped, read once it
	// serves ("" when it runs no auth service).
	Admin string

	stop func() error
}

// Stop shuts the process down as SIGTERM does and returns Run's result;
// later calls return nil. The test's end calls it too.
func (p *Process) Stop() error { return p.stop() }

// Run starts cfg until the test ends, logging to log (nothing when nil),
// without waiting for it: WaitServing does, on the caller's connection.
// A target with Inference needs ONNX Runtime: without it the test skips,
// or fails when the environment requires it (onnxtest.Runtime).
func Run(t testing.TB, cfg app.Config, log io.Writer) *Process {
	t.Helper()
	return RunOn(t, cfg, log, app.Listeners{GRPC: Listen(t), HTTP: Listen(t)})
}

// RunOn is Run on listeners of the caller's (several replicas on one port
// of different addresses, as a headless Service's pods are); it closes
// them when the process stops.
func RunOn(t testing.TB, cfg app.Config, log io.Writer, lis app.Listeners) *Process {
	t.Helper()
	if modules, _ := app.ParseTarget(cfg.Target); slices.Contains(modules, app.Inference) {
		onnxtest.Runtime(t) // Inference refuses to start without ONNX Runtime
	}
	if log == nil {
		log = io.Discard
	}
	a, err := app.New(cfg, app.NewLogger(cfg, log), "test")
	if err != nil {
		lis.GRPC.Close()
		lis.HTTP.Close()
		t.Fatalf("app.New(target=%s) = %v", cfg.Target, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, lis) }()
	p := &Process{App: a, Config: cfg, GRPCAddr: lis.GRPC.Addr().String(), HTTPAddr: lis.HTTP.Addr().String()}
	p.HTTPURL = "http://" + p.HTTPAddr
	var once sync.Once
	p.stop = func() (err error) {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(stopWithin):
				err = fmt.Errorf("Run did not return within %s of cancel", stopWithin)
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("Run() = %v; want nil after cancel", err)
		}
	})
	return p
}

// Start is Run, then WaitServing on a plaintext connection without
// credentials (Conn), closed when the test ends.
func Start(t testing.TB, cfg app.Config, log io.Writer) *Process {
	t.Helper()
	return StartOn(t, cfg, log, app.Listeners{GRPC: Listen(t), HTTP: Listen(t)})
}

// StartOn is Start on listeners of the caller's (see RunOn).
func StartOn(t testing.TB, cfg app.Config, log io.Writer, lis app.Listeners) *Process {
	t.Helper()
	p := RunOn(t, cfg, log, lis)
	conn, err := grpc.NewClient(p.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.Conn = conn
	p.WaitServing(t, conn)
	return p
}

// WaitServing waits on the health service's Watch stream over conn (no
// polling) until the process reports SERVING, then reads the admin token
// it bootstrapped.
func (p *Process) WaitServing(t testing.TB, conn *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
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
	if b, err := os.ReadFile(p.Config.Auth.AdminTokenFile); err == nil {
		p.Admin = strings.TrimSpace(string(b))
	}
}

// Listen is a TCP listener on a free port of 127.0.0.1.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
