package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	oippb "github.com/shoalml/shoal/gen/inference"
	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// every service the process serves, as descriptors.
var serviceDescs = []grpc.ServiceDesc{
	authpb.AuthService_ServiceDesc, datasetpb.DatasetService_ServiceDesc, trainerpb.TrainerService_ServiceDesc,
	registrypb.RegistryService_ServiceDesc, inferencepb.InferenceService_ServiceDesc, oippb.GRPCInferenceService_ServiceDesc,
}

// credential is one way of calling: a bearer secret, or none.
type credential struct {
	name   string
	secret string
	scopes auth.Scopes // what the gate should let through
	// revoked: every call but public ones is refused as unauthenticated.
	revoked bool
}

// TestEveryRPCChecksItsDeclaredScope calls every RPC of every service of a
// whole process with no token, a token of each scope and a revoked token,
// and checks each outcome against the scope the RPC declares: refused with
// UNAUTHENTICATED or PERMISSION_DENIED exactly when the credential lacks it.
// An RPC without a declared scope fails the process's start (NewRules), and
// the rules test in internal/auth.
func TestEveryRPCChecksItsDeclaredScope(t *testing.T) {
	r := start(t, defaults(t))
	admin := authpb.NewAuthServiceClient(r.grpc)
	adminCtx := bearerCtx(t.Context(), r.admin)
	newToken := func(name string, scopes ...authpb.Scope) string {
		resp, err := admin.CreateToken(adminCtx, &authpb.CreateTokenRequest{Name: name, Scopes: scopes})
		if err != nil {
			t.Fatalf("CreateToken(%s) = %v", name, err)
		}
		return resp.GetSecret()
	}
	creds := []credential{{name: "none", scopes: auth.ScopesOf(authpb.Scope_SCOPE_PREDICT)}}
	for _, sc := range auth.UserScopes {
		creds = append(creds, credential{name: auth.ScopeName(sc), secret: newToken(auth.ScopeName(sc), sc), scopes: auth.ScopesOf(sc)})
	}
	revoked := newToken("revoked", auth.UserScopes...)
	tokens, err := admin.ListTokens(adminCtx, &authpb.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens.GetTokens() {
		if tok.GetName() == "revoked" {
			if _, err := admin.RevokeToken(adminCtx, &authpb.RevokeTokenRequest{Id: tok.GetId()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	creds = append(creds, credential{name: "revoked", secret: revoked, revoked: true})

	checked := 0
	for _, sd := range serviceDescs {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(sd.ServiceName))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			full := "/" + sd.ServiceName + "/" + string(md.Name())
			scope := auth.MethodScope(md)
			if sd.ServiceName == "inference.GRPCInferenceService" {
				scope = authpb.Scope_SCOPE_PREDICT
			}
			if scope == authpb.Scope_SCOPE_UNSPECIFIED {
				t.Errorf("%s declares no scope", full)
				continue
			}
			for _, c := range creds {
				err := invoke(t, r.grpc, c.secret, full, md)
				code := status.Code(err)
				refused := code == codes.Unauthenticated || code == codes.PermissionDenied
				var want string
				switch {
				case scope == authpb.Scope_SCOPE_PUBLIC && !c.revoked:
					want = "admitted"
				case c.revoked:
					want = "refused (UNAUTHENTICATED)"
					refused = code == codes.Unauthenticated
				case !c.scopes.Has(scope):
					want = "refused"
				default:
					want = "admitted"
				}
				if got := map[bool]string{true: "refused", false: "admitted"}[refused]; !strings.HasPrefix(want, got) || (c.revoked && !refused) {
					t.Errorf("%s (scope %s) with token %s = %v; want %s", full, auth.ScopeName(scope), c.name, err, want)
				}
				if c.name == "none" && refused && code != codes.Unauthenticated {
					t.Errorf("%s without a token = %v; want UNAUTHENTICATED", full, err)
				}
				checked++
			}
		}
	}
	if checked < 40*len(creds) {
		t.Errorf("checked %d calls; want every RPC of every service", checked)
	}
}

func bearerCtx(ctx context.Context, secret string) context.Context {
	if secret == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
}

// invoke calls method with an empty request and returns the first error:
// admitted calls fail on validation (empty requests), or time out on a
// stream that would go on.
func invoke(t *testing.T, conn *grpc.ClientConn, secret, method string, md protoreflect.MethodDescriptor) error {
	ctx, cancel := context.WithTimeout(bearerCtx(t.Context(), secret), 2*time.Second)
	defer cancel()
	req := dynamicpb.NewMessage(md.Input())
	resp := dynamicpb.NewMessage(md.Output())
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return conn.Invoke(ctx, method, req, resp)
	}
	desc := &grpc.StreamDesc{ServerStreams: md.IsStreamingServer(), ClientStreams: md.IsStreamingClient()}
	s, err := conn.NewStream(ctx, desc, method)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	if err := s.RecvMsg(resp); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// TestRESTUsesTheSameGate: the gateway forwards the authorization header,
// so REST answers 401/403 as the gRPC gate decides; tokens in the URL are
// refused; the anonymous predict scope reaches /predict's validation.
func TestRESTUsesTheSameGate(t *testing.T) {
	r := start(t, defaults(t))
	reader := createToken(t, r, "reader", authpb.Scope_SCOPE_READ)
	get := func(path, secret string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, r.http+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		path, secret string
		code         int
	}{
		{"/v1/datasets", "", http.StatusUnauthorized},
		{"/v1/datasets", "shoal_not-a-real-token", http.StatusUnauthorized},
		{"/v1/datasets", reader, http.StatusOK},
		{"/v1/tokens", reader, http.StatusForbidden},
		{"/v1/tokens", r.admin, http.StatusOK},
		{"/v1/caller", "", http.StatusOK},
		{"/v1/loaded-models", "", http.StatusOK},
		{"/v1/datasets?access_token=" + reader, "", http.StatusBadRequest},
		{"/healthz", "", http.StatusOK},
		{"/readyz", "", http.StatusOK},
	} {
		if code, body := get(tt.path, tt.secret); code != tt.code {
			t.Errorf("GET %s (token %t) = %d %.200s; want %d", tt.path, tt.secret != "", code, body, tt.code)
		}
	}
	resp, err := http.Post(r.http+"/predict", "text/plain", strings.NewReader("not a form"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("anonymous POST /predict with a bad body = %d; want 400 (admitted, then refused by validation)", resp.StatusCode)
	}

	// Bad credentials on every kind of REST call: a client stream (NDJSON),
	// /predict, the Open Inference Protocol (its own error form), a very long
	// header.
	send := func(method, path, secret, ctype, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, r.http+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	upload := `{"header":{"dataset":"x"}}` + "\n"
	for _, tt := range []struct {
		name, method, path, secret, ctype, body string
		code                                    int
		msg                                     string
	}{
		{"NDJSON upload, no token", "POST", "/v1/images:upload", "", "application/x-ndjson", upload, 401, "needs a token"},
		{"NDJSON upload, read token", "POST", "/v1/images:upload", reader, "application/x-ndjson", upload, 403, "lacks the write scope"},
		{"/predict, unknown token", "POST", "/predict", "shoal_unknown", "multipart/form-data; boundary=b",
			"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n\r\nx\r\n--b--\r\n", 401, "not valid"},
		{"OIP infer, unknown token", "POST", "/v2/models/fashion/infer", "shoal_unknown", "application/json", `{"inputs":[]}`, 401, `"error"`},
		{"very long token", "GET", "/v1/datasets", strings.Repeat("t", 64<<10), "", "", 401, "malformed"},
	} {
		if code, body := send(tt.method, tt.path, tt.secret, tt.ctype, tt.body); code != tt.code || !strings.Contains(body, tt.msg) {
			t.Errorf("%s: %s %s = %d %.200s; want %d containing %q", tt.name, tt.method, tt.path, code, body, tt.code, tt.msg)
		}
	}
}

// TestMetricsScope: /metrics is open by default (scrapers), and needs a
// token with --auth.metrics-scope when that is set.
func TestMetricsScope(t *testing.T) {
	cfg := defaults(t)
	cfg.Gate.MetricsScope = "read"
	r := start(t, cfg)
	reader := createToken(t, r, "prometheus", authpb.Scope_SCOPE_READ)
	predictor := createToken(t, r, "app", authpb.Scope_SCOPE_PREDICT)
	for _, tt := range []struct {
		secret string
		code   int
	}{{"", 401}, {predictor, 403}, {reader, 200}} {
		req, _ := http.NewRequest(http.MethodGet, r.http+"/metrics", nil)
		if tt.secret != "" {
			req.Header.Set("Authorization", "Bearer "+tt.secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("GET /metrics (token %t) with --auth.metrics-scope=read = %d; want %d", tt.secret != "", resp.StatusCode, tt.code)
		}
	}
}

func createToken(t *testing.T, r running, name string, scopes ...authpb.Scope) string {
	t.Helper()
	resp, err := authpb.NewAuthServiceClient(r.grpc).CreateToken(bearerCtx(t.Context(), r.admin),
		&authpb.CreateTokenRequest{Name: name, Scopes: scopes})
	if err != nil {
		t.Fatalf("CreateToken(%s) = %v", name, err)
	}
	return resp.GetSecret()
}

// TestRateLimitAndAudit: a token over its scope's rate gets 429 with
// Retry-After; a promotion is in the audit trail under the token's name.
func TestRateLimitAndAudit(t *testing.T) {
	cfg := defaults(t)
	cfg.Gate.RateLimits = "read=0.5:2"
	r := start(t, cfg)
	reader := createToken(t, r, "slow reader", authpb.Scope_SCOPE_READ)
	var codes_ []int
	var retryAfter string
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, r.http+"/v1/datasets", nil)
		req.Header.Set("Authorization", "Bearer "+reader)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes_ = append(codes_, resp.StatusCode)
		retryAfter = resp.Header.Get("Retry-After")
	}
	if codes_[0] != 200 || codes_[1] != 200 || codes_[2] != http.StatusTooManyRequests || retryAfter == "" {
		t.Errorf("three GETs with a read=0.5:2 limit = %v, last Retry-After %q; want 200, 200, 429 with Retry-After", codes_, retryAfter)
	}

	// A promotion by a token named "ci", refused first for lack of scope.
	ci := createToken(t, r, "ci", authpb.Scope_SCOPE_WRITE, authpb.Scope_SCOPE_READ)
	reg := registrypb.NewRegistryServiceClient(r.grpc)
	stream, err := reg.CreateVersion(bearerCtx(t.Context(), ci))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{
		Model: "fish", Labels: []string{"a", "b"}, InputSpec: &registrypb.InputSpec{Channels: 1, Height: 4, Width: 4},
	}}})
	stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{
		Chunk: onnxtest.Classifier{Channels: 1, Height: 4, Width: 4, Classes: 2}.Bytes()}})
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("CreateVersion with a write token = %v", err)
	}
	_, err = reg.SetAlias(bearerCtx(t.Context(), reader), &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 1})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("SetAlias with a read token = %v; want PERMISSION_DENIED", err)
	}
	if _, err = reg.SetAlias(bearerCtx(t.Context(), ci), &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 1}); err != nil {
		t.Errorf("SetAlias(fish, 1) with a write token = %v; want it promoted", err)
	}
	events, err := authpb.NewAuthServiceClient(r.grpc).ListAuditEvents(bearerCtx(t.Context(), r.admin),
		&authpb.ListAuditEventsRequest{Method: "SetAlias"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range events.GetEvents() {
		got = append(got, ev.GetTokenName()+" "+ev.GetCode()+" "+ev.GetResource())
		if ev.GetRequestId() == "" {
			t.Errorf("audit event %v has no request id", ev)
		}
	}
	want := []string{"ci OK model=fish alias=production version=1", "slow reader PERMISSION_DENIED model=fish alias=production version=1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("ListAuditEvents(SetAlias) = %q; want %q", got, want)
	}
}

// TestAnonymousScopesSwitch: --auth.anonymous-scopes= closes prediction too.
func TestAnonymousScopesSwitch(t *testing.T) {
	cfg := defaults(t)
	cfg.Gate.AnonymousScopes = ""
	r := start(t, cfg)
	_, err := inferencepb.NewInferenceServiceClient(r.grpc).ListLoadedModels(t.Context(), &inferencepb.ListLoadedModelsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListLoadedModels without a token, --auth.anonymous-scopes= = %v; want UNAUTHENTICATED", err)
	}
}

// TestTokensWithTheCLI: the admin creates a token with `shoal tokens
// create`, which works until `shoal tokens revoke`; a call without a token
// exits with the permission code; `shoal audit` shows who did what.
func TestTokensWithTheCLI(t *testing.T) {
	r := start(t, defaults(t))
	shoal := func(token string, args ...string) (string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		env := cli.Env{Stdout: &out, Stderr: &errOut, LookupEnv: func(k string) (string, bool) {
			if k == "SHOAL_TOKEN" && token != "" {
				return token, true
			}
			return "", false
		}}
		code := cli.Main(t.Context(), append(args, "--addr", r.addr), env)
		return out.String() + errOut.String(), code
	}
	out, code := shoal(r.admin, "tokens", "create", "--name", "ci", "--scope", "read,write", "--expires", "30d")
	secret, _, _ := strings.Cut(out, "\n")
	if code != cli.ExitOK || !strings.HasPrefix(secret, "shoal_") || !strings.Contains(out, "with scopes read,write") {
		t.Fatalf("shoal tokens create = %d %q", code, out)
	}
	if out, code := shoal(secret, "dataset", "ls"); code != cli.ExitOK {
		t.Errorf("shoal dataset ls with the new token = %d %q; want 0", code, out)
	}
	if out, code := shoal(secret, "tokens", "ls"); code != cli.ExitPermission || !strings.Contains(out, "lacks the admin scope") {
		t.Errorf("shoal tokens ls with a read,write token = %d %q; want the permission code", code, out)
	}
	if out, code := shoal("", "dataset", "ls"); code != cli.ExitPermission || !strings.Contains(out, "needs a token") {
		t.Errorf("shoal dataset ls without a token = %d %q; want the permission code saying a token is needed", code, out)
	}
	out, code = shoal(r.admin, "tokens", "ls")
	if code != cli.ExitOK || !strings.Contains(out, "ci") || !strings.Contains(out, "read,write") || strings.Contains(out, secret) {
		t.Fatalf("shoal tokens ls = %d %q; want ci with its scopes and never its secret", code, out)
	}
	var id string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "ci" {
			id = f[0]
		}
	}
	if out, code := shoal(r.admin, "tokens", "revoke", id); code != cli.ExitOK || !strings.Contains(out, "revoked token "+id) {
		t.Fatalf("shoal tokens revoke %s = %d %q", id, code, out)
	}
	if out, code := shoal(secret, "dataset", "ls"); code != cli.ExitPermission {
		t.Errorf("shoal dataset ls with the revoked token = %d %q; want the permission code", code, out)
	}
	out, code = shoal(r.admin, "audit", "--method", "Token")
	if code != cli.ExitOK || !strings.Contains(out, "RevokeToken") || !strings.Contains(out, "CreateToken") || !strings.Contains(out, "admin (bootstrap)") {
		t.Errorf("shoal audit = %d %q; want the token calls by the bootstrap admin", code, out)
	}
}
