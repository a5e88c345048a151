package auth

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config is the gate's configuration: flags named auth.*.
type Config struct {
	// Disabled turns authentication off (development only; logged at every
	// start).
	Disabled bool
	// AnonymousScopes are what calls without a token may do ("predict" by
	// default, as the original public upload page; empty closes it).
	AnonymousScopes string
	// ServiceToken is the credential Shoal's processes present to each other
	// in a split deployment (from a secret). One process makes its own.
	ServiceToken string
	// RateLimits are per scope: "predict=100,write=5:10".
	RateLimits string
	// CacheTTL is how long a checked token is trusted without asking again;
	// a revocation reaches other processes within it.
	CacheTTL time.Duration
	// MetricsScope is the scope /metrics needs; empty leaves it open.
	MetricsScope string

	anonymous Scopes
	limits    Limits
}

// RegisterFlags registers the auth.* flags of the gate with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Disabled, "auth.disabled", false, "turn authentication off: every caller may do everything (development only)")
	fs.StringVar(&c.AnonymousScopes, "auth.anonymous-scopes", "predict",
		"scopes of calls without a token: predict (inference and the served models' names and labels) by default; empty closes everything")
	fs.StringVar(&c.ServiceToken, "auth.service-token", "",
		"credential the processes of a split deployment present to each other (from a secret, at least 32 characters); one process makes its own")
	fs.StringVar(&c.RateLimits, "auth.rate-limits", "",
		"token buckets per scope, per token (anonymous calls: per client address), e.g. predict=100,write=5:10 (calls a second[:burst]); empty: no limits")
	fs.DurationVar(&c.CacheTTL, "auth.cache-ttl", 5*time.Second, "how long a checked token is trusted before it is checked again; revocations take up to this long")
	fs.StringVar(&c.MetricsScope, "auth.metrics-scope", "",
		"scope a token needs to read /metrics (e.g. read); empty leaves /metrics open, as Prometheus scrapers usually expect")
}

// Validate parses the settings.
func (c *Config) Validate() error {
	var errs []error
	var err error
	if c.anonymous, err = ParseScopes(c.AnonymousScopes); err != nil {
		errs = append(errs, fmt.Errorf("--auth.anonymous-scopes: %w", err))
	}
	if c.limits, err = ParseLimits(c.RateLimits); err != nil {
		errs = append(errs, fmt.Errorf("--auth.rate-limits: %w", err))
	}
	if c.MetricsScope != "" {
		if _, err := ParseScope(c.MetricsScope); err != nil {
			errs = append(errs, fmt.Errorf("--auth.metrics-scope: %w", err))
		}
	}
	if c.ServiceToken != "" && len(c.ServiceToken) < 32 {
		errs = append(errs, errors.New("--auth.service-token: at least 32 characters"))
	}
	if c.CacheTTL < 0 || c.CacheTTL > time.Hour {
		errs = append(errs, fmt.Errorf("--auth.cache-ttl=%s: between 0 and 1h", c.CacheTTL))
	}
	return errors.Join(errs...)
}

// Anonymous returns the parsed anonymous scopes (after Validate).
func (c *Config) Anonymous() Scopes { return c.anonymous }

// Limits returns the parsed rate limits (after Validate).
func (c *Config) Limits() Limits { return c.limits }
