package auth

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config configures the auth service. Its settings are flags named auth.*;
// the gate's own settings (anonymous scopes, limits) are in internal/auth.
type Config struct {
	// BootstrapToken, when set, is the admin token a new install starts
	// with (from a secret, in the scaled mode). Empty: a random one is made
	// and written to AdminTokenFile.
	BootstrapToken string
	// AdminTokenFile is where a generated bootstrap token is written (mode
	// 0600), for the CLI on the same machine.
	AdminTokenFile string
	// AuditRetention is how long audit events are kept.
	AuditRetention time.Duration
}

// minSecretLen bounds a chosen bootstrap token from below: it must be as
// hard to guess as a generated one.
const minSecretLen = 32

// RegisterFlags registers the auth service's flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.BootstrapToken, "auth.bootstrap-token", "",
		"admin token to create when the database holds none (from a secret; at least 32 characters); empty: generate one and write it to --auth.admin-token-file")
	fs.StringVar(&c.AdminTokenFile, "auth.admin-token-file", "./data/admin-token",
		"where a generated admin token is written (mode 0600) when the database holds none")
	fs.DurationVar(&c.AuditRetention, "auth.audit-retention", 90*24*time.Hour, "how long the audit trail keeps events")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.BootstrapToken != "" && len(c.BootstrapToken) < minSecretLen {
		errs = append(errs, fmt.Errorf("--auth.bootstrap-token: at least %d characters, as hard to guess as a generated token", minSecretLen))
	}
	if c.BootstrapToken == "" && c.AdminTokenFile == "" {
		errs = append(errs, errors.New("--auth.admin-token-file is empty and --auth.bootstrap-token unset: a new install would have no way to log in"))
	}
	if c.AuditRetention < time.Hour {
		errs = append(errs, fmt.Errorf("--auth.audit-retention=%s: must be at least 1h", c.AuditRetention))
	}
	return errors.Join(errs...)
}
