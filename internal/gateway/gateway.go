// Package gateway exposes Shoal's gRPC services as REST with grpc-gateway.
// It is built over gRPC client connections, so a REST call passes through
// exactly the same server, interceptors and limits as a gRPC call.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shoalml/shoal"
	oippb "github.com/shoalml/shoal/gen/inference"
	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/overload"
	"github.com/shoalml/shoal/internal/server"
	"github.com/shoalml/shoal/internal/tracing"
)

// Conns are the connections to the services the gateway proxies; a nil
// connection leaves that service's routes out.
type Conns struct {
	Auth      grpc.ClientConnInterface
	Dataset   grpc.ClientConnInterface
	Trainer   grpc.ClientConnInterface
	Registry  grpc.ClientConnInterface
	Inference grpc.ClientConnInterface
	// MaxPredicts bounds the inference requests (POST /predict, Predict's
	// REST route, OIP infer) forwarded at once; beyond it they are
	// answered 429 before their bodies are read (0: no bound). See
	// inferenceBound.
	MaxPredicts int
	// PredictLatencyTarget, when set, shrinks that bound so that the
	// requests forwarded are answered within it, from the gateway's receipt
	// (see inferenceBound).
	PredictLatencyTarget time.Duration
}

// ClientStreams are the REST routes of the client-streaming RPCs. Their
// bodies are newline-delimited messages of any number, so the HTTP server
// bounds each line rather than the whole body.
var ClientStreams = []string{"POST /v1/images:upload", "POST /v1/versions:upload"}

// RequestIDHeader is echoed between HTTP and gRPC metadata.
const requestIDHeader = "X-Request-Id"

// JSONOptions are the protobuf JSON options of REST answers, before 64-bit
// integers become numbers (see voice.go; MarshalJSON writes a message in
// the REST API's voice for every other JSON rendering, such as the CLI's
// -o json). Zero values are written out, so a client reads {"ready": false}
// rather than {}, as the Open Inference Protocol's clients expect.
var JSONOptions = protojson.MarshalOptions{EmitUnpopulated: true}

// Gateway is the REST handler for the services it was built with.
type Gateway struct {
	*runtime.ServeMux
	bound *inferenceBound
}

// New returns the REST handler for the services in conns.
func New(ctx context.Context, conns Conns) (*Gateway, error) {
	var mux *runtime.ServeMux
	bound := newInferenceBound(conns.MaxPredicts, conns.PredictLatencyTarget)
	if bound != nil {
		bound.mux = func() *runtime.ServeMux { return mux }
	}
	mux = runtime.NewServeMux(
		runtime.WithMiddlewares(traceRoute, bound.middleware),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithForwardResponseOption(httpBodyContentType),
		runtime.WithErrorHandler(retryAfterOnOverload),
		runtime.WithRoutingErrorHandler(oipRoutingError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: newVoice()}),
		runtime.SetQueryParameterParser(voiceQueryParser{}),
	)
	type registration struct {
		name string
		conn grpc.ClientConnInterface
		fn   func() error
	}
	regs := []registration{
		{"auth", conns.Auth, func() error {
			return authpb.RegisterAuthServiceHandlerClient(ctx, mux, authpb.NewAuthServiceClient(conns.Auth))
		}},
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
			if err := registerOIP(mux, oippb.NewGRPCInferenceServiceClient(conns.Inference)); err != nil {
				return err
			}
			return mux.HandlePath(http.MethodPost, "/predict", predictHandler(mux, inferencepb.NewInferenceServiceClient(conns.Inference)))
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
	// The REST API's description, open like the routes' names it lists.
	if err := mux.HandlePath(http.MethodGet, "/openapi.json", serveOpenAPI); err != nil {
		return nil, fmt.Errorf("gateway: register /openapi.json: %w", err)
	}
	return &Gateway{ServeMux: mux, bound: bound}, nil
}

// serveOpenAPI answers GET /openapi.json with the OpenAPI document of the
// /v1 REST API (make generate writes it from proto/).
func serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(shoal.OpenAPI)
}

