// Package app wires Shoal's services, storage and servers into one process
// for a --target, starts them in order and stops them in reverse.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"gorm.io/gorm"

	oippb "github.com/shoalml/shoal/gen/inference"
	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/grpcproxy"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/server"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/tracing"
	"github.com/shoalml/shoal/internal/webui"
	authsvc "github.com/shoalml/shoal/services/auth"
	"github.com/shoalml/shoal/services/dataset"
	"github.com/shoalml/shoal/services/inference"
	"github.com/shoalml/shoal/services/registry"
	"github.com/shoalml/shoal/services/trainer"
)

// grpcNames are the gRPC service names each module serves, for health.
var grpcNames = map[string][]string{
	Auth:      {authpb.AuthService_ServiceDesc.ServiceName},
	Dataset:   {datasetpb.DatasetService_ServiceDesc.ServiceName},
	Trainer:   {trainerpb.TrainerService_ServiceDesc.ServiceName},
	Registry:  {registrypb.RegistryService_ServiceDesc.ServiceName},
	Inference: {inferencepb.InferenceService_ServiceDesc.ServiceName, oippb.GRPCInferenceService_ServiceDesc.ServiceName},
}

// Listeners are the two sockets the process serves on; the caller owns
// them, which lets tests use :0.
type Listeners struct {
	GRPC net.Listener
	HTTP net.Listener
}

// App is one Shoal process.
type App struct {
	cfg     Config
	targets []string
	log     *slog.Logger
	version string
	metrics *prometheus.Registry
	// rpcClient counts the calls of every connection to a service
	// (grpc_client_*), on metrics.
	rpcClient *grpcprom.ClientMetrics
	ready     atomic.Bool
	// tracer is set by Run, before the first connection or server is
	// built.
	tracer *tracing.Provider
}

// New validates cfg and returns the process; it does no I/O.
func New(cfg Config, log *slog.Logger, version string) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	targets, _ := ParseTarget(cfg.Target)
	reg := prometheus.NewRegistry()
	rpcClient := grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramBuckets(server.LatencyBuckets)))
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), rpcClient)
	return &App{cfg: cfg, targets: targets, log: log, version: version, metrics: reg, rpcClient: rpcClient}, nil
}

// NewLogger returns the process's logger for cfg's log settings.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	level, _ := ParseLogLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// service is what every Shoal service offers the app; Start and Run are
// optional (see starter and runner).
type service interface {
	Register(grpc.ServiceRegistrar)
}

type starter interface{ Start(context.Context) error }

type runner interface{ Run(context.Context) error }

