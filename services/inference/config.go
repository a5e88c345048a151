package inference

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"
	"unicode"

	"github.com/shoalml/shoal/internal/config"
)

// Config configures the inference service. Its settings are flags named inference.*.
type Config struct {
	// DefaultModel is served when a request names no model; its
	// "production" alias is loaded at start and followed.
	DefaultModel string
	// Sessions is the number of ONNX Runtime sessions per loaded version,
	// and so the number of batches computing at once.
	Sessions int
	// IntraOpThreads is each session's intra-op thread count.
	IntraOpThreads int
	// WideSession adds a session with Sessions × IntraOpThreads threads,
	// which runs a batch only when nothing else computes: a lone request
	// gets every core the sessions share.
	WideSession bool
	// WideSessionMinGain is how much faster than a single-threaded session
	// the wide one must compute a lone image, timed when a version loads,
	// for the version to keep it (0: always kept). A small model gains
	// nothing from a second thread, and its wide session's idle thread
	// spins after each batch, on cores the decoding needs (RELIABILITY.md,
	// Overload).
	WideSessionMinGain float64
	// SessionLayout says how a version with a wide session shares the
	// cores under load: LayoutSideBySide runs a batch per single-threaded
	// session side by side; LayoutWide keeps the wide session alone, one
	// batch at a time, in a third of the memory (see chooseLayout).
	SessionLayout string
	// MaxBatchSize is the largest batch the batcher forms.
	MaxBatchSize int
	// MaxQueueDelay is the longest the first queued image waits for others.
	MaxQueueDelay time.Duration
	// QueueSize bounds the images waiting per loaded version; beyond it
	// requests fail with RESOURCE_EXHAUSTED.
	QueueSize int
	// LatencyTarget, when set, adapts each version's admission limit (at
	// most QueueSize plus a batch per session) so that admitted requests
	// are answered within it (overload.Limit); the excess is refused at
	// once with RESOURCE_EXHAUSTED rather than queued. 0: the fixed limit.
	LatencyTarget time.Duration
	// PinnedIdleTimeout unloads a version asked for by number after it has
	// served no request for this long, unless a followed alias names it;
	// 0 keeps such versions loaded until the process stops.
	PinnedIdleTimeout time.Duration
	// MemoryBudget bounds the memory the loaded versions hold, each
	// measured at load; the least recently used are unloaded to stay
	// within it. 0: no bound.
	MemoryBudget config.Bytes
	// MaxImageBytes and MaxImagePixels bound each encoded image.
	MaxImageBytes  int64
	MaxImagePixels int64
	// ReportInterval is how often the replica tells the Registry what it
	// serves when nothing changed (ReportServing); a change is reported at
	// once. ReportLease is how long each report holds: a replica silent
	// for that long is taken for gone, and WatchRollout waits for it no
	// more.
	ReportInterval time.Duration
	ReportLease    time.Duration
	// ReplicaName is the name the replica reports under; empty: its host
	// name, process id and a random suffix.
	ReplicaName string
}

