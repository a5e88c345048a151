package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	"github.com/shoalml/shoal/internal/overload"
)

// The Open Inference Protocol's REST form (its inference_rest.md) is not
// the gateway's JSON mapping of the gRPC messages: shapes are JSON
// integers, tensors are "data" arrays, errors are {"error": "..."} and
// readiness is a status code. So /v2 is written here by hand, over the
// same gRPC client and interceptors as every other route; the inference
// itself stays in the service's ModelInfer.

// oipRoute is one /v2 route: its pattern and the gRPC method it calls.
type oipRoute struct {
	method, pattern, rpc string
	handle               func(w http.ResponseWriter, r *http.Request, call oipCall)
}

// oipCall is a request on its way to the gRPC service: the context the
// gateway annotated (authorization, request id) and the path parameters.
type oipCall struct {
	ctx    context.Context
	client oippb.GRPCInferenceServiceClient
	params map[string]string
	// header collects the gRPC response headers, for X-Request-Id.
	header *metadata.MD
}

func (c oipCall) opts() []grpc.CallOption { return []grpc.CallOption{grpc.Header(c.header)} }

const oipRPC = "/inference.GRPCInferenceService/"

var oipRoutes = []oipRoute{
	{http.MethodGet, "/v2/health/live", oipRPC + "ServerLive", serverLive},
	{http.MethodGet, "/v2/health/ready", oipRPC + "ServerReady", serverReady},
	{http.MethodGet, "/v2", oipRPC + "ServerMetadata", serverMetadata},
	// The specification's OpenAPI document writes the path "/v2/", which a
	// pattern cannot: this one matches it (and answers other one-segment
	// paths as unknown).
	{http.MethodGet, "/v2/{path}", oipRPC + "ServerMetadata", serverMetadataSlash},
	{http.MethodGet, "/v2/models/{name}", oipRPC + "ModelMetadata", modelMetadata},
	{http.MethodGet, "/v2/models/{name}/versions/{version}", oipRPC + "ModelMetadata", modelMetadata},
	{http.MethodGet, "/v2/models/{name}/ready", oipRPC + "ModelReady", modelReady},
	{http.MethodGet, "/v2/models/{name}/versions/{version}/ready", oipRPC + "ModelReady", modelReady},
	{http.MethodPost, "/v2/models/{name}/infer", oipRPC + "ModelInfer", modelInfer},
	{http.MethodPost, "/v2/models/{name}/versions/{version}/infer", oipRPC + "ModelInfer", modelInfer},
}

