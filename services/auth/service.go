// Package auth is the Auth service: it owns API tokens (stored only as
// hashes) and the audit trail of state-changing calls. The gate that checks
// every call lives in internal/auth; this service is what it asks.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gorm.io/gorm"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/db"
)

// Deps are what the service is built from; the caller owns them.
type Deps struct {
	Log *slog.Logger
	DB  *gorm.DB
	// Panics recovers panics in the audit prune (nil: recovered and
	// logged, not counted).
	Panics *panics.Guard
	// Enabled is false when the process runs with --auth.disabled: GetCaller
	// says so, and no admin token is bootstrapped.
	Enabled bool
}

// Service is the Auth service.
type Service struct {
	cfg  Config
	deps Deps

	mu       sync.Mutex
	lastUsed map[int64]time.Time // when each token's last_used_at was last written
	onRevoke func()
}

// New returns the service; it does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Log == nil || deps.DB == nil {
		return nil, errors.New("auth: Log and DB are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, deps: deps, lastUsed: map[int64]time.Time{}}, nil
}

// OnRevoke sets what runs after a token is revoked: dropping the checks
// this process has cached. Call it before serving.
func (s *Service) OnRevoke(fn func()) { s.onRevoke = fn }

// Register adds the service's RPCs to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	authpb.RegisterAuthServiceServer(r, &handler{svc: s})
}

// Start brings the tables up to date and makes sure an admin token exists:
// on a new (or upgraded) install it creates one, from --auth.bootstrap-token
// or at random, written to --auth.admin-token-file.
func (s *Service) Start(ctx context.Context) error {
	if err := db.Migrate(ctx, s.deps.DB, schemaComponent, migrations); err != nil {
		return err
	}
	if !s.deps.Enabled {
		return nil
	}
	return s.bootstrap(ctx)
}

func (s *Service) bootstrap(ctx context.Context) error {
	var live []tokenRow
	err := s.deps.DB.WithContext(ctx).Where("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", time.Now()).Find(&live).Error
	if err != nil {
		return fmt.Errorf("auth: look for an admin token: %w", err)
	}
	for _, t := range live {
		if sc, err := auth.ParseScopes(t.Scopes); err == nil && sc.Has(authpb.Scope_SCOPE_ADMIN) {
			return nil
		}
	}
	secret, generated := s.cfg.BootstrapToken, false
	if secret == "" {
		secret, generated = newSecret(), true
	}
	row, err := s.insertToken(ctx, "admin (bootstrap)", auth.AllUserScopes, "shoal serve", secret, nil)
	if err != nil {
		return fmt.Errorf("auth: create the bootstrap admin token: %w", err)
	}
	if !generated {
		s.deps.Log.Info("created the admin token given by --auth.bootstrap-token", "token_id", row.PublicID)
		return nil
	}
	if err := writeSecretFile(s.cfg.AdminTokenFile, secret); err != nil {
		return fmt.Errorf("auth: write the admin token: %w", err)
	}
	s.deps.Log.Info("created an admin token; the CLI on this machine uses it", "token_id", row.PublicID, "file", s.cfg.AdminTokenFile)
	return nil
}

// writeSecretFile writes a secret readable by its owner only, replacing the
// file atomically.
func writeSecretFile(path, secret string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".admin-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Run prunes the audit trail of events older than the retention, hourly,
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		_ = s.deps.Panics.Call("audit prune", func() error { s.pruneAudit(ctx); return nil })
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Record stores an audit event before the call it describes answers, so a
// client that sees its change done finds it in the trail. A failure to
// store is logged (the event is in the log already) and does not fail the
// call.
func (s *Service) Record(ev *authpb.AuditEvent) {
	if ev.GetTime() == nil {
		ev.Time = timestamppb.Now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.insertAudit(ctx, []*authpb.AuditEvent{ev}); err != nil {
		s.deps.Log.Warn("storing an audit event failed: it is in the log only", "method", ev.GetMethod(), "request_id", ev.GetRequestId(), "err", err)
	}
}

func (s *Service) pruneAudit(ctx context.Context) {
	res := s.deps.DB.WithContext(ctx).Where("time < ?", time.Now().Add(-s.cfg.AuditRetention)).Delete(&auditRow{})
	if res.Error != nil && ctx.Err() == nil {
		s.deps.Log.Warn("pruning the audit trail failed; retrying in an hour", "err", res.Error)
	} else if res.RowsAffected > 0 {
		s.deps.Log.Info("pruned the audit trail", "events", res.RowsAffected)
	}
}

// Authenticate returns the caller a secret stands for, or
// auth.ErrUnknownToken. It records when the token was last used, at most
// once a minute per token.
func (s *Service) Authenticate(ctx context.Context, secret string) (auth.Caller, error) {
	var row tokenRow
	err := s.deps.DB.WithContext(ctx).Where("secret_hash = ?", hashSecret(secret)).Take(&row).Error
	switch {
	case db.IsNotFound(err):
		return auth.Caller{}, auth.ErrUnknownToken
	case err != nil:
		return auth.Caller{}, fmt.Errorf("auth: look up token: %w", err)
	}
	now := time.Now()
	if row.RevokedAt != nil || (row.ExpiresAt != nil && !row.ExpiresAt.After(now)) {
		return auth.Caller{}, auth.ErrUnknownToken
	}
	scopes, err := auth.ParseScopes(row.Scopes)
	if err != nil {
		return auth.Caller{}, fmt.Errorf("auth: token %s: stored scopes: %w", row.PublicID, err)
	}
	s.touch(ctx, row.ID, now)
	return auth.Caller{TokenID: row.PublicID, Name: row.Name, Scopes: scopes}, nil
}

func (s *Service) touch(ctx context.Context, id int64, now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.lastUsed[id]) >= time.Minute
	if due {
		s.lastUsed[id] = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if err := s.deps.DB.WithContext(ctx).Model(&tokenRow{}).Where("id = ?", id).Update("last_used_at", now).Error; err != nil {
		s.deps.Log.Warn("recording a token's last use failed", "err", err)
	}
}

// secretPrefix marks Shoal's tokens, so a leaked one is easy to recognise
// (and for secret scanners to find).
const secretPrefix = "shoal_"

// newSecret returns a random token secret: 256 bits.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// newPublicID returns a token's public id.
func newPublicID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "tok_" + hex.EncodeToString(b[:])
}

// hashSecret is what the database keeps of a secret. A secret has 256 bits
// of entropy, so one round of SHA-256 is as strong as a slow hash here.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
