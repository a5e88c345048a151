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
	// and replicas' serving reports made through other processes sharing
	// the database. Changes made in this process reach watchers at once.
	WatchPollInterval time.Duration
	// UploadDir holds uploads while they are checked; empty is the
	// system's temporary directory.
	UploadDir string
	// AliasEventRetention is how long alias changes stay in the event log
	// WatchAliases replays from. Watchers start from a snapshot of the
	// aliases, so only a watcher that many changes behind needs older ones.
	AliasEventRetention time.Duration
	// InspectTimeout and InspectMemoryBytes bound the child process in
	// which ONNX Runtime reads an uploaded model (onnxrt.InspectIsolated).
	InspectTimeout     time.Duration
	InspectMemoryBytes uint64
}

// RegisterFlags registers the registry.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxArtifactBytes, "registry.max-artifact-bytes", 1<<30, "largest ONNX artifact accepted by CreateVersion, in bytes")
	fs.DurationVar(&c.WatchPollInterval, "registry.watch-poll-interval", 500*time.Millisecond,
		"how often WatchAliases and WatchRollout look for alias changes and inference replicas' reports made through other registry processes sharing the database")
	fs.DurationVar(&c.AliasEventRetention, "registry.alias-event-retention", 7*24*time.Hour,
		"how long alias changes are kept in the event log that WatchAliases streams follow")
	fs.DurationVar(&c.InspectTimeout, "registry.inspect-timeout", 2*time.Minute,
		"how long ONNX Runtime may take to read an uploaded model, in a child process, before the model is refused")
	fs.Uint64Var(&c.InspectMemoryBytes, "registry.inspect-memory-bytes", 4<<30,
		"memory (data segment) the child process reading an uploaded model may use before the model is refused; 0 for no bound")
	fs.StringVar(&c.UploadDir, "registry.upload-dir", "", "directory for uploads being checked; empty for the system's temporary directory")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.InspectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--registry.inspect-timeout=%s: must be positive", c.InspectTimeout))
	}
	if c.InspectMemoryBytes != 0 && c.InspectMemoryBytes < 256<<20 {
		errs = append(errs, fmt.Errorf("--registry.inspect-memory-bytes=%d: at least 268435456 (256 MiB: ONNX Runtime alone needs about 128 MiB), or 0 for no bound", c.InspectMemoryBytes))
	}
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