// registerOIP adds the /v2 routes to mux.
func registerOIP(mux *runtime.ServeMux, client oippb.GRPCInferenceServiceClient) error {
	for _, rt := range oipRoutes {
		err := mux.HandlePath(rt.method, rt.pattern, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			ctx, err := runtime.AnnotateContext(r.Context(), mux, r, rt.rpc, runtime.WithHTTPPathPattern(rt.pattern))
			if err != nil {
				writeOIPError(w, err)
				return
			}
			var md metadata.MD
			rt.handle(oipResponseWriter{ResponseWriter: w, header: &md}, r, oipCall{ctx: ctx, client: client, params: params, header: &md})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// oipResponseWriter copies the request id the gRPC server set into the
// HTTP response as it starts.
type oipResponseWriter struct {
	http.ResponseWriter
	header *metadata.MD
}

func (w oipResponseWriter) WriteHeader(code int) {
	for k, vs := range *w.header {
		if h, ok := outgoingHeader(k); ok && h == requestIDHeader {
			w.Header()[h] = vs
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w oipResponseWriter) Write(b []byte) (int, error) {
	return w.ResponseWriter.Write(b)
}

// writeOIPJSON answers code with v as JSON.
func writeOIPJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeOIPError(w, status.Errorf(codes.Internal, "encode the response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// oipError is the protocol's error object.
type oipError struct {
	Error string `json:"error"`
}

// writeOIPError answers the protocol's error object with the HTTP status
// of err's gRPC code (400 for InvalidArgument, as the specification's
// "typically 400"; 404, 429 with Retry-After for an overload, 413 for
// anything else too large, 503 and so on as for every other route).
func writeOIPError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code := runtime.HTTPStatusFromCode(st.Code())
	if st.Code() == codes.ResourceExhausted {
		if after, ok := overload.RetryAfter(err); ok {
			w.Header().Set("Retry-After", strconv.Itoa(overload.Seconds(after)))
		} else {
			code = http.StatusRequestEntityTooLarge
		}
	}
	b, _ := json.Marshal(oipError{Error: st.Message()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// oipRoutingError answers unknown /v2 paths (Triton's model repository,
// statistics or shared-memory routes, say) in the protocol's error form,
// which Triton's and KServe's clients read; other paths get the gateway's.
func oipRoutingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	if r.URL.Path != "/v2" && !strings.HasPrefix(r.URL.Path, "/v2/") {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
		return
	}
	msg := r.Method + " " + r.URL.Path + " is not part of the Open Inference Protocol as this server serves it"
	if code == http.StatusMethodNotAllowed {
		msg = r.Method + " is not allowed on " + r.URL.Path
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(oipError{Error: msg})
	_, _ = w.Write(b)
}

// serverLive answers 200 {"live": true} while the service answers at all.
func serverLive(w http.ResponseWriter, _ *http.Request, c oipCall) {
	resp, err := c.client.ServerLive(c.ctx, &oippb.ServerLiveRequest{}, c.opts()...)
	if err != nil {
		writeOIPError(w, err)
		return
	}
	code := http.StatusOK
	if !resp.GetLive() {
		code = http.StatusServiceUnavailable
	}
	writeOIPJSON(w, code, struct {
		Live bool `json:"live"`
	}{resp.GetLive()})
}

// serverReady answers 200 {"ready": true} when a model is warm, and 503
// {"ready": false} before: readiness is the status code, so a Kubernetes
// probe or Triton's client (which checks for 200) can use it. The
// specification's text names this object's field "live", a slip for
// "ready" (the object it copies); KServe's servers write "ready".
func serverReady(w http.ResponseWriter, _ *http.Request, c oipCall) {
	resp, err := c.client.ServerReady(c.ctx, &oippb.ServerReadyRequest{}, c.opts()...)
	if err != nil {
		writeOIPError(w, err)
		return
	}
	code := http.StatusOK
	if !resp.GetReady() {
		code = http.StatusServiceUnavailable
	}
	writeOIPJSON(w, code, struct {
		Ready bool `json:"ready"`
	}{resp.GetReady()})
}

// serverMetadata answers {"name", "version", "extensions"}.
func serverMetadata(w http.ResponseWriter, _ *http.Request, c oipCall) {
	resp, err := c.client.ServerMetadata(c.ctx, &oippb.ServerMetadataRequest{}, c.opts()...)
	if err != nil {
		writeOIPError(w, err)
		return
	}
	writeOIPJSON(w, http.StatusOK, struct {
		Name       string   `json:"name"`
		Version    string   `json:"version"`
		Extensions []string `json:"extensions"`
	}{resp.GetName(), resp.GetVersion(), nonNil(resp.GetExtensions())})
}

// serverMetadataSlash serves GET /v2/ as GET /v2.
func serverMetadataSlash(w http.ResponseWriter, r *http.Request, c oipCall) {
	if c.params["path"] != "" {
		oipRoutingError(r.Context(), nil, nil, w, r, http.StatusNotFound)
		return
	}
	serverMetadata(w, r, c)
}

// metadataTensor is the specification's $metadata_tensor: the shape in
// JSON integers, -1 for a variable dimension.
type metadataTensor struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// modelMetadata answers the specification's $metadata_model_response.
func modelMetadata(w http.ResponseWriter, _ *http.Request, c oipCall) {
	resp, err := c.client.ModelMetadata(c.ctx, &oippb.ModelMetadataRequest{Name: c.params["name"], Version: c.params["version"]}, c.opts()...)
	if err != nil {
		writeOIPError(w, err)
		return
	}
	tensors := func(ts []*oippb.ModelMetadataResponse_TensorMetadata) []metadataTensor {
		out := make([]metadataTensor, 0, len(ts))
		for _, t := range ts {
			out = append(out, metadataTensor{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: nonNil(t.GetShape())})
		}
		return out
	}
	writeOIPJSON(w, http.StatusOK, struct {
		Name       string            `json:"name"`
		Versions   []string          `json:"versions,omitempty"`
		Platform   string            `json:"platform"`
		Inputs     []metadataTensor  `json:"inputs"`
		Outputs    []metadataTensor  `json:"outputs"`
		Properties map[string]string `json:"properties,omitempty"`
	}{resp.GetName(), resp.GetVersions(), resp.GetPlatform(), tensors(resp.GetInputs()), tensors(resp.GetOutputs()), resp.GetProperties()})
}

// modelReady answers 200 {"name", "ready": true} for a model this server
// holds warm, 503 with ready false while it loads, and 404 for one it does
// not hold.
func modelReady(w http.ResponseWriter, _ *http.Request, c oipCall) {
	name := c.params["name"]
	resp, err := c.client.ModelReady(c.ctx, &oippb.ModelReadyRequest{Name: name, Version: c.params["version"]}, c.opts()...)
	if err != nil {
		writeOIPError(w, err)
		return
	}
	code := http.StatusOK
	if !resp.GetReady() {
		code = http.StatusServiceUnavailable
	}
	writeOIPJSON(w, code, struct {
		Name  string `json:"name"`
		Ready bool   `json:"ready"`
	}{name, resp.GetReady()})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
