package server

import (
	"context"
	"log/slog"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionalphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/tap"

	"github.com/shoalml/shoal/internal/overload"
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
	gates     []Gate
	panics    *panics.Guard
	creds     []grpc.ServerOption
	bound     *callBound
	forwarded map[string]bool
	forward   []grpc.ServerOption
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

// WithForwarded makes the server answer services it does not serve itself
// by forwarding their calls to the process that does (opts: a proxy's
// unknown-service handler and codec, see internal/grpcproxy). Reflection
// lists those services as the server's own, and the gates let their calls
// through untouched: the owner's gate checks them (once, and where the
// audit trail records them).
func WithForwarded(services []string, opts ...grpc.ServerOption) Option {
	return func(o *options) {
		o.forwarded = map[string]bool{}
		for _, s := range services {
			o.forwarded[s] = true
		}
		o.forward = opts
	}
}

// WithCallBound bounds the calls of the given methods (full names, as
// "/shoal.inference.v1.InferenceService/Predict") in flight at once, over
// the whole server, to most; beyond it a call is refused RESOURCE_EXHAUSTED
// with when to retry (package overload), before its request is read. gRPC
// reads a call's whole message before its handler runs, so a bound inside
// the handler comes too late for memory: clients calling at once with
// large messages would have them all held, whatever the handlers then
// refuse. The REST gateway bounds its own routes the same way.
func WithCallBound(most int, methods ...string) Option {
	return func(o *options) {
		if most > 0 && len(methods) > 0 {
			o.bound = newCallBound(most, methods)
		}
	}
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
	gates := o.gates
	var own ownServices
	if len(o.forwarded) > 0 {
		gates = make([]Gate, len(o.gates))
		for i, g := range o.gates {
			gates[i] = skipForwarded{g, &own}
		}
	}
	serverOpts := GRPCOptions(cfg, ic, gates...)
	if o.bound != nil {
		// Before the caller's options: stats handlers see each event in
		// order, so one added with WithServerOptions sees a call's end
		// after its slot is back.
		serverOpts = append(serverOpts, grpc.InTapHandle(o.bound.tap), grpc.StatsHandler(o.bound))
	}
	serverOpts = append(serverOpts, o.creds...)
	serverOpts = append(serverOpts, o.forward...)
	s := grpc.NewServer(serverOpts...)
	own.server = s
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, h)
	refl := reflection.NewServerV1(reflection.ServerOptions{Services: listed{s, o.forwarded}})
	reflectionpb.RegisterServerReflectionServer(s, refl)
	reflectionalphapb.RegisterServerReflectionServer(s, reflection.NewServer(reflection.ServerOptions{Services: listed{s, o.forwarded}}))
	return &GRPC{Server: s, Health: h, Panics: ic.Panics()}
}

// listed is what reflection lists: the server's services and those it
// forwards (whose descriptors every Shoal binary holds).
type listed struct {
	s         *grpc.Server
	forwarded map[string]bool
}

func (l listed) GetServiceInfo() map[string]grpc.ServiceInfo {
	out := l.s.GetServiceInfo()
	for name := range l.forwarded {
		if _, ok := out[name]; !ok {
			out[name] = grpc.ServiceInfo{}
		}
	}
	return out
}

// ownServices are the services registered on a server, read at its first
// call (every service registers before the server serves).
type ownServices struct {
	server *grpc.Server
	once   sync.Once
	names  map[string]grpc.ServiceInfo
}

func (o *ownServices) has(service string) bool {
	o.once.Do(func() { o.names = o.server.GetServiceInfo() })
	_, ok := o.names[service]
	return ok
}

// skipForwarded lets past a gate the calls that the server does not answer
// itself: those it forwards (their owner's gate checks them), and those of
// services nobody serves (refused UNIMPLEMENTED, as without forwarding).
type skipForwarded struct {
	Gate
	own *ownServices
}

func (g skipForwarded) Unary() grpc.UnaryServerInterceptor {
	gate := g.Gate.Unary()
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if service, _ := splitMethod(info.FullMethod); !g.own.has(service) {
			return handler(ctx, req)
		}
		return gate(ctx, req, info, handler)
	}
}

func (g skipForwarded) Stream() grpc.StreamServerInterceptor {
	gate := g.Gate.Stream()
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if service, _ := splitMethod(info.FullMethod); !g.own.has(service) {
			return handler(srv, ss)
		}
		return gate(srv, ss, info, handler)
	}
}

// GRPCOptions are the gRPC server's settings: ic's interceptors, then the
// gates', then the check of every received message against its contract's
// rules (see validation), message size limits and keepalive. The test kit
// (internal/grpctest) builds its servers from them too, so that tests see
// what clients see.
func GRPCOptions(cfg Config, ic *Interceptors, gates ...Gate) []grpc.ServerOption {
	// The metrics' interceptors come first, so they count the code the
	// client gets: the one Shoal's interceptors leave after masking.
	unary := []grpc.UnaryServerInterceptor{ic.metrics.UnaryServerInterceptor(), ic.Unary()}
	stream := []grpc.StreamServerInterceptor{ic.metrics.StreamServerInterceptor(), ic.Stream()}
	for _, g := range append(gates[:len(gates):len(gates)], validation{}) {
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
		// MaxConnectionAge sends clients a GOAWAY every minute (gRPC adds
		// ±10%), so they resolve the name again and find replicas added
		// since (a headless Service's new pods): gRPC's DNS resolver
		// resolves only when a connection closes, at most once per 30s. A
		// pod the HorizontalPodAutoscaler adds takes calls within about a
		// minute, well inside its 5-minute scale-down window; at 5 minutes
		// new pods sat idle, lowering the average the HPA scales on, for as
		// long as it waits to remove them. Measured with a gateway whose
		// DNS name gained a second Inference replica when its connection
		// was 17s old: the replica took its first call 38.6s later at 1
		// minute, 299.6s later at 5. The price is one handshake per client
		// and replica a minute. Calls in flight, streams included, finish
		// on the old connection (no grace limit).
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, MaxConnectionAge: time.Minute}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}

// callBound is WithCallBound's bound: a slot is taken by the transport's
// tap, before a call's message is read, and given back when the call ends
// (its stats End event), however it ends.
type callBound struct {
	slots   chan struct{}
	methods map[string]bool
}

func newCallBound(most int, methods []string) *callBound {
	b := &callBound{slots: make(chan struct{}, most), methods: map[string]bool{}}
	for _, m := range methods {
		b.methods[m] = true
	}
	return b
}

// slot marks the context of a call that holds one.
type slot struct{ released atomic.Bool }

type slotKey struct{}

func (b *callBound) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if !b.methods[info.FullMethodName] {
		return ctx, nil
	}
	select {
	case b.slots <- struct{}{}:
		return context.WithValue(ctx, slotKey{}, &slot{}), nil
	default:
		return ctx, overload.Errorf(time.Second, "%d calls like %s are in flight, the most this server reads at once; retry shortly",
			cap(b.slots), path.Base(info.FullMethodName))
	}
}

func (b *callBound) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, end := s.(*stats.End); !end {
		return
	}
	if sl, ok := ctx.Value(slotKey{}).(*slot); ok && sl.released.CompareAndSwap(false, true) {
		<-b.slots
	}
}

func (b *callBound) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (b *callBound) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (b *callBound) HandleConn(context.Context, stats.ConnStats)                       {}
