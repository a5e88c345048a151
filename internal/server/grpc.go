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
)

// GRPC is the gRPC server with its health service. Services register on
// Server before it serves; health starts NOT_SERVING for every name and the
// caller marks services SERVING once they are started.
type GRPC struct {
	Server *grpc.Server
	Health *health.Server
}

// NewGRPC builds the gRPC server with Shoal's server options (GRPCOptions),
// server reflection and the standard health service.
func NewGRPC(cfg Config, log *slog.Logger, reg prometheus.Registerer) *GRPC {
	s := grpc.NewServer(GRPCOptions(cfg, NewInterceptors(log, reg))...)
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &GRPC{Server: s, Health: h}
}

// GRPCOptions are the gRPC server's settings: ic's interceptors, message
// size limits and keepalive. The test kit (internal/grpctest) builds its
// servers from them too, so that tests see what clients see.
func GRPCOptions(cfg Config, ic *Interceptors) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(ic.Unary()),
		grpc.ChainStreamInterceptor(ic.Stream()),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		// Long-lived streams (WatchJob, WatchAliases) cross proxies that
		// drop idle connections; pings keep them open and find dead peers.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}
