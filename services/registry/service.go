// Package registry is the Registry service: models and their versions, each
// an ONNX artifact with labels, input spec, metrics and lineage, and the
// aliases (such as production) that point at versions.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"gorm.io/gorm"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/notify"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/scratch"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
)

// Deps are what the service is built from; the caller owns them.
type Deps struct {
	Log   *slog.Logger
	DB    *gorm.DB
	Blobs blob.Store
	// ONNXRuntime locates the ONNX Runtime library that checks uploads;
	// Start loads it.
	ONNXRuntime onnxrt.Config
	// Panics recovers panics in Run's poll and prune rounds (nil: recovered
	// and logged, not counted).
	Panics *panics.Guard
}

// Service is the Registry service.
type Service struct {
	cfg  Config
	deps Deps

	ortMu sync.Mutex
	ort   *onnxrt.Runtime // nil until loaded; see runtime

	// changes wakes WatchAliases streams: at once after an alias change in
	// this process, and from Run's poll after one in another process.
	changes *notify.Broadcast
	// serving wakes WatchRollout streams when a replica's report changes
	// what it serves: at once for a report to this process, from Run's
	// poll for one to another.
	serving *notify.Broadcast
	// stopping is closed when Run's context ends, which ends open streams.
	stopping     chan struct{}
	stoppingOnce sync.Once
	// uploads is the upload folder, held from Start on so that no other
	// registry removes what this one receives (see scratch.Claim).
	uploads *os.File
}

// Uploads are received into files named uploadPrefix*uploadSuffix in the
// upload folder. The name is the registry's alone (the dataset service
// spools archives as shoal-upload-*, in the same system temporary folder
// by default), so that claimUploads never takes another writer's file.
const (
	uploadPrefix = "shoal-registry-upload-"
	uploadSuffix = ".onnx"
)

// claimUploads removes the uploads that a registry killed while receiving
// or checking them left in the upload folder, and holds the folder.
func (s *Service) claimUploads() {
	dir := s.cfg.UploadDir
	if dir == "" {
		dir = os.TempDir()
	}
	var n int
	s.uploads, n = scratch.Claim(dir, func(name string) bool {
		return strings.HasPrefix(name, uploadPrefix) && strings.HasSuffix(name, uploadSuffix)
	}, 24*time.Hour)
	if n > 0 {
		s.deps.Log.Info("removed uploads left by a process that stopped while receiving them", "dir", dir, "count", n)
	}
}

// New returns the service; it does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Log == nil || deps.DB == nil || deps.Blobs == nil {
		return nil, errors.New("registry: Log, DB and Blobs are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, deps: deps, changes: notify.New(), serving: notify.New(), stopping: make(chan struct{})}, nil
}

// Start brings the service's tables up to date, removes uploads a crash
// left in the upload folder and loads ONNX Runtime, which checks every
// upload. A missing runtime is logged, not fatal: the
// registry still serves what it holds, and uploads answer
// FAILED_PRECONDITION saying how to install it until it is there.
func (s *Service) Start(ctx context.Context) error {
	if err := db.Migrate(ctx, s.deps.DB, schemaComponent, migrations); err != nil {
		return err
	}
	s.claimUploads()
	if _, err := s.runtime(); err != nil {
		s.deps.Log.Warn("uploads are refused until ONNX Runtime is installed", "err", err)
	}
	return nil
}

// runtime returns ONNX Runtime, loading it on first use.
func (s *Service) runtime() (*onnxrt.Runtime, error) {
	s.ortMu.Lock()
	defer s.ortMu.Unlock()
	if s.ort == nil {
		rt, err := onnxrt.Load(s.deps.ONNXRuntime)
		if err != nil {
			return nil, err
		}
		s.ort = rt
	}
	return s.ort, nil
}

// Register adds the service's RPCs to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	registrypb.RegisterRegistryServiceServer(r, &handler{svc: s})
}

