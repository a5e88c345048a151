package trainer

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/shoalml/shoal/internal/ml"
)

// Config configures the trainer service. Its settings are flags named trainer.*.
type Config struct {
	// Workers is how many jobs this process trains at once.
	Workers int
	// WorkDir holds the per-job epoch checkpoints training writes; each is
	// also stored in the blob store, from which a job interrupted by a
	// crash or shutdown resumes, in any trainer process.
	WorkDir string
	// Backend is the default compute backend ("onnx" or "go"); empty picks
	// ONNX Runtime when its library is installed (it trains ~1.6x faster),
	// else the pure-Go backend.
	Backend string
	// PollInterval is how often idle workers look for jobs queued by other
	// processes, and watchers for events written by them. Work of this
	// process is seen at once.
	PollInterval time.Duration
	// JobLease is how long a running job may go without its worker's
	// heartbeat before another worker takes it over and resumes it from its
	// last checkpoint (a crashed process). A cleanly stopped process hands
	// its jobs back at once.
	JobLease time.Duration
	// StorageWait is how long a job that finished training retries
	// storing its result (weights, version, promotion) while the Registry
	// or storage is unavailable, before it fails.
	StorageWait time.Duration
}

// RegisterFlags registers the trainer.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Workers, "trainer.workers", 1, "training jobs run at once by this process")
	fs.StringVar(&c.WorkDir, "trainer.work-dir", "./data/trainer", "directory for the per-epoch checkpoints of running jobs (a working copy: each is also stored in the blob store, from which any trainer resumes the job)")
	fs.StringVar(&c.Backend, "trainer.backend", "", `default compute backend: "onnx" (ONNX Runtime) or "go" (pure Go); empty picks onnx when ONNX Runtime is installed`)
	fs.DurationVar(&c.PollInterval, "trainer.poll-interval", time.Second,
		"how often idle workers and WatchJob streams look for jobs and events of other trainer processes sharing the database")
	fs.DurationVar(&c.JobLease, "trainer.job-lease", 30*time.Second,
		"how long a running job may miss its worker's heartbeat before another worker resumes it from its last checkpoint")
	fs.DurationVar(&c.StorageWait, "trainer.storage-wait", 5*time.Minute,
		"how long a job that finished training retries storing its weights and registering and promoting its model while storage or the Registry is unavailable, before it fails (0: no retries)")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("--trainer.workers=%d: must be at least 1", c.Workers))
	}
	if c.WorkDir == "" {
		errs = append(errs, errors.New("--trainer.work-dir: must not be empty"))
	}
	switch c.Backend {
	case "", ml.BackendGo, ml.BackendONNX:
	default:
		errs = append(errs, fmt.Errorf("--trainer.backend=%q: want %q or %q", c.Backend, ml.BackendGo, ml.BackendONNX))
	}
	if c.PollInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--trainer.poll-interval=%s: must be at least 10ms", c.PollInterval))
	}
	if c.JobLease < 3*heartbeatEvery {
		errs = append(errs, fmt.Errorf("--trainer.job-lease=%s: must be at least %s", c.JobLease, 3*heartbeatEvery))
	}
	if c.StorageWait < 0 {
		errs = append(errs, fmt.Errorf("--trainer.storage-wait=%s: must not be negative", c.StorageWait))
	}
	return errors.Join(errs...)
}
