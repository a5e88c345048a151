package auth

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
)

// Limit is a token bucket: Rate calls a second on average, Burst at once.
type Limit struct {
	Rate  float64
	Burst int
}

// Limits are the rate limits per scope; a scope without one is unlimited.
// Each token has its own buckets, and anonymous calls one per client
// address. Buckets live in one process: replicas multiply the limit.
type Limits map[authpb.Scope]Limit

// ParseLimits reads "predict=100,write=5:10": per scope, calls a second
// and, after a colon, the burst (default: the rate, at least 1).
func ParseLimits(s string) (Limits, error) {
	out := Limits{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("rate limit %q: want scope=calls-per-second[:burst]", part)
		}
		scope, err := ParseScope(strings.TrimSpace(name))
		if err != nil {
			return nil, fmt.Errorf("rate limit %q: %w", part, err)
		}
		r, b, hasBurst := strings.Cut(val, ":")
		l := Limit{}
		if l.Rate, err = strconv.ParseFloat(strings.TrimSpace(r), 64); err != nil || l.Rate <= 0 {
			return nil, fmt.Errorf("rate limit %q: calls per second must be a number above 0", part)
		}
		l.Burst = max(1, int(l.Rate))
		if hasBurst {
			if l.Burst, err = strconv.Atoi(strings.TrimSpace(b)); err != nil || l.Burst < 1 {
				return nil, fmt.Errorf("rate limit %q: the burst must be a whole number above 0", part)
			}
		}
		out[scope] = l
	}
	return out, nil
}

// String is the flag form of the limits.
func (l Limits) String() string {
	var parts []string
	for _, sc := range UserScopes {
		if x, ok := l[sc]; ok {
			parts = append(parts, fmt.Sprintf("%s=%s:%d", ScopeName(sc), strconv.FormatFloat(x.Rate, 'f', -1, 64), x.Burst))
		}
	}
	return strings.Join(parts, ",")
}

// Limiter holds the buckets.
type Limiter struct {
	limits Limits

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	calls   int
}

type bucketKey struct {
	subject string
	scope   authpb.Scope
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

// idleBucket is how long an unused bucket is kept; a new one starts full,
// which is what an idle caller's bucket would be by then anyway.
const idleBucket = 10 * time.Minute

// NewLimiter returns a limiter enforcing limits.
func NewLimiter(limits Limits) *Limiter {
	return &Limiter{limits: limits, buckets: map[bucketKey]*bucket{}}
}

// Wait takes one call from the caller's bucket for scope: 0 when the call
// may go now, else how long until it could. Shoal's services are never
// limited.
func (l *Limiter) Wait(c Caller, scope authpb.Scope) time.Duration {
	lim, ok := l.limits[scope]
	if !ok || c.Service {
		return 0
	}
	key := bucketKey{subject: "token:" + c.TokenID, scope: scope}
	if c.Anonymous {
		key.subject = "addr:" + c.Addr
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%1024 == 0 {
		for k, b := range l.buckets {
			if now.Sub(b.used) > idleBucket {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst)}
		l.buckets[key] = b
	}
	b.used = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}
