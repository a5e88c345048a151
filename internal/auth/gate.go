package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	"github.com/shoalml/shoal/internal/overload"
	"github.com/shoalml/shoal/internal/server"
)

// Caller is who a call runs as.
type Caller struct {
	// TokenID is the caller's token id; empty for anonymous and service calls.
	TokenID string
	// Name is the token's name, "anonymous", or "service".
	Name      string
	Scopes    Scopes
	Anonymous bool
	// Service is true for Shoal's own services calling each other.
	Service bool
	// Addr is the client's IP address (through the gateway: the HTTP
	// client's), which keys anonymous rate limits.
	Addr string
}

// Proto returns the caller as the API describes it.
func (c Caller) Proto() *authpb.Caller {
	return &authpb.Caller{TokenId: c.TokenID, Name: c.Name, Scopes: c.Scopes.List(), Anonymous: c.Anonymous}
}

type callerKey struct{}

// CallerFrom returns the caller of a call that passed the gate.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// ErrUnknownToken is what an Authenticator returns for a secret that is not
// a live token: unknown, revoked or expired. Other errors mean the check
// itself failed (storage down).
var ErrUnknownToken = errors.New("unknown, revoked or expired token")

// Authenticator turns a bearer secret into the caller it stands for.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (Caller, error)
}

// AuditSink receives audit events; Record must not block.
type AuditSink interface {
	Record(ev *authpb.AuditEvent)
}

// ServiceName is the name of Shoal's services' identity in logs and audit.
const ServiceName = "service"

// serviceScopes are what Shoal's services may do calling each other.
var serviceScopes = AllUserScopes | ScopesOf(authpb.Scope_SCOPE_INTERNAL)

// maxSecretBytes bounds a bearer secret: far above any token's length, far
// below header limits.
const maxSecretBytes = 512

// GateConfig configures the gate.
type GateConfig struct {
	// Disabled lets every call through with every user scope (development).
	Disabled bool
	// Anonymous are the scopes of calls without a credential.
	Anonymous Scopes
	// ServiceSecret is the credential of Shoal's own services calling each
	// other: random per process in one process, shared in a split one.
	ServiceSecret string
	// ProxySecret marks calls from the process's own gateway, whose
	// x-forwarded-for is trusted for anonymous limits.
	ProxySecret string
	// Limits are the rate limits per scope.
	Limits Limits
}

// Gate is the interceptor pair every call passes.
type Gate struct {
	cfg     GateConfig
	rules   *Rules
	authn   Authenticator
	audit   AuditSink
	limiter *Limiter
	log     *slog.Logger
}

// NewGate builds the gate from the scopes declared in every registered
// service's proto. authn checks tokens; audit receives state-changing calls.
func NewGate(cfg GateConfig, authn Authenticator, audit AuditSink, log *slog.Logger) (*Gate, error) {
	rules, err := NewRules(protoregistry.GlobalFiles)
	if err != nil {
		return nil, err
	}
	if !cfg.Disabled && len(cfg.ServiceSecret) < 16 {
		return nil, errors.New("auth: the service secret must be at least 16 characters")
	}
	return &Gate{cfg: cfg, rules: rules, authn: authn, audit: audit, limiter: NewLimiter(cfg.Limits), log: log}, nil
}

// Unary returns the unary interceptor.
func (g *Gate) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		ctx, caller, scope, err := g.admit(ctx, info.FullMethod)
		if audited(scope) {
			defer func() {
				m, _ := req.(proto.Message)
				g.record(ctx, info.FullMethod, caller, Resource(m), err)
			}()
		}
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream interceptor.
func (g *Gate) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		ctx, caller, scope, err := g.admit(ss.Context(), info.FullMethod)
		ws := &stream{ServerStream: ss, ctx: ctx}
		if audited(scope) {
			defer func() { g.record(ctx, info.FullMethod, caller, ws.resource, err) }()
		}
		if err != nil {
			return err
		}
		return handler(srv, ws)
	}
}

// audited says which calls the audit trail records: those that change state.
func audited(s authpb.Scope) bool {
	return s == authpb.Scope_SCOPE_WRITE || s == authpb.Scope_SCOPE_ADMIN
}

// admit finds the caller of a call and checks it may make it.
func (g *Gate) admit(ctx context.Context, method string) (context.Context, Caller, authpb.Scope, error) {
	scope, open, known := g.rules.Scope(method)
	if open && scope == authpb.Scope_SCOPE_UNSPECIFIED {
		return ctx, Caller{}, scope, nil // health, reflection
	}
	md, _ := metadata.FromIncomingContext(ctx)
	caller, err := g.identify(ctx, md)
	if err != nil {
		return ctx, caller, scope, err
	}
	ctx = WithCaller(ctx, caller)
	server.SetCaller(ctx, caller.Name)
	switch {
	case !known && !g.cfg.Disabled:
		return ctx, caller, scope, status.Errorf(codes.PermissionDenied, "%s declares no scope, so nobody may call it", method)
	case open:
	case !caller.Scopes.Has(scope) && caller.Anonymous:
		return ctx, caller, scope, status.Errorf(codes.Unauthenticated,
			"this call needs a token with the %s scope: send it as 'authorization: Bearer <token>'", ScopeName(scope))
	case !caller.Scopes.Has(scope):
		return ctx, caller, scope, status.Errorf(codes.PermissionDenied, "token %q lacks the %s scope this call needs", caller.Name, ScopeName(scope))
	}
	if wait := g.limiter.Wait(caller, scope); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", strconv.Itoa(secs)))
		return ctx, caller, scope, overload.Errorf(wait,
			"rate limit of the %s scope reached for %s; retry in %d s", ScopeName(scope), limitSubject(caller), secs)
	}
	return ctx, caller, scope, nil
}

