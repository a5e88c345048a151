// Package registry is the Registry service: models and their versions, each
// an ONNX artifact with labels, input spec, metrics and lineage, and the
// aliases (such as production) that point at versions.
package registry

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"gorm.io/gorm"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
)

// Deps are what the service is built from; the caller owns them.
type Deps struct {
	Log   *slog.Logger
	DB    *gorm.DB
	Blobs blob.Store
}

// Service is the Registry service.
type Service struct {
	cfg  Config
	deps Deps
}

// New returns the service; it does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Log == nil || deps.DB == nil || deps.Blobs == nil {
		return nil, errors.New("registry: Log, DB and Blobs are required")
	}
	return &Service{cfg: cfg, deps: deps}, nil
}

// Start brings the service's tables up to date.
func (s *Service) Start(ctx context.Context) error {
	return db.Migrate(ctx, s.deps.DB, "registry", migrations)
}

// Register adds the service's RPCs to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	registrypb.RegisterRegistryServiceServer(r, &handler{svc: s})
}

// migrations are the service's schema versions, in order.
var migrations = []db.Migration{}
