package inference

import (
	"cmp"
	"context"
	"slices"

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

// ListLoadedModels lists the model versions held in sessions, loading ones
// included (ready false), ordered by name and version.
func (h *handler) ListLoadedModels(context.Context, *inferencepb.ListLoadedModelsRequest) (*inferencepb.ListLoadedModelsResponse, error) {
	s := h.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &inferencepb.ListLoadedModelsResponse{MemoryBudgetBytes: int64(s.cfg.MemoryBudget), ResidentBytes: s.resident}
	for k, e := range s.models {
		lm := &inferencepb.LoadedModel{Model: k.model, Version: k.version}
		select {
		case <-e.done:
		default:
			resp.Models = append(resp.Models, lm) // still loading
			continue
		}
		if e.m == nil {
			continue
		}
		lm.Ready = e.m.ready.Load()
		lm.Sessions = int32(len(e.m.threads))
		lm.IntraOpThreads = int32(e.m.threads[0])
		if e.m.wide {
			lm.Sessions--
			lm.WideSessionThreads = int32(e.m.threads[len(e.m.threads)-1])
		}
		lm.MaxBatchSize = int32(e.m.batchCap)
		lm.QueueLength = int32(e.m.batcher.Len())
		lm.LoadedBytes = e.m.bytes
		for a, v := range s.aliases {
			if a.model == k.model && v == k.version {
				lm.Aliases = append(lm.Aliases, a.alias)
			}
		}
		slices.Sort(lm.Aliases)
		resp.Models = append(resp.Models, lm)
	}
	slices.SortFunc(resp.Models, func(a, b *inferencepb.LoadedModel) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Version, b.Version))
	})
	return resp, nil
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

// ServerReady is true once a model is loaded and warm.
func (h *oipHandler) ServerReady(context.Context, *oippb.ServerReadyRequest) (*oippb.ServerReadyResponse, error) {
	return &oippb.ServerReadyResponse{Ready: h.svc.ready()}, nil
}

// ServerMetadata names the server and the protocol extensions it supports.
func (h *oipHandler) ServerMetadata(context.Context, *oippb.ServerMetadataRequest) (*oippb.ServerMetadataResponse, error) {
	return &oippb.ServerMetadataResponse{Name: "shoal", Version: h.svc.deps.Version, Extensions: slices.Clone(oipExtensions)}, nil
}

// ModelReady reports whether a model (its production version, or the
// version asked for) is loaded and warm in this process. It never loads
// anything: a model this process does not hold is NotFound.
func (h *oipHandler) ModelReady(_ context.Context, req *oippb.ModelReadyRequest) (*oippb.ModelReadyResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	s := h.svc
	version, err := oipVersion(req.GetVersion())
	if err != nil {
		return nil, err
	}
	if version == 0 {
		s.mu.Lock()
		v, ok := s.aliases[aliasKey{req.GetName(), defaultAlias}]
		s.mu.Unlock()
		if !ok {
			return nil, status.Errorf(codes.NotFound, "model %q is not loaded", req.GetName())
		}
		version = v
	}
	s.mu.Lock()
	_, held := s.models[versionKey{req.GetName(), version}]
	s.mu.Unlock()
	if !held {
		return nil, status.Errorf(codes.NotFound, "model %q version %d is not loaded", req.GetName(), version)
	}
	return &oippb.ModelReadyResponse{Ready: s.loaded(versionKey{req.GetName(), version}) != nil}, nil
}
