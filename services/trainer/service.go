// Package trainer is the Trainer service: durable training jobs on GoMLX
// that read a dataset snapshot through the Dataset service and register
// their result with the Registry service.
package trainer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"gorm.io/gorm"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/notify"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/panics"
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
	// ONNXRuntime locates the runtime that exports and verifies models
	// (and trains, with the onnx backend).
	ONNXRuntime onnxrt.Config
	// Panics recovers panics in workers and jobs: a panicking job fails
	// alone (nil: recovered and logged, not counted).
	Panics *panics.Guard
	// Tracer starts each job's trainer.job span, in the trace of its
	// StartTraining call (nil: no spans, the trace context still passes
	// on to the job's calls).
	Tracer trace.TracerProvider
	// Metrics registers the service's Prometheus series; nil keeps them
	// unregistered.
	Metrics prometheus.Registerer
}

// Service is the Trainer service.
type Service struct {
	cfg  Config
	deps Deps
	st   store
	met  *metrics
	// changes wakes watchers and idle workers whenever this process writes
	// an event or queues a job.
	changes *notify.Broadcast
	// stopping closes when Run returns, ending the open WatchJob streams.
	stopping     chan struct{}
	stoppingOnce sync.Once
	// owner identifies this process's workers in the jobs' leases.
	owner string

	mu sync.Mutex
	// cancels stops the jobs this process is running, by id.
	cancels map[string]context.CancelCauseFunc
	// unwritten holds, by job id, events that could not be written yet
	// (see emit).
	unwritten map[string][]*trainerpb.WatchJobResponse

	// params caches the architectures' parameter counts: building the
	// graphs takes a while and the answer never changes.
	params     map[string]int64
	paramsErr  error
	paramsOnce sync.Once
}

// parameterCounts returns each architecture's trainable parameters for
// 10 classes at its default input.
func (s *Service) parameterCounts() (map[string]int64, error) {
	s.paramsOnce.Do(func() {
		s.params = map[string]int64{}
		for _, a := range ml.Architectures() {
			n, err := ml.ParameterCount(a, a.DefaultInput(), 10)
			if err != nil {
				s.paramsErr = fmt.Errorf("counting the parameters of %s: %w", a.Name, err)
				return
			}
			s.params[a.Name] = n
		}
	})
	return s.params, s.paramsErr
}

// New returns the service; it does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Log == nil || deps.DB == nil || deps.Blobs == nil || deps.Datasets == nil || deps.Registry == nil {
		return nil, errors.New("trainer: Log, DB, Blobs, Datasets and Registry are required")
	}
	reg := deps.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	st := store{db: deps.DB}
	met, err := newMetrics(reg, st, deps.Log)
	if err != nil {
		return nil, fmt.Errorf("trainer: metrics: %w", err)
	}
	return &Service{
		cfg: cfg, deps: deps, st: st, met: met, changes: notify.New(),
		stopping: make(chan struct{}), owner: uuid.NewString(),
		cancels: map[string]context.CancelCauseFunc{}, unwritten: map[string][]*trainerpb.WatchJobResponse{},
	}, nil
}

// Start brings the service's tables up to date.
func (s *Service) Start(ctx context.Context) error {
	return db.Migrate(ctx, s.deps.DB, schemaComponent, migrations)
}

// Register adds the service's RPCs to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	trainerpb.RegisterTrainerServiceServer(r, &handler{svc: s})
}