// Run starts the process and serves until ctx is done or a server fails,
// then stops everything in reverse order within the configured bounds.
func (a *App) Run(ctx context.Context, lis Listeners) (err error) {
	if lis.GRPC == nil || lis.HTTP == nil {
		return errors.New("app: both listeners are required")
	}
	a.log.Info("starting", "version", a.version, "target", a.targets,
		"grpc", lis.GRPC.Addr().String(), "http", lis.HTTP.Addr().String())

	// Tracing first and stopped last: the spans of the shutdown's last
	// requests are sent before the process ends.
	if a.tracer, err = tracing.New(a.cfg.Tracing, tracing.ServiceName(a.targets, runsAll(a.targets)), a.version, a.log); err != nil {
		return err
	}
	defer a.stopTracing()

	// Storage first: everything else depends on it.
	need := needs(a.targets)
	var checks []server.Check
	var gdb *gorm.DB
	if need.db {
		if gdb, err = db.Open(ctx, a.cfg.DB, a.log); err != nil {
			return err
		}
		sqlDB, err := gdb.DB()
		if err != nil {
			return fmt.Errorf("db: %w", err)
		}
		defer sqlDB.Close()
		checks = append(checks, server.Check{Name: "db", Check: sqlDB.PingContext})
	}
	var blobs blob.Store
	if need.blob {
		if blobs, err = blob.Open(ctx, a.cfg.Blob); err != nil {
			return err
		}
		checks = append(checks, server.Check{Name: "blob", Check: blobs.Ping})
	}

	// Shoal's services prove who they are to each other with a secret: the
	// shared --auth.service-token in a split deployment, a random one in a
	// single process.
	serviceSecret := a.cfg.Gate.ServiceToken
	if serviceSecret == "" {
		serviceSecret = randomSecret()
	}

	// Services call each other through gRPC clients, also in one process:
	// a local service is reached through this process's own listener.
	// Their calls carry the service identity; the gateway's carry the
	// user's own credential, never the service's.
	grpcTLS, ownCert, err := a.cfg.Server.GRPCTLS.Config()
	if err != nil {
		return fmt.Errorf("grpc tls: %w", err)
	}
	transport, err := a.transports(ownCert)
	if err != nil {
		return err
	}
	conns, err := a.dial(lis.GRPC.Addr(), a.serviceDeps(), transport, metadataCreds{"authorization": "Bearer " + serviceSecret})
	if err != nil {
		return err
	}
	defer closeAll(conns)
	var gwConns map[string]*grpc.ClientConn
	if slices.Contains(a.targets, Gateway) {
		if gwConns, err = a.dial(lis.GRPC.Addr(), calls[Gateway], transport, metadataCreds{proxyHeader: serviceSecret}); err != nil {
			return err
		}
		defer closeAll(gwConns)
	}

	guard := panics.NewGuard(a.log, a.metrics)
	services, err := a.build(gdb, blobs, conns, guard)
	if err != nil {
		return err
	}
	gate, auditRunner, err := a.gate(services, conns, serviceSecret)
	if err != nil {
		return err
	}
	grpcOpts := []server.Option{server.WithPanics(guard), server.WithGate(gate),
		server.WithServerOptions(grpc.StatsHandler(a.tracer.ServerHandler()))}
	if slices.Contains(a.targets, Inference) {
		// As many inference calls are read at once as Inference admits
		// (its queue and a batch per session); see server.WithCallBound.
		inf := a.cfg.Inference
		grpcOpts = append(grpcOpts, server.WithCallBound(inf.QueueSize+inf.Sessions*inf.MaxBatchSize,
			inferencepb.InferenceService_Predict_FullMethodName, oippb.GRPCInferenceService_ModelInfer_FullMethodName))
	}
	if grpcTLS != nil {
		grpcOpts = append(grpcOpts, server.WithServerOptions(grpc.Creds(credentials.NewTLS(grpcTLS))))
	}
	grpcOpts = append(grpcOpts, a.forwarding(gwConns)...)
	g := server.NewGRPC(a.cfg.Server, a.log, a.metrics, grpcOpts...)
	for _, m := range a.targets {
		if s, ok := services[m]; ok {
			s.Register(g.Server)
		}
	}
	for _, m := range a.targets {
		if s, ok := services[m].(starter); ok {
			if err := s.Start(ctx); err != nil {
				return fmt.Errorf("%s: start: %w", m, err)
			}
		}
	}

	errc := make(chan error, 2)
	go func() { errc <- g.Server.Serve(lis.GRPC) }()

	var api http.Handler
	var admit func(http.Handler) http.Handler
	var streams []string
	if slices.Contains(a.targets, Gateway) {
		streams = gateway.ClientStreams
		gw, err := gateway.New(ctx, gateway.Conns{
			Auth: gwConns[Auth], Dataset: gwConns[Dataset], Trainer: gwConns[Trainer], Registry: gwConns[Registry], Inference: gwConns[Inference],
			MaxPredicts: a.cfg.MaxPredicts(a.targets), PredictLatencyTarget: a.cfg.PredictLatencyTarget(a.targets),
		})
		if err != nil {
			g.Server.Stop()
			return err
		}
		// The web console shares the REST API's server, so the all-in-one
		// mode needs nothing else.
		api = webui.Handler(webui.App(), a.tracer.HTTP(gw))
		admit = gw.Admit
	}
	var restMetrics *server.HTTPMetrics
	if api != nil {
		if restMetrics, err = server.NewHTTPMetrics(a.metrics); err != nil {
			g.Server.Stop()
			return fmt.Errorf("http metrics: %w", err)
		}
	}
	httpSrv := &http.Server{
		Handler: server.NewHTTPHandler(a.cfg.Server, server.HTTPOptions{
			API: api, Admit: admit, Gatherer: a.metrics, Metrics: restMetrics, Ready: a.ready.Load, Checks: checks, ClientStreams: streams,
			MetricsAuth: a.metricsAuth(gate),
		}),
		ReadHeaderTimeout: a.cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       a.cfg.Server.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	httpTLS, _, err := a.cfg.Server.HTTPTLS.Config()
	if err != nil {
		g.Server.Stop()
		return fmt.Errorf("http tls: %w", err)
	}
	if httpTLS != nil {
		httpSrv.TLSConfig = httpTLS
		go func() { errc <- httpSrv.ServeTLS(lis.HTTP, "", "") }()
	} else {
		go func() { errc <- httpSrv.Serve(lis.HTTP) }()
	}

	// Long-running work (job workers, alias watchers) starts last and
	// stops first; its context also ends the services' open streams.
	runCtx, stopRunners := context.WithCancel(context.WithoutCancel(ctx))
	var runners sync.WaitGroup
	runErr := make(chan error, len(a.targets)+1)
	named := map[string]runner{}
	for _, m := range a.targets {
		if r, ok := services[m].(runner); ok {
			named[m] = r
		}
	}
	if auditRunner != nil {
		named["audit"] = auditRunner
	}
	for m, r := range named {
		runners.Go(func() {
			if err := r.Run(runCtx); err != nil && runCtx.Err() == nil {
				runErr <- fmt.Errorf("%s: %w", m, err)
			}
		})
	}

	a.setServing(g)
	a.log.Info("serving", "grpc", lis.GRPC.Addr().String(), "http", lis.HTTP.Addr().String())

	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("server stopped: %w", err)
	case err = <-runErr:
	}
	a.shutdown(g, httpSrv, stopRunners, &runners)
	return err
}

