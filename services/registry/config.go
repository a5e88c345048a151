package registry

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

// Config configures the registry service. Its settings are flags named registry.*.
type Config struct {
	// MaxArtifactBytes bounds an uploaded ONNX file.
	MaxArtifactBytes int64
	// WatchPollInterval is how often the service looks for alias changes
	// made by other processes sharing the database. Changes made in this
	// process reach watchers at once.
	WatchPollInterval time.Duration
	// UploadDir holds uploads while they are checked; empty is the
	// system's temporary directory.
	UploadDir string
	// AliasEventRetention is how long alias changes stay in the event log
	// WatchAliases replays from. Watchers start from a snapshot of the
	// aliases, so only a watcher that many changes behind needs older ones.
	AliasEventRetention time.Duration
}

// RegisterFlags registers the registry.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxArtifactBytes, "registry.max-artifact-bytes", 1<<30, "largest ONNX artifact accepted by CreateVersion, in bytes")
	fs.DurationVar(&c.WatchPollInterval, "registry.watch-poll-interval", 500*time.Millisecond,
		"how often WatchAliases looks for alias changes made by other registry processes sharing the database")
	fs.DurationVar(&c.AliasEventRetention, "registry.alias-event-retention", 7*24*time.Hour,
		"how long alias changes are kept in the event log that WatchAliases streams follow")
	fs.StringVar(&c.UploadDir, "registry.upload-dir", "", "directory for uploads being checked; empty for the system's temporary directory")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxArtifactBytes <= 0 {
		errs = append(errs, fmt.Errorf("--registry.max-artifact-bytes=%d: must be positive", c.MaxArtifactBytes))
	}
	if c.WatchPollInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--registry.watch-poll-interval=%s: must be at least 10ms", c.WatchPollInterval))
	}
	if c.AliasEventRetention < time.Minute {
		errs = append(errs, fmt.Errorf("--registry.alias-event-retention=%s: must be at least 1m", c.AliasEventRetention))
	}
	if c.UploadDir != "" {
		if fi, err := os.Stat(c.UploadDir); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("--registry.upload-dir=%q: not an existing directory", c.UploadDir))
		}
	}
	return errors.Join(errs...)
}
