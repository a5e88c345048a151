// Package inference is the Inference service: it serves the Registry's
// model versions from ONNX Runtime sessions, batching concurrent requests,
// through Shoal's own API and the Open Inference Protocol.
package inference

import (
	"errors"
	"log/slog"

	"google.golang.org/grpc"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// Deps are what the service is built from; the caller owns them. Artifacts
// are read from the shared blob store by the key the Registry names, so
// replicas load models without streaming them through the Registry.
type Deps struct {
	Log      *slog.Logger
	Blobs    blob.Store
	Registry registrypb.RegistryServiceClient
	// Version is reported by the Open Inference Protocol's ServerMetadata.
	Version string
}

// Service is the Inference service.
type Service struct {
	cfg  Config
	deps Deps
}

// New returns the service; it does no I/O.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Log == nil || deps.Blobs == nil || deps.Registry == nil {
		return nil, errors.New("inference: Log, Blobs and Registry are required")
	}
	return &Service{cfg: cfg, deps: deps}, nil
}

// Register adds the service's RPCs, Shoal's and the Open Inference
// Protocol's, to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	h := &handler{svc: s}
	inferencepb.RegisterInferenceServiceServer(r, h)
	oippb.RegisterGRPCInferenceServiceServer(r, &oipHandler{svc: s})
}
