// Package dataset is the Dataset service: datasets of labelled images,
// their content-addressed blobs and their immutable snapshots.
package dataset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc"
	"gorm.io/gorm"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
)

// Deps are what the service is built from; the caller owns them.
type Deps struct {
	Log   *slog.Logger
	DB    *gorm.DB
	Blobs blob.Store
	// ObjectStore opens a bucket prefix of the S3 server the blob store
	// uses, for ImportImages from object storage. Nil when the blob store
	// is not S3: such imports then fail with FailedPrecondition.
	ObjectStore func(ctx context.Context, bucket, prefix string) (blob.Store, error)
	// Panics recovers panics in import workers and the sweep (nil: recovered
	// and logged, not counted).
	Panics *panics.Guard
}

// Service is the Dataset service.
type Service struct {
	cfg   Config
	deps  Deps
	roots []string // absolute, symlinks resolved where they exist
}

// New returns the service; it does no I/O beyond resolving the import roots.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Log == nil || deps.DB == nil || deps.Blobs == nil {
		return nil, errors.New("dataset: Log, DB and Blobs are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, deps: deps}
	for _, r := range cfg.roots() {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("dataset.import-roots: %w", err)
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		s.roots = append(s.roots, abs)
	}
	return s, nil
}

// Start brings the service's tables up to date.
func (s *Service) Start(ctx context.Context) error {
	return db.Migrate(ctx, s.deps.DB, schemaComponent, migrations)
}

// Register adds the service's RPCs to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	datasetpb.RegisterDatasetServiceServer(r, &handler{svc: s})
}

// Run sweeps orphan blobs once at start and then daily, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		var n int
		err := s.deps.Panics.Call("dataset sweep", func() (err error) {
			n, err = s.sweepOrphans(ctx, time.Now().Add(-orphanGrace))
			return err
		})
		if err != nil && ctx.Err() == nil {
			s.deps.Log.Warn("orphan blob sweep failed", "err", err)
		} else if n > 0 {
			s.deps.Log.Info("removed orphan blobs", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// orphanGrace is how old an unreferenced blob must be before the sweep
// removes it: far longer than an import takes between writing a batch's
// blobs and committing its rows.
const orphanGrace = time.Hour

// sweepOrphans deletes image blobs last modified before cutoff that no image
// row references: those an import wrote before it died and that no re-run
// re-used. It returns how many it deleted.
func (s *Service) sweepOrphans(ctx context.Context, cutoff time.Time) (int, error) {
	var pending []string
	deleted := 0
	check := func() error {
		used, err := (store{db: s.deps.DB}).referenced(ctx, pending)
		if err != nil {
			return err
		}
		for _, sha := range pending {
			if !used[sha] {
				if err := s.deps.Blobs.Delete(ctx, blobKey(sha)); err != nil {
					return err
				}
				deleted++
			}
		}
		pending = pending[:0]
		return nil
	}
	err := s.deps.Blobs.List(ctx, blobKeyPrefix, func(info blob.Info) error {
		if !info.ModTime.Before(cutoff) {
			return nil
		}
		sha := filepath.Base(info.Key)
		if len(sha) != 64 || info.Key != blobKey(sha) {
			return nil
		}
		pending = append(pending, sha)
		if len(pending) == 500 {
			return check()
		}
		return nil
	})
	if err == nil && len(pending) > 0 {
		err = check()
	}
	return deleted, err
}

// isNoSuchBucket reports an S3 error for a missing bucket.
func isNoSuchBucket(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && resp.Code == minio.NoSuchBucket
}
