package server

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/shoalml/shoal/internal/panics"
)

// GRPC is the gRPC server with its health service. Services register on
// Server before it serves; health starts NOT_SERVING for every name and the
// caller marks services SERVING once they are started.
type GRPC struct {
	Server *grpc.Server
	Health *health.Server
	// Panics counts the panics the interceptors recover; services use it
	// for the work they run off the request goroutine.
	Panics *panics.Guard
}

// Gate is an interceptor pair that admits or refuses calls (authentication,
// limits).
type Gate interface {
	Unary() grpc.UnaryServerInterceptor
	Stream() grpc.StreamServerInterceptor
}

// Option adds to the gRPC server.
type Option func(*options)

type options struct {
	gates  []Gate
	panics *panics.Guard
	creds  []grpc.ServerOption
}

// WithGate adds a gate. Gates run after Shoal's own interceptors (request
// id, log, metrics, panic recovery), so what they refuse is logged and
// counted like any failure.
func WithGate(g Gate) Option { return func(o *options) { o.gates = append(o.gates, g) } }

// WithPanics makes the interceptors report recovered panics through g (the
// process's one guard) instead of a guard of their own.
func WithPanics(g *panics.Guard) Option { return func(o *options) { o.panics = g } }

// WithServerOptions adds grpc.ServerOptions (transport credentials).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.creds = append(o.creds, opts...) }
}

// NewGRPC builds the gRPC server with Shoal's server options (GRPCOptions),
// server reflection and the standard health service.
func NewGRPC(cfg Config, log *slog.Logger, reg prometheus.Registerer, opts ...Option) *GRPC {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	guard := o.panics
	if guard == nil {
		guard = panics.NewGuard(log, reg)
	}
	ic := newInterceptors(log, reg, guard)
	s := grpc.NewServer(append(GRPCOptions(cfg, ic, o.gates...), o.creds...)...)
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &GRPC{Server: s, Health: h, Panics: ic.Panics()}
}

// GRPCOptions are the gRPC server's settings: ic's interceptors, then the
// gates', message size limits and keepalive. The test kit
// (internal/grpctest) builds its servers from them too, so that tests see
// what clients see.
func GRPCOptions(cfg Config, ic *Interceptors, gates ...Gate) []grpc.ServerOption {
	unary := []grpc.UnaryServerInterceptor{ic.Unary()}
	stream := []grpc.StreamServerInterceptor{ic.Stream()}
	for _, g := range gates {
		unary = append(unary, g.Unary())
		stream = append(stream, g.Stream())
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		// Long-lived streams (WatchJob, WatchAliases) cross proxies that
		// drop idle connections; pings keep them open and find dead peers.
		// MaxConnectionAge sends clients a GOAWAY every few minutes, so
		// they resolve the name again and find replicas added since (a
		// headless Service's new pods); calls in flight, streams included,
		// finish on the old connection.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, MaxConnectionAge: 5 * time.Minute}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}
