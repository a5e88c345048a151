package auth

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/storage/db"
)

type handler struct {
	authpb.UnimplementedAuthServiceServer
	svc *Service
}

var _ authpb.AuthServiceServer = (*handler)(nil)

// maxTTL bounds a token's lifetime when one is given.
const maxTTL = 10 * 365 * 24 * time.Hour

func (h *handler) CreateToken(ctx context.Context, req *authpb.CreateTokenRequest) (*authpb.CreateTokenResponse, error) {
	name := strings.TrimSpace(req.GetName())
	if n := utf8.RuneCountInString(name); n == 0 || n > 64 || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return nil, status.Error(codes.InvalidArgument, "name: 1 to 64 printable characters, saying what the token is for")
	}
	var scopes auth.Scopes
	for _, sc := range req.GetScopes() {
		if !auth.AllUserScopes.Has(sc) {
			return nil, status.Errorf(codes.InvalidArgument, "scopes: %s cannot be given to a token; use predict, read, write or admin", sc)
		}
		scopes |= auth.ScopesOf(sc)
	}
	if scopes == 0 {
		return nil, status.Error(codes.InvalidArgument, "scopes: at least one of predict, read, write, admin")
	}
	var expires *time.Time
	if req.GetTtl() != nil {
		ttl := req.GetTtl().AsDuration()
		switch {
		case !req.GetTtl().IsValid() || ttl < 0:
			return nil, status.Error(codes.InvalidArgument, "ttl: must be a positive duration, or unset for a token that does not expire")
		case ttl > maxTTL:
			return nil, status.Error(codes.InvalidArgument, "ttl: at most 10 years; leave it unset for a token that does not expire")
		case ttl > 0:
			t := time.Now().Add(ttl).UTC()
			expires = &t
		}
	}
	creator := "unknown"
	if c, ok := auth.CallerFrom(ctx); ok {
		creator = c.Name
		if c.TokenID != "" {
			creator += " (" + c.TokenID + ")"
		}
	}
	secret := newSecret()
	row, err := h.svc.insertToken(ctx, name, scopes, creator, secret, expires)
	if err != nil {
		return nil, wrap("create token", err)
	}
	return &authpb.CreateTokenResponse{Token: tokenProto(row), Secret: secret}, nil
}

func (h *handler) ListTokens(ctx context.Context, req *authpb.ListTokensRequest) (*authpb.ListTokensResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	q := h.svc.deps.DB.WithContext(ctx).Order("id DESC").Limit(size + 1)
	if req.GetPageToken() != "" {
		after, err := decodePageToken("t", req.GetPageToken())
		if err != nil {
			return nil, err
		}
		q = q.Where("id < ?", after)
	}
	if !req.GetIncludeRevoked() {
		q = q.Where("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", time.Now())
	}
	var rows []tokenRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, wrap("list tokens", err)
	}
	resp := &authpb.ListTokensResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodePageToken("t", rows[size-1].ID)
	}
	for _, r := range rows {
		resp.Tokens = append(resp.Tokens, tokenProto(r))
	}
	return resp, nil
}

func (h *handler) RevokeToken(ctx context.Context, req *authpb.RevokeTokenRequest) (*authpb.RevokeTokenResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id: the token's id (tok_...) is required")
	}
	tx := h.svc.deps.DB.WithContext(ctx)
	now := time.Now().UTC()
	if err := tx.Model(&tokenRow{}).Where("public_id = ? AND revoked_at IS NULL", req.GetId()).Update("revoked_at", now).Error; err != nil {
		return nil, wrap("revoke token", err)
	}
	var row tokenRow
	if err := tx.Where("public_id = ?", req.GetId()).Take(&row).Error; err != nil {
		if db.IsNotFound(err) {
			return nil, notFound(req.GetId())
		}
		return nil, wrap("read token", err)
	}
	if h.svc.onRevoke != nil {
		h.svc.onRevoke()
	}
	return &authpb.RevokeTokenResponse{Token: tokenProto(row)}, nil
}

func (h *handler) GetCaller(ctx context.Context, _ *authpb.GetCallerRequest) (*authpb.GetCallerResponse, error) {
	c, ok := auth.CallerFrom(ctx)
	if !ok {
		c = auth.Caller{Name: "anonymous", Anonymous: true}
	}
	return &authpb.GetCallerResponse{Caller: c.Proto(), AuthEnabled: h.svc.deps.Enabled}, nil
}

func (h *handler) ListAuditEvents(ctx context.Context, req *authpb.ListAuditEventsRequest) (*authpb.ListAuditEventsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	q := h.svc.deps.DB.WithContext(ctx).Order("id DESC").Limit(size + 1)
	if req.GetPageToken() != "" {
		after, err := decodePageToken("a", req.GetPageToken())
		if err != nil {
			return nil, err
		}
		q = q.Where("id < ?", after)
	}
	if req.GetTokenId() != "" {
		q = q.Where("token_id = ?", req.GetTokenId())
	}
	if req.GetMethod() != "" {
		q = q.Where("method LIKE ? ESCAPE '!'", "%"+escapeLike(req.GetMethod())+"%")
	}
	var rows []auditRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, wrap("list audit events", err)
	}
	resp := &authpb.ListAuditEventsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodePageToken("a", rows[size-1].ID)
	}
	for _, r := range rows {
		resp.Events = append(resp.Events, auditProto(r))
	}
	return resp, nil
}

func (h *handler) Authenticate(ctx context.Context, req *authpb.AuthenticateRequest) (*authpb.AuthenticateResponse, error) {
	c, err := h.svc.Authenticate(ctx, req.GetSecret())
	switch {
	case errors.Is(err, auth.ErrUnknownToken):
		return nil, status.Error(codes.Unauthenticated, "the token is not valid: unknown, revoked or expired")
	case err != nil:
		return nil, err
	}
	return &authpb.AuthenticateResponse{Caller: c.Proto()}, nil
}

func (h *handler) RecordAuditEvents(ctx context.Context, req *authpb.RecordAuditEventsRequest) (*authpb.RecordAuditEventsResponse, error) {
	if len(req.GetEvents()) == 0 {
		return &authpb.RecordAuditEventsResponse{}, nil
	}
	for _, ev := range req.GetEvents() {
		if ev.GetTime() == nil {
			return nil, status.Error(codes.InvalidArgument, "events: each needs its time")
		}
	}
	if err := h.svc.insertAudit(ctx, req.GetEvents()); err != nil {
		return nil, wrap("record audit events", err)
	}
	return &authpb.RecordAuditEventsResponse{}, nil
}

// escapeLike makes s match itself in a LIKE pattern whose escape character
// is '!' (a backslash means different things to each SQL dialect).
func escapeLike(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}