// shutdown stops in reverse order: readiness and health first, so traffic
// moves elsewhere; then the runners and open streams; then HTTP and gRPC,
// which finish in-flight requests until the deadline and are then cut.
func (a *App) shutdown(g *server.GRPC, httpSrv *http.Server, stopRunners context.CancelFunc, runners *sync.WaitGroup) {
	a.log.Info("shutting down", "delay", a.cfg.Server.ShutdownDelay, "timeout", a.cfg.Server.ShutdownTimeout)
	a.setNotServing(g)
	time.Sleep(a.cfg.Server.ShutdownDelay)

	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout)
	defer cancel()

	stopRunners()
	waitOrDeadline(ctx, runners.Wait)

	if err := httpSrv.Shutdown(ctx); err != nil {
		a.log.Warn("http: in-flight requests cut off at the shutdown deadline", "err", err)
		httpSrv.Close()
	}
	if !waitOrDeadline(ctx, g.Server.GracefulStop) {
		a.log.Warn("grpc: in-flight RPCs cut off at the shutdown deadline")
		g.Server.Stop()
	}
	a.log.Info("stopped")
}

// stopTracing sends the spans not yet sent, within the shutdown timeout.
func (a *App) stopTracing() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := a.tracer.Shutdown(ctx); err != nil {
		a.log.Warn("tracing: spans not sent at shutdown", "err", err)
	}
}