// traceRoute names the request's trace span and metrics by the route it
// matched: the route's template, never the path with its names and ids.
func traceRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if pat, ok := runtime.HTTPPattern(r.Context()); ok {
			tracing.SetRoute(r.Context(), r.Method, pat.String())
			server.SetHTTPRoute(r.Context(), pat.String())
		}
		next(w, r, params)
	}
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

// retryAfterOnOverload is the default error handler, telling the two
// kinds of RESOURCE_EXHAUSTED apart (package overload): an overload (an
// inference queue full, a rate limit) is 429 with a Retry-After header,
// which tells well-behaved clients when to come back; anything else over a
// limit (a message, an archive, a model too large) is 413, which they do
// not retry.
func retryAfterOnOverload(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	// A body that arrived too slowly reaches here as grpc-gateway's
	// InvalidArgument "%v" of the read error; it is a 408.
	if status.Code(err) == codes.InvalidArgument && strings.Contains(status.Convert(err).Message(), server.ErrBodyTimeout.Error()) {
		err = &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestTimeout, Err: err}
	}
	if status.Code(err) == codes.ResourceExhausted {
		if after, ok := overload.RetryAfter(err); ok {
			w.Header().Set("Retry-After", strconv.Itoa(overload.Seconds(after)))
		} else {
			err = &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestEntityTooLarge, Err: messageTooLarge(err, r)}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// grpcTooLarge matches grpc-go's refusal of a message over the limit, on
// either side: "trying to send message larger than max (N vs. M)" and
// "received message larger than max (N vs. M)".
var grpcTooLarge = regexp.MustCompile(`message larger than max \((\d+) vs\. (\d+)\)`)

// messageTooLarge says in the REST API's words what grpc-go's refusal of
// a message over --grpc.max-message-bytes means: REST bodies are bounded
// as a whole, but a line of an upload stream may decode to a message over
// the limit. On an upload it also says that the files sent before it may
// have been stored, which a refusal would otherwise deny.
func messageTooLarge(err error, r *http.Request) error {
	m := grpcTooLarge.FindStringSubmatch(status.Convert(err).Message())
	if m == nil {
		return err
	}
	msg := fmt.Sprintf("a message of %s bytes is over the server's limit of %s bytes (--grpc.max-message-bytes)", m[1], m[2])
	if slices.Contains(ClientStreams, r.Method+" "+r.URL.Path) {
		msg += ": send each file under that size, or an archive, which travels in small chunks; " +
			"the files sent before it may have been stored (sending them again counts them as duplicates)"
	}
	return status.Error(codes.ResourceExhausted, msg)
}

// maxPredictUpload bounds a POST /predict body; the Inference service
// applies its own, usually smaller, per-image limit.
const maxPredictUpload = 32 << 20

// predictResponse is the original API's answer, extended: the top label
// and its probability, the top-k list and the model version that answered.
type predictResponse struct {
	Prediction string        `json:"prediction"`
	Confidence float32       `json:"confidence"`
	TopK       []labelScore  `json:"top_k"`
	Model      string        `json:"model"`
	Version    int64         `json:"version"`
	Timings    *timingsMilli `json:"timings_ms,omitempty"`
}

type labelScore struct {
	Label       string  `json:"label"`
	Index       int32   `json:"index"`
	Probability float32 `json:"probability"`
}

type timingsMilli struct {
	Preprocess float64 `json:"preprocess"`
	Queue      float64 `json:"queue"`
	Compute    float64 `json:"compute"`
	Total      float64 `json:"total"`
	BatchSize  int32   `json:"batch_size"`
}

// predictHandler serves the original API's POST /predict: one image in the
// multipart field "file" (optional fields or query parameters model,
// version, alias, top_k). It calls Inference through its gRPC client, so
// the request passes the same interceptors as any other; errors are the
// gateway's usual JSON errors.
func predictHandler(mux *runtime.ServeMux, client inferencepb.InferenceServiceClient) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, outbound := runtime.MarshalerForRequest(mux, r)
		fail := func(ctx context.Context, err error) {
			runtime.HTTPError(ctx, mux, outbound, w, r, err)
		}
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, "/shoal.inference.v1.InferenceService/Predict",
			runtime.WithHTTPPathPattern("/predict"))
		if err != nil {
			fail(r.Context(), err)
			return
		}
		req, err := parsePredictForm(w, r)
		if err != nil {
			fail(ctx, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := client.Predict(ctx, req, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		ctx = runtime.NewServerMetadataContext(ctx, md)
		if err != nil {
			fail(ctx, err)
			return
		}
		for k, vs := range md.HeaderMD {
			if h, ok := outgoingHeader(k); ok && h == requestIDHeader {
				w.Header()[h] = vs
			}
		}
		if len(resp.GetResults()) != 1 {
			fail(ctx, status.Errorf(codes.Internal, "predict answered %d results for one image", len(resp.GetResults())))
			return
		}
		out := predictResponse{Model: resp.GetModel(), Version: resp.GetVersion(), TopK: []labelScore{}}
		for _, l := range resp.GetResults()[0].GetLabels() {
			out.TopK = append(out.TopK, labelScore{Label: l.GetLabel(), Index: l.GetIndex(), Probability: l.GetProbability()})
		}
		if len(out.TopK) > 0 {
			out.Prediction, out.Confidence = out.TopK[0].Label, out.TopK[0].Probability
		}
		if t := resp.GetTimings(); t != nil {
			ms := func(d interface{ AsDuration() time.Duration }) float64 {
				return float64(d.AsDuration().Microseconds()) / 1000
			}
			out.Timings = &timingsMilli{Preprocess: ms(t.GetPreprocess()), Queue: ms(t.GetQueue()), Compute: ms(t.GetCompute()),
				Total: ms(t.GetTotal()), BatchSize: t.GetBatchSize()}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

// predictFormValues are the text fields (or query parameters) /predict takes,
// besides the file.
var predictFormValues = []string{"model", "version", "alias", "top_k"}

const predictFields = `the image in "file", and optionally "model", "version", "alias", "top_k"`

// parsePredictForm reads the multipart upload into a PredictRequest.
func parsePredictForm(w http.ResponseWriter, r *http.Request) (*inferencepb.PredictRequest, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPredictUpload)
	// Files stay in memory up to the whole limit: the bytes go to gRPC anyway.
	if err := r.ParseMultipartForm(maxPredictUpload); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, status.Errorf(codes.InvalidArgument, "upload larger than %d bytes", maxPredictUpload)
		}
		if errors.Is(err, server.ErrBodyTimeout) {
			return nil, &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestTimeout, Err: status.Error(codes.InvalidArgument, err.Error())}
		}
		return nil, status.Errorf(codes.InvalidArgument, "want a multipart/form-data body with the image in the field \"file\": %v", err)
	}
	// Unknown fields are refused, as unknown JSON fields are: a misspelt
	// option (topK for top_k) silently ignored would answer another question.
	for name := range r.MultipartForm.File {
		if name != "file" {
			return nil, status.Errorf(codes.InvalidArgument, "unknown form field %q: /predict takes %s", name, predictFields)
		}
	}
	for name := range r.Form {
		if !slices.Contains(predictFormValues, name) {
			return nil, status.Errorf(codes.InvalidArgument, "unknown form field or query parameter %q: /predict takes %s", name, predictFields)
		}
	}
	f, _, err := r.FormFile("file")
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, `the multipart field "file" with the image is required`)
	}
	defer f.Close()
	img, err := io.ReadAll(f)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "read the uploaded file: %v", err)
	}
	req := &inferencepb.PredictRequest{Images: [][]byte{img}, Model: r.FormValue("model"), Alias: r.FormValue("alias")}
	for _, p := range []struct {
		name string
		set  func(int64)
	}{
		{"version", func(v int64) { req.Version = v }},
		{"top_k", func(v int64) { req.TopK = int32(v) }},
	} {
		if s := r.FormValue(p.name); s != "" {
			v, err := strconv.ParseInt(s, 10, 32)
			if err != nil || v < 0 {
				return nil, status.Errorf(codes.InvalidArgument, "%s %q: not a whole number of 0 or more", p.name, s)
			}
			p.set(v)
		}
	}
	return req, nil
}
