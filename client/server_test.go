package client_test

import (
	"testing"

	"github.com/shoalml/shoal/client"
	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/app/apptest"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// defaults is `shoal serve`'s configuration with every default, its
// storage (SQLite, a blob folder) and admin token under a temporary folder.
func defaults(t *testing.T) app.Config { return apptest.Defaults(t) }

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
	p := apptest.Run(t, cfg, nil)
	p.WaitServing(t, dial(t, p.GRPCAddr, opts...).Conn())
	if p.Admin == "" {
		t.Fatalf("no admin token in %s after the first start", cfg.Auth.AdminTokenFile)
	}
	return server{addr: p.GRPCAddr, admin: p.Admin, stop: func() {
		if err := p.Stop(); err != nil {
			t.Errorf("Run() = %v; want nil after cancel", err)
		}
	}}
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
