// Package gateway exposes Shoal's gRPC services as REST with grpc-gateway.
// It is built over gRPC client connections, so a REST call passes through
// exactly the same server, interceptors and limits as a gRPC call.
package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	oippb "github.com/shoalml/shoal/gen/inference"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

// Conns are the connections to the services the gateway proxies; a nil
// connection leaves that service's routes out.
type Conns struct {
	Dataset   grpc.ClientConnInterface
	Trainer   grpc.ClientConnInterface
	Registry  grpc.ClientConnInterface
	Inference grpc.ClientConnInterface
}

// RequestIDHeader is echoed between HTTP and gRPC metadata.
const requestIDHeader = "X-Request-Id"

// New returns the REST handler for the services in conns.
func New(ctx context.Context, conns Conns) (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithForwardResponseOption(httpBodyContentType),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
			},
		}),
	)
	type registration struct {
		name string
		conn grpc.ClientConnInterface
		fn   func() error
	}
	regs := []registration{
		{"dataset", conns.Dataset, func() error {
			return datasetpb.RegisterDatasetServiceHandlerClient(ctx, mux, datasetpb.NewDatasetServiceClient(conns.Dataset))
		}},
		{"trainer", conns.Trainer, func() error {
			return trainerpb.RegisterTrainerServiceHandlerClient(ctx, mux, trainerpb.NewTrainerServiceClient(conns.Trainer))
		}},
		{"registry", conns.Registry, func() error {
			return registrypb.RegisterRegistryServiceHandlerClient(ctx, mux, registrypb.NewRegistryServiceClient(conns.Registry))
		}},
		{"inference", conns.Inference, func() error {
			if err := inferencepb.RegisterInferenceServiceHandlerClient(ctx, mux, inferencepb.NewInferenceServiceClient(conns.Inference)); err != nil {
				return err
			}
			return oippb.RegisterGRPCInferenceServiceHandlerClient(ctx, mux, oippb.NewGRPCInferenceServiceClient(conns.Inference))
		}},
	}
	for _, r := range regs {
		if r.conn == nil {
			continue
		}
		if err := r.fn(); err != nil {
			return nil, fmt.Errorf("gateway: register %s: %w", r.name, err)
		}
	}
	return mux, nil
}

func incomingHeader(key string) (string, bool) {
	if strings.EqualFold(key, requestIDHeader) {
		return strings.ToLower(requestIDHeader), true
	}
	return runtime.DefaultHeaderMatcher(key)
}

func outgoingHeader(key string) (string, bool) {
	if strings.EqualFold(key, requestIDHeader) {
		return requestIDHeader, true
	}
	return fmt.Sprintf("%s%s", runtime.MetadataHeaderPrefix, key), true
}

// bodyCarrier is a response whose REST body is an HttpBody field (an RPC
// bound with `response_body: "body"`).
type bodyCarrier interface {
	GetBody() *httpbody.HttpBody
}

// httpBodyContentType gives such responses the body's own content type
// rather than JSON's, so a browser can show an image straight from REST.
func httpBodyContentType(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if b, ok := m.(bodyCarrier); ok && b.GetBody() != nil && b.GetBody().GetContentType() != "" {
		w.Header().Set("Content-Type", b.GetBody().GetContentType())
	}
	return nil
}
