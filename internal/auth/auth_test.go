package auth_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/shoalml/shoal/gen/inference"
	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	_ "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	_ "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	_ "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/server"
	"github.com/shoalml/shoal/internal/testlog"
)

// Every RPC of every Shoal service declares its scope: the rules build
// from the generated descriptors without error.
func TestEveryRPCDeclaresAScope(t *testing.T) {
	rules, err := auth.NewRules(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("NewRules(every service) = %v", err)
	}
	for method, want := range map[string]authpb.Scope{
		"/shoal.registry.v1.RegistryService/SetAlias":           authpb.Scope_SCOPE_WRITE,
		"/shoal.registry.v1.RegistryService/DeleteAlias":        authpb.Scope_SCOPE_ADMIN,
		"/shoal.dataset.v1.DatasetService/ListDatasets":         authpb.Scope_SCOPE_READ,
		"/shoal.inference.v1.InferenceService/Predict":          authpb.Scope_SCOPE_PREDICT,
		"/inference.GRPCInferenceService/ModelInfer":            authpb.Scope_SCOPE_PREDICT,
		"/shoal.auth.v1.AuthService/Authenticate":               authpb.Scope_SCOPE_INTERNAL,
		"/shoal.auth.v1.AuthService/CreateToken":                authpb.Scope_SCOPE_ADMIN,
		"/shoal.trainer.v1.TrainerService/StartTraining":        authpb.Scope_SCOPE_WRITE,
		"/shoal.dataset.v1.DatasetService/DeleteDataset":        authpb.Scope_SCOPE_ADMIN,
		"/shoal.trainer.v1.TrainerService/WatchJob":             authpb.Scope_SCOPE_READ,
		"/shoal.inference.v1.InferenceService/ListLoadedModels": authpb.Scope_SCOPE_PREDICT,
	} {
		if got, _, ok := rules.Scope(method); !ok || got != want {
			t.Errorf("Scope(%s) = %v, %v; want %v", method, got, ok, want)
		}
	}
	if _, open, ok := rules.Scope("/grpc.health.v1.Health/Check"); !open || !ok {
		t.Errorf("health is not open")
	}
	if _, _, ok := rules.Scope("/shoal.nope.v1.X/Y"); ok {
		t.Errorf("an unknown method has a rule")
	}
}

// A service with an RPC that declares no scope cannot build rules: a new
// RPC without one fails this test (and the server's start).
func TestRPCWithoutScopeIsRefused(t *testing.T) {
	fd := &descriptorpb.FileDescriptorProto{
		Name:        proto.String("shoal/x/v1/x.proto"),
		Package:     proto.String("shoal.x.v1"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Req")}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("XService"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name: proto.String("Forgotten"), InputType: proto.String(".shoal.x.v1.Req"), OutputType: proto.String(".shoal.x.v1.Req"),
			}},
		}},
	}
	file, err := protodesc.NewFile(fd, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := &protoregistry.Files{}
	if err := files.RegisterFile(file); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewRules(files); err == nil || !strings.Contains(err.Error(), "/shoal.x.v1.XService/Forgotten") {
		t.Errorf("NewRules(an RPC without scope) = %v; want an error naming it", err)
	}
}

// fakeAuthn knows a fixed set of secrets; fail makes every check fail as
// storage would.
type fakeAuthn struct {
	mu     sync.Mutex
	tokens map[string]auth.Caller
	fail   bool
	calls  int
}

func (f *fakeAuthn) Authenticate(_ context.Context, secret string) (auth.Caller, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail {
		return auth.Caller{}, errors.New("database is down")
	}
	c, ok := f.tokens[secret]
	if !ok {
		return auth.Caller{}, auth.ErrUnknownToken
	}
	return c, nil
}

type fakeAudit struct {
	mu     sync.Mutex
	events []*authpb.AuditEvent
}

func (f *fakeAudit) Record(ev *authpb.AuditEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
}

// fakeRegistry answers SetAlias (write) and GetModel (read).
type fakeRegistry struct {
	registrypb.UnimplementedRegistryServiceServer
}

func (fakeRegistry) SetAlias(ctx context.Context, req *registrypb.SetAliasRequest) (*registrypb.SetAliasResponse, error) {
	c, _ := auth.CallerFrom(ctx)
	return &registrypb.SetAliasResponse{Alias: &registrypb.Alias{Alias: c.Name}}, nil
}

func (fakeRegistry) GetModel(context.Context, *registrypb.GetModelRequest) (*registrypb.GetModelResponse, error) {
	return &registrypb.GetModelResponse{}, nil
}

