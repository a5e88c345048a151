package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/overload"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage"
)

// RequestIDHeader carries a request's id in gRPC metadata and, through the
// gateway, as the X-Request-Id HTTP header.
const RequestIDHeader = "x-request-id"

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// call is what the interceptors learn about one RPC; the logging
// interceptor owns it and prints it once, at the end.
type call struct {
	cause  error // the handler's error before masking
	panic  any
	caller string      // who the call ran as, set by the auth gate
	extra  []slog.Attr // added by later interceptors (the audit trail's)
}

type callKey struct{}

// SetCaller names who the call of ctx runs as (a token's name, never its
// secret) for the call's log line.
func SetCaller(ctx context.Context, name string) {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		c.caller = name
	}
}

// AddLogAttrs adds attributes to the call's one log line, so that what other
// interceptors know of a call (its audit record) is in that line rather than
// in one of their own.
func AddLogAttrs(ctx context.Context, attrs ...slog.Attr) {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		c.extra = append(c.extra, attrs...)
	}
}

// Interceptors observe every RPC: they give it a request id, recover
// panics, mask internal errors, log one line and record metrics.
type Interceptors struct {
	log    *slog.Logger
	panics *panics.Guard
	// metrics are the RPC series under the names every gRPC dashboard
	// knows (go-grpc-middleware's grpc_server_*); they see each call as its
	// client does, after masking and panic recovery.
	metrics *grpcprom.ServerMetrics
}

// LatencyBuckets are the buckets of the RPC latency histograms, server and
// client: from 0.5ms (a cached read in one process) to ~75s (a large
// upload or a ResNet batch on a loaded machine).
var LatencyBuckets = prometheus.ExponentialBuckets(0.0005, 2.5, 14)

// NewInterceptors registers the RPC metrics, and the panic counter of the
// process's panics.Guard, with reg.
func NewInterceptors(log *slog.Logger, reg prometheus.Registerer) *Interceptors {
	return newInterceptors(log, reg, panics.NewGuard(log, reg))
}

func newInterceptors(log *slog.Logger, reg prometheus.Registerer, guard *panics.Guard) *Interceptors {
	i := &Interceptors{
		log:    log,
		panics: guard,
		metrics: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(LatencyBuckets))),
	}
	reg.MustRegister(i.metrics)
	return i
}

// Panics is the guard that counts the panics these interceptors recover;
// work that leaves the request goroutine recovers its own through it.
func (i *Interceptors) Panics() *panics.Guard { return i.panics }

// Unary returns the unary server interceptor.
func (i *Interceptors) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		ctx, c, done := i.begin(ctx, info.FullMethod)
		defer func() { done(err) }()
		defer func() {
			if r := recover(); r != nil {
				c.panic = r
				err = i.recovered(ctx, info.FullMethod, r)
			}
		}()
		resp, err = handler(ctx, req)
		return resp, mask(ctx, c, err)
	}
}

// Stream returns the streaming server interceptor.
func (i *Interceptors) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		ctx, c, done := i.begin(ss.Context(), info.FullMethod)
		defer func() { done(err) }()
		defer func() {
			if r := recover(); r != nil {
				c.panic = r
				err = i.recovered(ctx, info.FullMethod, r)
			}
		}()
		err = handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
		return mask(ctx, c, err)
	}
}

// begin sets up one RPC and returns the function that ends it.
func (i *Interceptors) begin(ctx context.Context, fullMethod string) (context.Context, *call, func(error)) {
	start := time.Now()
	id := incomingRequestID(ctx)
	ctx = context.WithValue(ctx, requestIDKey{}, id)
	c := &call{}
	ctx = context.WithValue(ctx, callKey{}, c)
	// The id goes back to the caller so a user can quote it in a report.
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))

	return ctx, c, func(err error) {
		elapsed := time.Since(start)
		code := status.Code(err)

		attrs := []slog.Attr{
			slog.String("method", fullMethod),
			slog.String("code", code.String()),
			slog.Duration("duration", elapsed),
			slog.String("request_id", id),
		}
		if c.caller != "" {
			attrs = append(attrs, slog.String("caller", c.caller))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			// The call's trace (internal/tracing), to find its spans.
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		}
		attrs = append(attrs, c.extra...)
		level := slog.LevelInfo
		switch {
		case code == codes.Canceled && c.panic == nil && c.cause == nil:
			// The client went away (a closed watch, a cancelled upload):
			// nothing for an operator to act on.
			level = slog.LevelDebug
			attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
		case c.panic != nil:
			level = slog.LevelError
			attrs = append(attrs, slog.Any("panic", c.panic))
		case c.cause != nil:
			level = slog.LevelError
			attrs = append(attrs, slog.String("error", c.cause.Error()))
		case err != nil:
			if serverFault(code) {
				level = slog.LevelError
			} else {
				level = slog.LevelWarn
			}
			attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
		}
		i.log.LogAttrs(ctx, level, "rpc", attrs...)
	}
}

func (i *Interceptors) recovered(ctx context.Context, method string, r any) error {
	_ = i.panics.Report("rpc", r, debug.Stack(), "method", method, "request_id", RequestID(ctx))
	return status.Errorf(codes.Internal, "internal error (request id %s)", RequestID(ctx))
}

// mask keeps internal details (SQL, S3, file paths) away from clients:
// errors that are not gRPC statuses, and statuses a handler marked as
// internal, become a generic Internal error naming the request id, unless
// they are a storage failure the client can act on (a database or blob
// store that is unreachable, a full disk), which gets its own code and a
// message naming the store. The original is kept for the log line.
func mask(ctx context.Context, c *call, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return status.FromContextError(err).Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	st, ok := status.FromError(err)
	if ok && !serverFault(st.Code()) {
		return err
	}
	c.cause = err
	if f, ok := storage.Classify(err); ok {
		if f.Code == codes.ResourceExhausted {
			// A full disk: retrying helps once space is freed.
			return overload.Errorf(diskFullRetry, "%s (request id %s)", f.Message(), RequestID(ctx))
		}
		return status.Errorf(f.Code, "%s (request id %s)", f.Message(), RequestID(ctx))
	}
	return status.Errorf(codes.Internal, "internal error (request id %s)", RequestID(ctx))
}

// diskFullRetry is when a client is told to try again after a write failed
// for a full disk: freeing space is a person's work.
const diskFullRetry = time.Minute

// serverFault reports codes whose messages may carry internal details.
func serverFault(c codes.Code) bool {
	switch c {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return true
	}
	return false
}

func incomingRequestID(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && validRequestID(v[0]) {
			return v[0]
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts ids that are safe to log and echo back.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func splitMethod(full string) (service, method string) {
	// full is "/package.Service/Method".
	for i := len(full) - 1; i > 0; i-- {
		if full[i] == '/' {
			return full[1:i], full[i+1:]
		}
	}
	return "unknown", full
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }
