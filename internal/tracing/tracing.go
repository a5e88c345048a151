// Package tracing is Shoal's one wrapper of OpenTelemetry tracing: the
// --tracing.* settings, the process's tracer provider and exporter, and the
// instrumentation of its gRPC servers and clients and of its REST API, so
// that a request through several processes of a split deployment is one
// trace. Trace context crosses processes as W3C traceparent (and baggage)
// in gRPC metadata and HTTP headers.
package tracing

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"
)

// Exporters are the values of --tracing.exporter.
const (
	ExporterNone = "none"
	ExporterOTLP = "otlp"
)

// Config configures tracing.
type Config struct {
	Exporter    string
	Endpoint    string
	Insecure    bool
	SampleRatio float64
	// Processor, when set, receives the process's finished spans in place
	// of an exporter, whatever Exporter says: tests record spans with it
	// (tracetest.NewSpanRecorder). It has no flag.
	Processor sdktrace.SpanProcessor
}

// RegisterFlags registers the tracing flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Exporter, "tracing.exporter", ExporterNone,
		"where this process sends its trace spans: none (no spans are kept, but a caller's W3C traceparent still passes on to the services called), or otlp (OTLP over gRPC to --tracing.endpoint)")
	fs.StringVar(&c.Endpoint, "tracing.endpoint", "localhost:4317", "host:port of the OTLP gRPC collector (the OpenTelemetry Collector, Jaeger, Tempo) with --tracing.exporter=otlp")
	fs.BoolVar(&c.Insecure, "tracing.insecure", false, "send spans to --tracing.endpoint in plaintext instead of TLS (the system's CAs); a collector on the same host or network without TLS needs it")
	fs.Float64Var(&c.SampleRatio, "tracing.sample-ratio", 1,
		"fraction (0 to 1) of the traces this process starts that are kept; a trace continued from a caller's traceparent is kept when the caller kept it")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	switch c.Exporter {
	case ExporterNone:
	case ExporterOTLP:
		if _, port, err := net.SplitHostPort(c.Endpoint); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("--tracing.endpoint=%q is not host:port (for example localhost:4317)", c.Endpoint))
		}
	default:
		errs = append(errs, fmt.Errorf("--tracing.exporter=%q: use none or otlp", c.Exporter))
	}
	if !(c.SampleRatio >= 0 && c.SampleRatio <= 1) {
		errs = append(errs, fmt.Errorf("--tracing.sample-ratio=%v: must be between 0 and 1", c.SampleRatio))
	}
	return errors.Join(errs...)
}

// Propagator carries trace context and baggage across processes in the
// W3C formats (traceparent, tracestate, baggage).
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Provider is a process's tracer provider and the instrumentation built on
// it.
type Provider struct {
	trace.TracerProvider
	shutdown func(context.Context) error
}

// New returns the tracer provider of a process named service ("shoal",
// "shoal-inference"). With no exporter it keeps no spans and starts no
// goroutine, but spans still carry a caller's trace context on; with one,
// spans are sent in batches from a goroutine that Shutdown stops. New does
// no I/O: the exporter connects when it first sends.
//
// Failures to send are logged to log (a warning each), in place of
// OpenTelemetry's own logger; the SDK has one such handler per process.
func New(cfg Config, service, version string, log *slog.Logger) (*Provider, error) {
	// What propagates is process-wide in OpenTelemetry; Shoal's is
	// always the W3C pair, also for libraries that read the global.
	otel.SetTextMapPropagator(Propagator)
	var processor sdktrace.SpanProcessor
	switch {
	case cfg.Processor != nil:
		processor = cfg.Processor
	case cfg.Exporter == ExporterOTLP:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err := otlptracegrpc.New(context.Background(), opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
		}
		processor = sdktrace.NewBatchSpanProcessor(exp)
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: spans not sent", "endpoint", cfg.Endpoint, "err", err)
		}))
	default:
		return &Provider{TracerProvider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}, nil
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", service), attribute.String("service.version", version)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithSpanProcessor(processor),
	)
	return &Provider{TracerProvider: tp, shutdown: tp.Shutdown}, nil
}