const serviceSecret = "service-secret-0123456789abcdef"

// serveGate serves a fake registry behind the production interceptors and
// the gate; logs collects their log lines.
func serveGate(t *testing.T, cfg auth.GateConfig, authn auth.Authenticator, audit auth.AuditSink) (*grpc.ClientConn, *testlog.Buffer) {
	t.Helper()
	cfg.ServiceSecret = serviceSecret
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := auth.NewGate(cfg, authn, audit, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) {
		registrypb.RegisterRegistryServiceServer(r, fakeRegistry{})
		healthpb.RegisterHealthServer(r, health.NewServer())
	}), grpctest.Options{Log: log, Gates: []server.Gate{g}})
	return srv.Conn, logs
}

func TestGate(t *testing.T) {
	authn := &fakeAuthn{tokens: map[string]auth.Caller{
		"reader": {TokenID: "tok_r", Name: "reader", Scopes: auth.ScopesOf(authpb.Scope_SCOPE_READ)},
		"writer": {TokenID: "tok_w", Name: "writer", Scopes: auth.ScopesOf(authpb.Scope_SCOPE_WRITE)},
	}}
	audit := &fakeAudit{}
	conn, logs := serveGate(t, auth.GateConfig{Anonymous: auth.ScopesOf(authpb.Scope_SCOPE_PREDICT)}, authn, audit)
	reg := registrypb.NewRegistryServiceClient(conn)
	with := func(vals ...string) context.Context {
		return metadata.NewOutgoingContext(t.Context(), metadata.Pairs(vals...))
	}
	read := func(ctx context.Context) error {
		_, err := reg.GetModel(ctx, &registrypb.GetModelRequest{Name: "fish"})
		return err
	}
	for _, tt := range []struct {
		name string
		ctx  context.Context
		code codes.Code
	}{
		{"no token", t.Context(), codes.Unauthenticated},
		{"reader", with("authorization", "Bearer reader"), codes.OK},
		{"scheme in lower case", with("authorization", "bearer reader"), codes.OK},
		{"writer lacks read", with("authorization", "Bearer writer"), codes.PermissionDenied},
		{"unknown token", with("authorization", "Bearer nope"), codes.Unauthenticated},
		{"basic auth", with("authorization", "Basic cmVhZGVyOg=="), codes.Unauthenticated},
		{"empty bearer", with("authorization", "Bearer "), codes.Unauthenticated},
		{"two headers", with("authorization", "Bearer reader", "authorization", "Bearer writer"), codes.Unauthenticated},
		{"very long token", with("authorization", "Bearer "+strings.Repeat("x", 4096)), codes.Unauthenticated},
		{"service identity", with("authorization", "Bearer "+serviceSecret), codes.OK},
		{"service secret with a suffix", with("authorization", "Bearer "+serviceSecret+"x"), codes.Unauthenticated},
	} {
		if err := read(tt.ctx); status.Code(err) != tt.code {
			t.Errorf("GetModel with %s = %v; want %v", tt.name, err, tt.code)
		}
		if err := read(tt.ctx); err != nil && strings.Contains(err.Error(), "reader") && tt.code != codes.PermissionDenied {
			t.Errorf("GetModel with %s = %v; the error echoes the credential", tt.name, err)
		}
	}
	// Health is open.
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("Health.Check without a token = %v; want it open", err)
	}
	// The handler sees who calls; the audit trail records writes only.
	resp, err := reg.SetAlias(with("authorization", "Bearer writer", "x-request-id", "req-1"),
		&registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 2})
	if err != nil || resp.GetAlias().GetAlias() != "writer" {
		t.Fatalf("SetAlias as writer = %v, %v; want the handler to see the caller writer", resp, err)
	}
	audit.mu.Lock()
	defer audit.mu.Unlock()
	if len(audit.events) != 1 {
		t.Fatalf("audit events = %v; want one (the SetAlias; reads are not audited)", audit.events)
	}
	ev := audit.events[0]
	if ev.GetTokenName() != "writer" || ev.GetTokenId() != "tok_w" || ev.GetCode() != "OK" ||
		ev.GetResource() != "model=fish alias=production version=2" || !strings.HasSuffix(ev.GetMethod(), "/SetAlias") {
		t.Errorf("audit event = %v", ev)
	}
	// One log line for the call, carrying the audit record; never a secret.
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "req-1") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "audit=true") || !strings.Contains(lines[0], "token_id=tok_w") ||
		!strings.Contains(lines[0], `resource="model=fish alias=production version=2"`) || !strings.Contains(lines[0], "caller=writer") {
		t.Errorf("log lines of the SetAlias = %q; want one, with the audit record", lines)
	}
	if strings.Contains(logs.String(), serviceSecret) || strings.Contains(logs.String(), "Bearer reader") || strings.Contains(logs.String(), "Bearer writer") {
		t.Errorf("a credential reached the log:\n%s", logs)
	}

	// Storage down: UNAVAILABLE, not UNAUTHENTICATED (the token may be fine).
	authn.mu.Lock()
	authn.fail = true
	authn.mu.Unlock()
	if err := read(with("authorization", "Bearer reader")); status.Code(err) != codes.Unavailable {
		t.Errorf("GetModel while tokens cannot be checked = %v; want UNAVAILABLE", err)
	}
}