// RegisterFlags registers the inference.* flags with their defaults.
//
// The defaults use every core whatever the load: one single-threaded
// session per core, so that under load as many batches compute side by
// side as there are cores (which measured better than fewer sessions of
// more threads: no synchronisation inside a batch), and a wide session
// with a thread per core for a request that comes alone, which would
// otherwise leave every core but one idle (BENCHMARKS.md).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DefaultModel, "inference.default-model", "fashion",
		"model served when a request names none; its production alias is loaded at start and followed")
	fs.IntVar(&c.Sessions, "inference.sessions", runtime.NumCPU(), "ONNX Runtime sessions per loaded model version (batches computing at once; default: one per core)")
	fs.IntVar(&c.IntraOpThreads, "inference.intra-op-threads", 1, "intra-op threads of each ONNX Runtime session")
	fs.BoolVar(&c.WideSession, "inference.wide-session", true,
		"one more session per version with sessions × intra-op-threads threads, for a batch that finds nothing else computing")
	fs.Float64Var(&c.WideSessionMinGain, "inference.wide-session-min-gain", 1.25,
		"how many times faster than a single-threaded session the wide session must compute a lone image, timed when a version loads, for the version to keep it (0: always kept)")
	fs.StringVar(&c.SessionLayout, "inference.session-layout", LayoutSideBySide,
		"how a version with a wide session shares the cores under load: side-by-side (a batch per single-threaded session, the wide one only for a batch that finds nothing else computing) or wide (the wide session alone, one batch at a time: a third of the memory, and on 2 cores less throughput under load)")
	// 8, measured on 2 cores (BENCHMARKS.md): the 28x28 model gains under
	// 5% images/s past batch 8, and ResNet-18 gains nothing past it while a
	// batch of 32 computes for 1 to 1.5 s, which every image in it waits.
	fs.IntVar(&c.MaxBatchSize, "inference.max-batch-size", 8, "largest batch of images run at once")
	// 0 by default: a batch leaves as soon as a session is free, and under
	// load batches still fill from what queued while every session was
	// busy. Measured on the 28x28 model, a 2ms delay added 2ms to a lone
	// request's latency and no throughput at any concurrency.
	fs.DurationVar(&c.MaxQueueDelay, "inference.max-queue-delay", 0,
		"longest the first queued image waits for others to join its batch while a session is free (0: none)")
	fs.IntVar(&c.QueueSize, "inference.queue-size", 512,
		"images waiting per loaded model version before requests fail with RESOURCE_EXHAUSTED (HTTP 429)")
	fs.DurationVar(&c.LatencyTarget, "inference.latency-target", 0,
		"time from a request's admission to its answer (decoding, queueing, computing) that the server holds by refusing the excess with RESOURCE_EXHAUSTED (HTTP 429): "+
			"each version's admission limit shrinks while more than 1% of answers take longer and grows back while none do (0: the fixed limit of queue-size plus a batch per session)")
	fs.DurationVar(&c.PinnedIdleTimeout, "inference.pinned-idle-timeout", 15*time.Minute,
		"unload a version requested by number after it has served nothing for this long, unless a followed alias names it (0: never)")
	fs.Var(&c.MemoryBudget, "inference.memory-budget",
		"memory the loaded model versions may hold, e.g. 2GiB (each measured at load: its sessions' weights and arenas); "+
			"the least recently used are unloaded to stay within it, versions that aliases name last (0: no bound)")
	fs.Int64Var(&c.MaxImageBytes, "inference.max-image-bytes", 20<<20, "largest encoded image accepted, in bytes")
	fs.Int64Var(&c.MaxImagePixels, "inference.max-image-pixels", 40_000_000, "largest image accepted, in pixels (width×height)")
	fs.DurationVar(&c.ReportInterval, "inference.report-interval", 5*time.Second,
		"how often the replica tells the Registry which version it serves for each alias when nothing changed (changes are told at once)")
	// Three intervals: one lost report does not make a live replica look gone.
	fs.DurationVar(&c.ReportLease, "inference.report-lease", 15*time.Second,
		"how long the Registry counts the replica as live after its last report; a rollout (shoal models promote --wait) stops waiting for a replica silent this long")
	fs.StringVar(&c.ReplicaName, "inference.replica-name", "",
		"name the replica reports to the Registry under, unique among the replicas (e.g. the pod's name); empty: the host name, process id and a random suffix")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	positive := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("--inference.%s=%d: must be positive", name, v))
		}
	}
	positive("sessions", int64(c.Sessions))
	positive("intra-op-threads", int64(c.IntraOpThreads))
	positive("max-batch-size", int64(c.MaxBatchSize))
	positive("queue-size", int64(c.QueueSize))
	positive("max-image-bytes", c.MaxImageBytes)
	positive("max-image-pixels", c.MaxImagePixels)
	if c.WideSessionMinGain < 0 || math.IsNaN(c.WideSessionMinGain) {
		errs = append(errs, fmt.Errorf("--inference.wide-session-min-gain=%v: must be 0 or more", c.WideSessionMinGain))
	}
	if c.PinnedIdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("--inference.pinned-idle-timeout=%s: must not be negative", c.PinnedIdleTimeout))
	}
	switch c.SessionLayout {
	case LayoutSideBySide, LayoutWide:
	default:
		errs = append(errs, fmt.Errorf("--inference.session-layout=%q: want %s or %s", c.SessionLayout, LayoutSideBySide, LayoutWide))
	}
	if c.MemoryBudget < 0 {
		errs = append(errs, fmt.Errorf("--inference.memory-budget=%s: must not be negative", c.MemoryBudget))
	}
	if c.LatencyTarget < 0 {
		errs = append(errs, fmt.Errorf("--inference.latency-target=%s: must not be negative", c.LatencyTarget))
	}
	if c.MaxQueueDelay < 0 {
		errs = append(errs, fmt.Errorf("--inference.max-queue-delay=%s: must not be negative", c.MaxQueueDelay))
	}
	if c.MaxBatchSize > 1024 {
		errs = append(errs, fmt.Errorf("--inference.max-batch-size=%d: at most 1024", c.MaxBatchSize))
	}
	if c.ReportInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--inference.report-interval=%s: must be at least 100ms", c.ReportInterval))
	}
	if c.ReportLease < 2*c.ReportInterval || c.ReportLease < time.Second || c.ReportLease > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--inference.report-lease=%s: must be between 1s and 10m, and at least twice --inference.report-interval=%s",
			c.ReportLease, c.ReportInterval))
	}
	if len(c.ReplicaName) > 255 || strings.IndexFunc(c.ReplicaName, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		errs = append(errs, fmt.Errorf("--inference.replica-name=%q: at most 255 printable characters", c.ReplicaName))
	}
	if c.QueueSize < c.MaxBatchSize {
		errs = append(errs, fmt.Errorf("--inference.queue-size=%d: must be at least --inference.max-batch-size=%d", c.QueueSize, c.MaxBatchSize))
	}
	return errors.Join(errs...)
}

// The session layouts (Config.SessionLayout).
const (
	LayoutSideBySide = "side-by-side"
	LayoutWide       = "wide"
)