// setServing turns readiness and gRPC health on as one change: /readyz and
// Ready() answer true before any health watcher can see SERVING, so nobody
// observing health ever reads a process that is SERVING but not ready.
func (a *App) setServing(g *server.GRPC) {
	a.ready.Store(true)
	for _, m := range a.targets {
		for _, name := range grpcNames[m] {
			g.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
	}
	g.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
}

// setNotServing is setServing's reverse, in the reverse order: readiness
// turns false before any health watcher sees NOT_SERVING.
func (a *App) setNotServing(g *server.GRPC) {
	a.ready.Store(false)
	g.Health.Shutdown()
}

// waitOrDeadline runs fn and reports whether it returned before ctx ended.
func waitOrDeadline(ctx context.Context, fn func()) bool {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// forwarding makes the gateway's gRPC port answer the services of other
// processes by forwarding their calls (internal/grpcproxy), so that one
// address serves every Shoal service in a split deployment as in one
// process. The gateway's own connections carry its proof of being the
// deployment's proxy; the caller's token goes along and is checked by the
// owner.
func (a *App) forwarding(gwConns map[string]*grpc.ClientConn) []server.Option {
	routes := map[string]*grpc.ClientConn{}
	for _, m := range calls[Gateway] {
		if conn := gwConns[m]; conn != nil && !slices.Contains(a.targets, m) {
			for _, name := range grpcNames[m] {
				routes[name] = conn
			}
		}
	}
	if len(routes) == 0 {
		return nil
	}
	p := grpcproxy.New(func(service string) *grpc.ClientConn { return routes[service] },
		grpcproxy.WithRequestID(server.RequestIDHeader, server.RequestID), grpcproxy.WithoutHeaders(proxyHeader))
	opts := []server.Option{server.WithForwarded(slices.Sorted(maps.Keys(routes)), p.ServerOptions()...)}
	if most := a.cfg.MaxPredicts(a.targets); most > 0 && routes[inferencepb.InferenceService_ServiceDesc.ServiceName] != nil {
		// The gateway reads forwarded predictions as it forwards REST
		// ones: at most gateway.max-predicts at once.
		opts = append(opts, server.WithCallBound(most,
			inferencepb.InferenceService_Predict_FullMethodName, oippb.GRPCInferenceService_ModelInfer_FullMethodName))
	}
	return opts
}

// serviceDeps are the services this process's services call: those of
// the module graph, and Auth when tokens are checked in another process.
func (a *App) serviceDeps() []string {
	var deps []string
	for _, m := range a.targets {
		if m == Gateway {
			continue
		}
		for _, dep := range calls[m] {
			if !slices.Contains(deps, dep) {
				deps = append(deps, dep)
			}
		}
	}
	if !a.cfg.Gate.Disabled && !slices.Contains(a.targets, Auth) && !slices.Contains(deps, Auth) {
		deps = append(deps, Auth)
	}
	return deps
}

// gate builds the auth gate: tokens are checked by the Auth service of this
// process, or of another through its client, behind a short cache; audit
// events go the same way (the returned runner sends them to a remote one).
func (a *App) gate(services map[string]service, conns map[string]*grpc.ClientConn, serviceSecret string) (*auth.Gate, runner, error) {
	cfg := auth.GateConfig{
		Disabled: a.cfg.Gate.Disabled, Anonymous: a.cfg.Gate.Anonymous(), ServiceSecret: serviceSecret,
		ProxySecret: serviceSecret, Limits: a.cfg.Gate.Limits(),
	}
	if cfg.Disabled {
		a.log.Warn("authentication is off (--auth.disabled): anyone who reaches this process may do anything")
		g, err := auth.NewGate(cfg, nil, nil, a.log)
		return g, nil, err
	}
	var authn auth.Authenticator
	var audit auth.AuditSink
	var run runner
	if local, ok := services[Auth].(*authsvc.Service); ok {
		cache := auth.NewCache(local, a.cfg.Gate.CacheTTL)
		local.OnRevoke(cache.Clear)
		authn, audit = cache, local
	} else {
		client := authpb.NewAuthServiceClient(conns[Auth])
		remote := auth.NewRemoteAudit(client, a.log)
		authn, audit, run = auth.NewCache(auth.Remote{Client: client}, a.cfg.Gate.CacheTTL), remote, remote
	}
	g, err := auth.NewGate(cfg, authn, audit, a.log)
	return g, run, err
}

// metricsAuth is /metrics' check: none by default, else a token with
// --auth.metrics-scope.
func (a *App) metricsAuth(gate *auth.Gate) func(*http.Request) (int, string) {
	if a.cfg.Gate.MetricsScope == "" {
		return nil
	}
	scope, _ := auth.ParseScope(a.cfg.Gate.MetricsScope) // checked by Validate
	return func(r *http.Request) (int, string) { return gate.CheckHTTP(r, scope) }
}

// loopback turns a listener address into one a client can dial: a wildcard
// host (":9090", "[::]:9090") becomes the loopback address.
func loopback(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// build constructs the services of this process.
func (a *App) build(gdb *gorm.DB, blobs blob.Store, conns map[string]*grpc.ClientConn, guard *panics.Guard) (map[string]service, error) {
	out := map[string]service{}
	var err error
	for _, m := range a.targets {
		log := a.log.With("service", m)
		var s service
		switch m {
		case Auth:
			s, err = authsvc.New(a.cfg.Auth, authsvc.Deps{Log: log, DB: gdb, Panics: guard, Enabled: !a.cfg.Gate.Disabled})
		case Dataset:
			s, err = dataset.New(a.cfg.Dataset, dataset.Deps{Log: log, DB: gdb, Blobs: blobs, ObjectStore: a.objectStore(), Panics: guard})
		case Registry:
			s, err = registry.New(a.cfg.Registry, registry.Deps{Log: log, DB: gdb, Blobs: blobs, ONNXRuntime: a.cfg.ONNXRuntime, Panics: guard})
		case Trainer:
			s, err = trainer.New(a.cfg.Trainer, trainer.Deps{
				Log: log, DB: gdb, Blobs: blobs,
				Datasets:    datasetpb.NewDatasetServiceClient(conns[Dataset]),
				Registry:    registrypb.NewRegistryServiceClient(conns[Registry]),
				ONNXRuntime: a.cfg.ONNXRuntime,
				Panics:      guard,
				Tracer:      a.tracer,
				Metrics:     a.metrics,
			})
		case Inference:
			s, err = inference.New(a.cfg.Inference, inference.Deps{
				Log: log, Blobs: blobs, Version: a.version, ONNXRuntime: a.cfg.ONNXRuntime, Metrics: a.metrics, Panics: guard,
				Registry: registrypb.NewRegistryServiceClient(conns[Registry]),
			})
		case Gateway:
			continue
		}
		if err != nil {
			return nil, err
		}
		out[m] = s
	}
	return out, nil
}

// objectStore opens bucket prefixes on the blob store's S3 server, with its
// credentials, for the dataset service's object-store imports; nil when
// blobs are not in S3.
func (a *App) objectStore() func(ctx context.Context, bucket, prefix string) (blob.Store, error) {
	if a.cfg.Blob.Backend != blob.BackendS3 {
		return nil
	}
	return func(ctx context.Context, bucket, prefix string) (blob.Store, error) {
		cfg := a.cfg.Blob.S3
		cfg.Bucket, cfg.Prefix, cfg.CreateBucket = bucket, prefix, false
		return blob.NewS3(ctx, cfg)
	}
}

// Ready reports whether the process has started and is not shutting down.
func (a *App) Ready() bool { return a.ready.Load() }