func TestDisabledGateLetsEverythingThrough(t *testing.T) {
	conn, _ := serveGate(t, auth.GateConfig{Disabled: true}, nil, nil)
	if _, err := registrypb.NewRegistryServiceClient(conn).SetAlias(t.Context(), &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 1}); err != nil {
		t.Errorf("SetAlias without a token, auth disabled = %v; want OK", err)
	}
}

func TestCache(t *testing.T) {
	next := &fakeAuthn{tokens: map[string]auth.Caller{"a": {Name: "a"}}}
	c := auth.NewCache(next, time.Hour)
	for range 3 {
		if _, err := c.Authenticate(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Authenticate(t.Context(), "b"); !errors.Is(err, auth.ErrUnknownToken) {
			t.Fatalf("Authenticate(b) = %v; want ErrUnknownToken", err)
		}
	}
	if next.calls != 2 {
		t.Errorf("checks behind the cache = %d; want 2 (one per secret)", next.calls)
	}
	c.Clear()
	c.Authenticate(t.Context(), "a")
	if next.calls != 3 {
		t.Errorf("checks after Clear = %d; want 3", next.calls)
	}
}

func TestParse(t *testing.T) {
	s, err := auth.ParseScopes("read, WRITE,SCOPE_ADMIN")
	if err != nil || s.String() != "read,write,admin" {
		t.Errorf("ParseScopes = %v, %v; want read,write,admin", s, err)
	}
	for _, bad := range []string{"internal", "public", "root", "read;write"} {
		if _, err := auth.ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) = nil error; want one", bad)
		}
	}
	l, err := auth.ParseLimits("predict=100,write=0.5:3")
	if err != nil || l.String() != "predict=100:100,write=0.5:3" {
		t.Errorf("ParseLimits = %v, %v", l, err)
	}
	for _, bad := range []string{"predict", "predict=0", "predict=-1", "nope=1", "read=1:0", "read=x"} {
		if _, err := auth.ParseLimits(bad); err == nil {
			t.Errorf("ParseLimits(%q) = nil error; want one", bad)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := auth.NewLimiter(auth.Limits{authpb.Scope_SCOPE_READ: {Rate: 1, Burst: 2}})
	a := auth.Caller{TokenID: "a"}
	b := auth.Caller{Anonymous: true, Addr: "10.0.0.1"}
	for i, want := range []bool{true, true, false} {
		if got := l.Wait(a, authpb.Scope_SCOPE_READ) == 0; got != want {
			t.Errorf("call %d of token a: allowed = %v; want %v", i, got, want)
		}
	}
	if l.Wait(b, authpb.Scope_SCOPE_READ) != 0 || l.Wait(a, authpb.Scope_SCOPE_WRITE) != 0 {
		t.Errorf("another caller, or another scope, shares token a's bucket")
	}
	if l.Wait(auth.Caller{Service: true}, authpb.Scope_SCOPE_READ) != 0 {
		t.Errorf("a service call was limited")
	}
}

func TestResource(t *testing.T) {
	got := auth.Resource(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{
		Model: "fish\nforged=1", Description: "free text is left out"}}})
	if got != "spec.model=fish?forged=1" {
		t.Errorf("Resource(CreateVersion spec) = %q", got)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"localhost:9090": true, "127.0.0.1:9090": true, "[::1]:9090": true, "127.0.0.2:1": true, "localhost": true,
		"dns:///localhost:9090": true, "passthrough:///127.0.0.1:9090": true, "unix:///run/shoal.sock": true,
		"shoal.example.com:9090": false, "10.0.0.7:9090": false, "dns://127.0.0.1/shoal.example.com:9090": false,
		"passthrough:///shoal.test:1": false, "": false,
	} {
		if got := auth.Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v; want %v", addr, got, want)
		}
	}
}
