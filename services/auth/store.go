package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/storage/db"
)

// The runtime rows are the migrations' types until a migration changes a
// table.
type (
	tokenRow = v1Token
	auditRow = v1AuditEvent
)

func (s *Service) insertToken(ctx context.Context, name string, scopes auth.Scopes, createdBy, secret string, expires *time.Time) (tokenRow, error) {
	row := tokenRow{
		PublicID: newPublicID(), Name: name, Scopes: scopes.String(), SecretHash: hashSecret(secret),
		CreatedBy: createdBy, CreatedAt: time.Now().UTC(), ExpiresAt: expires,
	}
	err := s.deps.DB.WithContext(ctx).Create(&row).Error
	if db.IsUniqueViolation(err) {
		return row, status.Error(codes.AlreadyExists, "a token with this secret exists already")
	}
	return row, err
}

func tokenProto(r tokenRow) *authpb.Token {
	scopes, _ := auth.ParseScopes(r.Scopes)
	t := &authpb.Token{Id: r.PublicID, Name: r.Name, Scopes: scopes.List(), CreatedBy: r.CreatedBy, CreateTime: timestamppb.New(r.CreatedAt)}
	if r.LastUsedAt != nil {
		t.LastUsedTime = timestamppb.New(*r.LastUsedAt)
	}
	if r.ExpiresAt != nil {
		t.ExpireTime = timestamppb.New(*r.ExpiresAt)
	}
	if r.RevokedAt != nil {
		t.RevokeTime = timestamppb.New(*r.RevokedAt)
	}
	return t
}

func (s *Service) insertAudit(ctx context.Context, evs []*authpb.AuditEvent) error {
	rows := make([]auditRow, len(evs))
	for i, ev := range evs {
		rows[i] = auditRow{
			Time: ev.GetTime().AsTime().UTC(), TokenID: ev.GetTokenId(), TokenName: clip(ev.GetTokenName(), 255),
			Method: clip(ev.GetMethod(), 255), Resource: clip(ev.GetResource(), 1024), Code: clip(ev.GetCode(), 32),
			RequestID: clip(ev.GetRequestId(), 128),
		}
	}
	return s.deps.DB.WithContext(ctx).Create(&rows).Error
}

func auditProto(r auditRow) *authpb.AuditEvent {
	return &authpb.AuditEvent{
		Id: r.ID, Time: timestamppb.New(r.Time), TokenId: r.TokenID, TokenName: r.TokenName,
		Method: r.Method, Resource: r.Resource, Code: r.Code, RequestId: r.RequestID,
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// pageSize applies the default and the bound of list RPCs.
func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, status.Errorf(codes.InvalidArgument, "pageSize %d: must not be negative", n)
	case n == 0:
		return 100, nil
	}
	return min(int(n), 1000), nil
}

// Page tokens carry the last row id of the previous page (lists go newest
// first, so the next page holds smaller ids).
func encodePageToken(kind string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(id, 10)))
}

func decodePageToken(kind, token string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	k, v, ok := strings.Cut(string(b), ":")
	id, perr := strconv.ParseInt(v, 10, 64)
	if err != nil || !ok || k != kind || perr != nil {
		return 0, status.Error(codes.InvalidArgument, "pageToken is not one this list returned")
	}
	return id, nil
}

func notFound(id string) error {
	return status.Errorf(codes.NotFound, "token %q not found", id)
}

func wrap(what string, err error) error {
	return fmt.Errorf("auth: %s: %w", what, err)
}