// Run polls the alias and serving revisions so that watchers learn of
// changes made through other processes sharing the database, prunes the
// alias event log and the reports of replicas long gone, and sweeps orphan
// artifact blobs (at start, then daily), until ctx ends; then it ends the
// open WatchAliases and WatchRollout streams.
func (s *Service) Run(ctx context.Context) error {
	defer s.stoppingOnce.Do(func() { close(s.stopping) })
	var seen, seenServing int64
	err := s.deps.Panics.Call("registry alias poll", func() (err error) {
		if seen, err = s.currentRevision(ctx); err != nil {
			return err
		}
		seenServing, err = s.servingRevision(ctx)
		return err
	})
	if err != nil && ctx.Err() == nil {
		s.deps.Log.Warn("alias revision poll failed; retrying", "err", err)
	}
	t := time.NewTicker(s.cfg.WatchPollInterval)
	defer t.Stop()
	var pruned, swept time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if now := time.Now(); now.Sub(swept) >= sweepEvery {
			swept = now
			var n int
			err := s.deps.Panics.Call("registry sweep", func() (err error) {
				n, err = s.sweepArtifacts(ctx)
				return err
			})
			switch {
			case err != nil && ctx.Err() == nil:
				s.deps.Log.Warn("sweeping orphan artifact blobs failed; retrying in a minute", "err", err)
				swept = now.Add(time.Minute - sweepEvery)
			case n > 0:
				s.deps.Log.Info("removed orphan artifact blobs", "count", n)
			}
		}
		if now := time.Now(); now.Sub(pruned) >= pruneInterval(s.cfg.AliasEventRetention) {
			pruned = now
			err := s.deps.Panics.Call("registry prune", func() error {
				if err := s.pruneAliasEvents(ctx, now.Add(-s.cfg.AliasEventRetention)); err != nil {
					return err
				}
				return s.pruneReplicas(ctx, now.Add(-replicaRetention))
			})
			if err != nil && ctx.Err() == nil {
				s.deps.Log.Warn("pruning the alias event log failed; retrying later", "err", err)
			}
		}
		var rev, serving int64
		err := s.deps.Panics.Call("registry alias poll", func() (err error) {
			if rev, err = s.currentRevision(ctx); err != nil {
				return err
			}
			serving, err = s.servingRevision(ctx)
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				s.deps.Log.Warn("alias revision poll failed; retrying", "err", err)
			}
			continue
		}
		if rev != seen {
			seen = rev
			s.changes.Notify()
		}
		if serving != seenServing {
			seenServing = serving
			s.serving.Notify()
		}
	}
}

// replicaRetention is how long the report of a replica whose lease has
// lapsed is kept before it is deleted. It counts for nothing meanwhile.
const replicaRetention = time.Hour

// pruneInterval is how often Run prunes the alias event log: often enough
// that the log holds little more than the retention, rarely enough to cost
// nothing.
func pruneInterval(retention time.Duration) time.Duration {
	return min(retention/10, time.Hour)
}

// pruneAliasEvents deletes alias events older than before, except the
// newest: WatchAliases tells a pruned log from a quiet one by its oldest
// revision, so the log is never emptied.
func (s *Service) pruneAliasEvents(ctx context.Context, before time.Time) error {
	tx := s.deps.DB.WithContext(ctx)
	var newest int64
	if err := tx.Model(&aliasEventRow{}).Select("COALESCE(MAX(revision), 0)").Scan(&newest).Error; err != nil {
		return fmt.Errorf("read newest alias event: %w", err)
	}
	res := tx.Where("created_at < ? AND revision < ?", before, newest).Delete(&aliasEventRow{})
	if res.Error != nil {
		return fmt.Errorf("prune alias events: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		s.deps.Log.Info("pruned alias event log", "events", res.RowsAffected, "before", before)
	}
	return nil
}

func (s *Service) currentRevision(ctx context.Context) (int64, error) {
	var r aliasRevisionRow
	if err := s.deps.DB.WithContext(ctx).Take(&r, 1).Error; err != nil {
		return 0, fmt.Errorf("read alias revision: %w", err)
	}
	return r.Revision, nil
}
