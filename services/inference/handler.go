package inference

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
)

// handler is Shoal's own inference API. RPCs it does not define yet answer
// UNIMPLEMENTED.
type handler struct {
	inferencepb.UnimplementedInferenceServiceServer
	svc *Service
}

var _ inferencepb.InferenceServiceServer = (*handler)(nil)

// ListLoadedModels lists the loaded model versions; none are loaded until
// the service loads models from the Registry.
func (h *handler) ListLoadedModels(context.Context, *inferencepb.ListLoadedModelsRequest) (*inferencepb.ListLoadedModelsResponse, error) {
	return &inferencepb.ListLoadedModelsResponse{}, nil
}

// oipHandler is the Open Inference Protocol surface.
type oipHandler struct {
	oippb.UnimplementedGRPCInferenceServiceServer
	svc *Service
}

var _ oippb.GRPCInferenceServiceServer = (*oipHandler)(nil)

// ServerLive is true while the process serves RPCs at all.
func (h *oipHandler) ServerLive(context.Context, *oippb.ServerLiveRequest) (*oippb.ServerLiveResponse, error) {
	return &oippb.ServerLiveResponse{Live: true}, nil
}

// ServerReady is true once a model is loaded and warm; none is yet.
func (h *oipHandler) ServerReady(context.Context, *oippb.ServerReadyRequest) (*oippb.ServerReadyResponse, error) {
	return &oippb.ServerReadyResponse{Ready: false}, nil
}

// ServerMetadata names the server and the protocol extensions it supports.
func (h *oipHandler) ServerMetadata(context.Context, *oippb.ServerMetadataRequest) (*oippb.ServerMetadataResponse, error) {
	return &oippb.ServerMetadataResponse{Name: "shoal", Version: h.svc.deps.Version, Extensions: []string{}}, nil
}

// ModelReady reports a model's readiness; no model is loaded yet, so every
// name is unknown.
func (h *oipHandler) ModelReady(_ context.Context, req *oippb.ModelReadyRequest) (*oippb.ModelReadyResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	return nil, status.Errorf(codes.NotFound, "model %q is not loaded", req.GetName())
}
