package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
)

// Cache trusts a checked secret for a while, so the hot path (predictions)
// does not ask the database, or another process, on every call.
type Cache struct {
	next Authenticator
	ttl  time.Duration

	mu      sync.Mutex
	entries map[[32]byte]cacheEntry
}

type cacheEntry struct {
	caller Caller
	err    error
	until  time.Time
}

// cacheMax bounds the cache; when full it is cleared (a miss costs one check).
const cacheMax = 10000

// NewCache wraps next; ttl 0 disables caching.
func NewCache(next Authenticator, ttl time.Duration) *Cache {
	return &Cache{next: next, ttl: ttl, entries: map[[32]byte]cacheEntry{}}
}

// Authenticate answers from the cache or asks next. Unknown tokens are
// cached too, so guessing costs the store nothing; storage failures are not.
func (c *Cache) Authenticate(ctx context.Context, secret string) (Caller, error) {
	if c.ttl <= 0 {
		return c.next.Authenticate(ctx, secret)
	}
	key := sha256.Sum256([]byte(secret))
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.caller, e.err
	}
	caller, err := c.next.Authenticate(ctx, secret)
	if err == nil || errors.Is(err, ErrUnknownToken) {
		c.mu.Lock()
		if len(c.entries) >= cacheMax {
			clear(c.entries)
		}
		c.entries[key] = cacheEntry{caller: caller, err: err, until: now.Add(c.ttl)}
		c.mu.Unlock()
	}
	return caller, err
}

// Clear forgets every checked secret (after a revocation in this process).
func (c *Cache) Clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

// Remote checks tokens with the Auth service of another process.
type Remote struct {
	Client authpb.AuthServiceClient
}

// Authenticate asks the Auth service.
func (r Remote) Authenticate(ctx context.Context, secret string) (Caller, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := r.Client.Authenticate(ctx, &authpb.AuthenticateRequest{Secret: secret})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unauthenticated:
		return Caller{}, ErrUnknownToken
	default:
		return Caller{}, err
	}
	pc := resp.GetCaller()
	return Caller{TokenID: pc.GetTokenId(), Name: pc.GetName(), Scopes: ScopesOf(pc.GetScopes()...)}, nil
}

// RemoteAudit sends audit events to the Auth service of another process,
// in batches; Record never blocks.
type RemoteAudit struct {
	client authpb.AuthServiceClient
	log    *slog.Logger
	events chan *authpb.AuditEvent
}

// NewRemoteAudit returns a sink that its Run sends.
func NewRemoteAudit(client authpb.AuthServiceClient, log *slog.Logger) *RemoteAudit {
	return &RemoteAudit{client: client, log: log, events: make(chan *authpb.AuditEvent, 4096)}
}

// Record queues ev.
func (r *RemoteAudit) Record(ev *authpb.AuditEvent) {
	if ev.GetTime() == nil {
		ev.Time = timestampNow()
	}
	select {
	case r.events <- ev:
	default:
		r.log.Warn("audit queue full: event kept in the log only", "method", ev.GetMethod(), "request_id", ev.GetRequestId())
	}
}

// Run sends queued events until ctx ends, then sends what is left.
func (r *RemoteAudit) Run(ctx context.Context) error {
	for {
		select {
		case ev := <-r.events:
			r.send(ctx, ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-r.events:
					r.send(context.WithoutCancel(ctx), ev)
				default:
					return nil
				}
			}
		}
	}
}

func (r *RemoteAudit) send(ctx context.Context, first *authpb.AuditEvent) {
	batch := []*authpb.AuditEvent{first}
	for len(batch) < 256 {
		select {
		case ev := <-r.events:
			batch = append(batch, ev)
			continue
		default:
		}
		break
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.client.RecordAuditEvents(ctx, &authpb.RecordAuditEventsRequest{Events: batch}); err != nil {
		r.log.Warn("sending audit events failed: they are in the log only", "events", len(batch), "err", err)
	}
}