// Shutdown sends the spans not yet sent and stops the exporter; spans
// ended later are dropped.
func (p *Provider) Shutdown(ctx context.Context) error { return p.shutdown(ctx) }

// ServiceName is the service.name of a process running targets: "shoal"
// for everything, else "shoal-" and the targets ("shoal-inference",
// "shoal-dataset-registry").
func ServiceName(targets []string, all bool) string {
	if all || len(targets) == 0 {
		return "shoal"
	}
	return "shoal-" + strings.Join(targets, "-")
}

// traced leaves out the calls of gRPC's own services (health checks,
// reflection): frequent, and no part of a request.
func traced(info *stats.RPCTagInfo) bool {
	return !strings.HasPrefix(info.FullMethodName, "/grpc.")
}

func (p *Provider) grpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(p.TracerProvider), otelgrpc.WithPropagators(Propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()), otelgrpc.WithFilter(traced),
	}
}

// ServerHandler is the stats handler of a gRPC server: a span for each
// call, continuing the caller's trace.
func (p *Provider) ServerHandler() stats.Handler {
	return otelgrpc.NewServerHandler(p.grpcOptions()...)
}

// ClientHandler is the stats handler of a gRPC client connection: a span
// for each call, whose context goes along in the call's metadata.
func (p *Provider) ClientHandler() stats.Handler {
	return otelgrpc.NewClientHandler(p.grpcOptions()...)
}

// HTTP wraps an HTTP handler in a server span per request, continuing the
// trace of an incoming traceparent header. The span is named by the
// method and the route template the handler matched (see SetRoute), or the
// method alone.
func (p *Provider) HTTP(h http.Handler) http.Handler {
	traced := otelhttp.NewHandler(h, "http",
		otelhttp.WithTracerProvider(p.TracerProvider), otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			// Called at the span's start and, as the request has a
			// ServeMux pattern ("/"), again at its end.
			if route, _ := r.Context().Value(routeKey{}).(*string); route != nil && *route != "" {
				return r.Method + " " + *route
			}
			return r.Method
		}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traced.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeKey{}, new(string))))
	})
}

// routeKey holds the route SetRoute names, for HTTP's span name.
type routeKey struct{}

// SetRoute names the request's server span by its route template
// ("POST /v1/models/{name=*}"), never the raw path, whose names and ids
// would make a span name per request. The handler that matched the route
// calls it, on the request's goroutine.
func SetRoute(ctx context.Context, method, route string) {
	if r, _ := ctx.Value(routeKey{}).(*string); r != nil {
		*r = route
	}
	span := trace.SpanFromContext(ctx)
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.route", route))
}

// MaxEncoded is the longest Encode's answer: room for a traceparent and
// any tracestate a caller sends (at most 512 characters by W3C, which
// encoded may take three times as many).
const MaxEncoded = 2048

// Encode returns the W3C trace context of ctx's span (traceparent and
// tracestate, URL-query encoded, at most MaxEncoded bytes) for work that
// runs later under the same trace, such as a queued job; "" when ctx has
// none.
func Encode(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	if len(c) == 0 {
		return ""
	}
	v := url.Values{}
	for k, val := range c {
		v.Set(k, val)
	}
	if s := v.Encode(); len(s) <= MaxEncoded {
		return s
	}
	// An oversized tracestate is dropped, as W3C lets a participant do;
	// the trace goes on.
	v.Del("tracestate")
	return v.Encode()
}

// Decode returns ctx with the trace context Encode wrote as the remote
// parent of the spans started from it; ctx unchanged when s holds none.
func Decode(ctx context.Context, s string) context.Context {
	v, err := url.ParseQuery(s)
	if err != nil || len(v) == 0 {
		return ctx
	}
	c := propagation.MapCarrier{}
	for k := range v {
		c.Set(k, v.Get(k))
	}
	return propagation.TraceContext{}.Extract(ctx, c)
}
