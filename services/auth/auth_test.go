package auth

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
)

func testConfig(t *testing.T) Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	c.AdminTokenFile = filepath.Join(t.TempDir(), "data", "admin-token")
	return c
}

func newService(t *testing.T, cfg Config, dbc db.Config, enabled bool) *Service {
	t.Helper()
	s, err := New(cfg, Deps{Log: testlog.New(t), DB: dbtest.Open(t, dbc), Enabled: enabled})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	return s
}

// adminCtx is a call by the bootstrap admin, as the gate would pass it.
func adminCtx(ctx context.Context) context.Context {
	return auth.WithCaller(ctx, auth.Caller{TokenID: "tok_admin", Name: "admin", Scopes: auth.AllUserScopes})
}

func TestBootstrap(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dbc db.Config) {
		cfg := testConfig(t)
		s := newService(t, cfg, dbc, true)
		fi, err := os.Stat(cfg.AdminTokenFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("admin token file: %v, mode %v; want it written with mode 0600", err, fi.Mode())
		}
		b, _ := os.ReadFile(cfg.AdminTokenFile)
		secret := strings.TrimSpace(string(b))
		c, err := s.Authenticate(t.Context(), secret)
		if err != nil || !c.Scopes.Has(authpb.Scope_SCOPE_ADMIN) || c.Scopes != auth.AllUserScopes {
			t.Fatalf("Authenticate(bootstrap secret) = %+v, %v; want every user scope", c, err)
		}
		// A second start (the same database) keeps the token and the file.
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		b2, _ := os.ReadFile(cfg.AdminTokenFile)
		if string(b2) != string(b) {
			t.Errorf("restart rewrote the admin token")
		}
		var n int64
		s.deps.DB.Model(&tokenRow{}).Count(&n)
		if n != 1 {
			t.Errorf("tokens after a restart = %d; want 1", n)
		}
	})
}

func TestBootstrapFromSecretAndDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.BootstrapToken = strings.Repeat("k", 40)
	s := newService(t, cfg, dbtest.Config(t, db.SQLite), true)
	if _, err := s.Authenticate(t.Context(), cfg.BootstrapToken); err != nil {
		t.Errorf("Authenticate(--auth.bootstrap-token) = %v", err)
	}
	if _, err := os.Stat(cfg.AdminTokenFile); !os.IsNotExist(err) {
		t.Errorf("a chosen bootstrap token was written to a file (%v)", err)
	}
	off := testConfig(t)
	newService(t, off, dbtest.Config(t, db.SQLite), false)
	if _, err := os.Stat(off.AdminTokenFile); !os.IsNotExist(err) {
		t.Errorf("--auth.disabled still made an admin token (%v)", err)
	}
	cfg.BootstrapToken = "short"
	if _, err := New(cfg, Deps{Log: testlog.New(t), DB: dbtest.Open(t, dbtest.Config(t, db.SQLite))}); err == nil {
		t.Errorf("New(short bootstrap token) = nil error; want one")
	}
}

func TestTokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dbc db.Config) {
		s := newService(t, testConfig(t), dbc, true)
		h := &handler{svc: s}
		ctx := adminCtx(t.Context())
		for _, tt := range []struct {
			name string
			req  *authpb.CreateTokenRequest
		}{
			{"no name", &authpb.CreateTokenRequest{Scopes: []authpb.Scope{authpb.Scope_SCOPE_READ}}},
			{"control characters", &authpb.CreateTokenRequest{Name: "a\x00b", Scopes: []authpb.Scope{authpb.Scope_SCOPE_READ}}},
			{"long name", &authpb.CreateTokenRequest{Name: strings.Repeat("n", 65), Scopes: []authpb.Scope{authpb.Scope_SCOPE_READ}}},
			{"no scope", &authpb.CreateTokenRequest{Name: "x"}},
			{"internal scope", &authpb.CreateTokenRequest{Name: "x", Scopes: []authpb.Scope{authpb.Scope_SCOPE_INTERNAL}}},
			{"negative ttl", &authpb.CreateTokenRequest{Name: "x", Scopes: []authpb.Scope{authpb.Scope_SCOPE_READ}, Ttl: durationpb.New(-time.Hour)}},
		} {
			if _, err := h.CreateToken(ctx, tt.req); status.Code(err) != codes.InvalidArgument {
				t.Errorf("CreateToken(%s) = %v; want INVALID_ARGUMENT", tt.name, err)
			}
		}
		ci, err := h.CreateToken(ctx, &authpb.CreateTokenRequest{Name: "ci", Scopes: []authpb.Scope{authpb.Scope_SCOPE_READ, authpb.Scope_SCOPE_WRITE}})
		if err != nil || !strings.HasPrefix(ci.GetSecret(), "shoal_") || ci.GetToken().GetCreatedBy() != "admin (tok_admin)" {
			t.Fatalf("CreateToken(ci) = %v, %v", ci, err)
		}
		var row tokenRow
		s.deps.DB.Where("public_id = ?", ci.GetToken().GetId()).Take(&row)
		if strings.Contains(row.SecretHash, ci.GetSecret()) || row.SecretHash != hashSecret(ci.GetSecret()) {
			t.Errorf("stored %q; want only the hash of the secret", row.SecretHash)
		}
		short, err := h.CreateToken(ctx, &authpb.CreateTokenRequest{Name: "short", Scopes: []authpb.Scope{authpb.Scope_SCOPE_PREDICT}, Ttl: durationpb.New(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := s.Authenticate(t.Context(), ci.GetSecret()); err != nil || c.Name != "ci" || c.Scopes.String() != "read,write" {
			t.Errorf("Authenticate(ci) = %+v, %v", c, err)
		}
		// Expire the short token by moving its end into the past.
		s.deps.DB.Model(&tokenRow{}).Where("public_id = ?", short.GetToken().GetId()).Update("expires_at", time.Now().Add(-time.Second))
		if _, err := s.Authenticate(t.Context(), short.GetSecret()); err != auth.ErrUnknownToken {
			t.Errorf("Authenticate(expired) = %v; want ErrUnknownToken", err)
		}
		if _, err := h.RevokeToken(ctx, &authpb.RevokeTokenRequest{Id: ci.GetToken().GetId()}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(t.Context(), ci.GetSecret()); err != auth.ErrUnknownToken {
			t.Errorf("Authenticate(revoked) = %v; want ErrUnknownToken", err)
		}
		if _, err := h.RevokeToken(ctx, &authpb.RevokeTokenRequest{Id: "tok_nope"}); status.Code(err) != codes.NotFound {
			t.Errorf("RevokeToken(unknown) = %v; want NOT_FOUND", err)
		}
		live, _ := h.ListTokens(ctx, &authpb.ListTokensRequest{})
		all, _ := h.ListTokens(ctx, &authpb.ListTokensRequest{IncludeRevoked: true, PageSize: 2})
		if len(live.GetTokens()) != 1 || len(all.GetTokens()) != 2 || all.GetNextPageToken() == "" {
			t.Fatalf("ListTokens = %d live, %d on the first page of all (next %q); want 1 (the admin) and 2 with a next page",
				len(live.GetTokens()), len(all.GetTokens()), all.GetNextPageToken())
		}
		rest, err := h.ListTokens(ctx, &authpb.ListTokensRequest{IncludeRevoked: true, PageSize: 2, PageToken: all.GetNextPageToken()})
		if err != nil || len(rest.GetTokens()) != 1 || rest.GetTokens()[0].GetName() != "admin (bootstrap)" {
			t.Errorf("ListTokens page 2 = %v, %v; want the bootstrap admin", rest, err)
		}
		if _, err := h.ListTokens(ctx, &authpb.ListTokensRequest{PageToken: "garbage"}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListTokens(garbage page token) = %v; want INVALID_ARGUMENT", err)
		}
	})
}

func TestAuditTrail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dbc db.Config) {
		s := newService(t, testConfig(t), dbc, true)
		h := &handler{svc: s}
		for i, m := range []string{"/a.A/SetAlias", "/a.A/Delete_Thing", "/a.A/SetAlias"} {
			s.Record(&authpb.AuditEvent{TokenName: "ci", Method: m, Code: "OK", RequestId: "r" + string(rune('0'+i))})
		}
		resp, err := h.ListAuditEvents(adminCtx(t.Context()), &authpb.ListAuditEventsRequest{Method: "SetAlias", PageSize: 1})
		if err != nil || len(resp.GetEvents()) != 1 || resp.GetEvents()[0].GetRequestId() != "r2" {
			t.Fatalf("ListAuditEvents(SetAlias, 1) = %v, %v; want the newest, r2", resp, err)
		}
		next, err := h.ListAuditEvents(adminCtx(t.Context()), &authpb.ListAuditEventsRequest{Method: "SetAlias", PageToken: resp.GetNextPageToken()})
		if err != nil || len(next.GetEvents()) != 1 || next.GetEvents()[0].GetRequestId() != "r0" {
			t.Errorf("page 2 = %v, %v; want r0", next, err)
		}
		// LIKE's wildcards in the filter match themselves only.
		if resp, _ := h.ListAuditEvents(adminCtx(t.Context()), &authpb.ListAuditEventsRequest{Method: "e_T"}); len(resp.GetEvents()) != 1 {
			t.Errorf("ListAuditEvents(method e_T) = %d events; want 1 (Delete_Thing)", len(resp.GetEvents()))
		}
		// Events older than the retention go at the next prune.
		old := &authpb.AuditEvent{Time: timestamppb.New(time.Now().Add(-s.cfg.AuditRetention - time.Hour)), Method: "/old"}
		if _, err := h.RecordAuditEvents(t.Context(), &authpb.RecordAuditEventsRequest{Events: []*authpb.AuditEvent{old}}); err != nil {
			t.Fatal(err)
		}
		s.pruneAudit(t.Context())
		if resp, _ := h.ListAuditEvents(adminCtx(t.Context()), &authpb.ListAuditEventsRequest{Method: "/old"}); len(resp.GetEvents()) != 0 {
			t.Errorf("an event past the retention survived the prune")
		}
	})
}
