// Package trainer is the Trainer service: durable training jobs on GoMLX
// that read a dataset snapshot through the Dataset service and register
// their result with the Registry service.
package trainer

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
	"gorm.io/gorm"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
)

// Deps are what the service is built from; the caller owns them. The other
// services are reached only through their gRPC clients.
type Deps struct {
	Log      *slog.Logger
	DB       *gorm.DB
	Blobs    blob.Store
	Datasets datasetpb.DatasetServiceClient
	Registry registrypb.RegistryServiceClient
}

// Service is the Trainer service.
type Service struct {
	cfg  Config
	deps Deps
}

// New returns the service; it does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Log == nil || deps.DB == nil || deps.Blobs == nil || deps.Datasets == nil || deps.Registry == nil {
		return nil, errors.New("trainer: Log, DB, Blobs, Datasets and Registry are required")
	}
	return &Service{cfg: cfg, deps: deps}, nil
}

// Start brings the service's tables up to date.
func (s *Service) Start(ctx context.Context) error {
	return db.Migrate(ctx, s.deps.DB, "trainer", migrations)
}

// Register adds the service's RPCs to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	trainerpb.RegisterTrainerServiceServer(r, &handler{svc: s})
}

// migrations are the service's schema versions, in order.
var migrations = []db.Migration{}