// identify returns the caller a call's credential stands for.
func (g *Gate) identify(ctx context.Context, md metadata.MD) (Caller, error) {
	addr := g.clientAddr(ctx, md)
	if g.cfg.Disabled {
		return Caller{Name: "anonymous", Scopes: AllUserScopes, Anonymous: true, Addr: addr}, nil
	}
	secret, err := bearer(md)
	if err != nil {
		return Caller{Name: "anonymous", Anonymous: true, Addr: addr}, err
	}
	switch {
	case secret == "":
		return Caller{Name: "anonymous", Scopes: g.cfg.Anonymous, Anonymous: true, Addr: addr}, nil
	case subtle.ConstantTimeCompare([]byte(secret), []byte(g.cfg.ServiceSecret)) == 1:
		return Caller{Name: ServiceName, Scopes: serviceScopes, Service: true, Addr: addr}, nil
	}
	c, err := g.authn.Authenticate(ctx, secret)
	switch {
	case errors.Is(err, ErrUnknownToken):
		return Caller{Name: "anonymous", Anonymous: true, Addr: addr},
			status.Error(codes.Unauthenticated, "the token is not valid: unknown, revoked or expired")
	case err != nil:
		g.log.WarnContext(ctx, "checking a token failed", "err", err)
		return Caller{Name: "anonymous", Anonymous: true, Addr: addr},
			status.Error(codes.Unavailable, "tokens cannot be checked right now; retry shortly")
	}
	c.Addr = addr
	return c, nil
}

// CheckHTTP admits an HTTP request that is not a gRPC call (/metrics) if its
// bearer token holds scope: 200, or 401/403/503 with a message.
func (g *Gate) CheckHTTP(r *http.Request, scope authpb.Scope) (int, string) {
	if g.cfg.Disabled {
		return http.StatusOK, ""
	}
	md := metadata.MD{}
	if v := r.Header.Values("Authorization"); len(v) > 0 {
		md["authorization"] = v
	}
	c, err := g.identify(r.Context(), md)
	switch {
	case status.Code(err) == codes.Unavailable:
		return http.StatusServiceUnavailable, status.Convert(err).Message()
	case err != nil:
		return http.StatusUnauthorized, status.Convert(err).Message()
	case !c.Scopes.Has(scope) && c.Anonymous:
		return http.StatusUnauthorized, fmt.Sprintf("this needs a token with the %s scope: send it as 'Authorization: Bearer <token>'", ScopeName(scope))
	case !c.Scopes.Has(scope):
		return http.StatusForbidden, fmt.Sprintf("token %q lacks the %s scope", c.Name, ScopeName(scope))
	}
	return http.StatusOK, ""
}

// bearer returns the secret of the call's authorization header, "" when
// there is none.
func bearer(md metadata.MD) (string, error) {
	vals := md.Get("authorization")
	switch {
	case len(vals) == 0:
		return "", nil
	case len(vals) > 1:
		return "", status.Error(codes.Unauthenticated, "more than one authorization header")
	}
	scheme, secret, ok := strings.Cut(vals[0], " ")
	secret = strings.TrimSpace(secret)
	switch {
	case !ok || !strings.EqualFold(scheme, "Bearer") || secret == "":
		return "", status.Error(codes.Unauthenticated, "malformed authorization header: want 'Bearer <token>'")
	case len(secret) > maxSecretBytes:
		return "", status.Errorf(codes.Unauthenticated, "malformed authorization header: a token is at most %d bytes", maxSecretBytes)
	}
	return secret, nil
}

// proxyHeader carries the gateway's proof that it is this process's own.
const proxyHeader = "x-shoal-proxy"

// clientAddr is the caller's IP: the peer's, or, for calls from this
// process's gateway, the HTTP client's (the last x-forwarded-for entry,
// which the gateway appends itself).
func (g *Gate) clientAddr(ctx context.Context, md metadata.MD) string {
	if p := md.Get(proxyHeader); len(p) == 1 && g.cfg.ProxySecret != "" &&
		subtle.ConstantTimeCompare([]byte(p[0]), []byte(g.cfg.ProxySecret)) == 1 {
		if fwd := md.Get("x-forwarded-for"); len(fwd) > 0 {
			parts := strings.Split(fwd[len(fwd)-1], ",")
			return strings.TrimSpace(parts[len(parts)-1])
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return host
		}
		return p.Addr.String()
	}
	return ""
}

// record writes one audit event: a structured log line, and a row through
// the sink.
func (g *Gate) record(ctx context.Context, method string, c Caller, resource string, err error) {
	ev := &authpb.AuditEvent{
		TokenId:   c.TokenID,
		TokenName: c.Name,
		Method:    method,
		Resource:  resource,
		Code:      rpccode.Code(status.Code(err)).String(),
		RequestId: server.RequestID(ctx),
	}
	// The call's one log line carries the record (it has the method, code,
	// request id and caller already).
	server.AddLogAttrs(ctx, slog.Bool("audit", true), slog.String("token_id", ev.TokenId), slog.String("resource", ev.Resource))
	if g.audit != nil {
		g.audit.Record(ev)
	}
}

func limitSubject(c Caller) string {
	if c.Anonymous {
		return fmt.Sprintf("anonymous calls from %s", c.Addr)
	}
	return fmt.Sprintf("token %q", c.Name)
}

// stream carries the gate's context and reads the resource of the first
// message received, which names what a client stream changes.
type stream struct {
	grpc.ServerStream
	ctx      context.Context
	received bool
	resource string
}

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil && !s.received {
		s.received = true
		pm, _ := m.(proto.Message)
		s.resource = Resource(pm)
	}
	return err
}

func timestampNow() *timestamppb.Timestamp { return timestamppb.Now() }
