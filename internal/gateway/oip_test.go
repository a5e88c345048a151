package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	oippb "github.com/shoalml/shoal/gen/inference"
	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/oip/oiptest"
	"github.com/shoalml/shoal/internal/overload"
)

// fakeOIP is a real GRPCInferenceService whose model echoes its first
// input: one output per requested output (or one, "out"), with the input's
// datatype, shape and raw contents. It records what reached it.
type fakeOIP struct {
	oippb.UnimplementedGRPCInferenceServiceServer
	mu     sync.Mutex
	ready  bool
	calls  int
	last   *oippb.ModelInferRequest
	lastMD metadata.MD
	err    error // returned by every RPC when set
}

func (f *fakeOIP) record(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", strings.Join(md.Get("x-request-id"), "")+"-seen"))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastMD = md
	return f.err
}

func (f *fakeOIP) ServerLive(ctx context.Context, _ *oippb.ServerLiveRequest) (*oippb.ServerLiveResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	return &oippb.ServerLiveResponse{Live: true}, nil
}

func (f *fakeOIP) ServerReady(ctx context.Context, _ *oippb.ServerReadyRequest) (*oippb.ServerReadyResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &oippb.ServerReadyResponse{Ready: f.ready}, nil
}

func (f *fakeOIP) ServerMetadata(ctx context.Context, _ *oippb.ServerMetadataRequest) (*oippb.ServerMetadataResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	return &oippb.ServerMetadataResponse{Name: "fake", Version: "1.2.3", Extensions: []string{"binary_tensor_data"}}, nil
}

func (f *fakeOIP) ModelMetadata(ctx context.Context, req *oippb.ModelMetadataRequest) (*oippb.ModelMetadataResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	if req.GetName() != "echo" {
		return nil, status.Errorf(codes.NotFound, "model %q not found", req.GetName())
	}
	return &oippb.ModelMetadataResponse{Name: "echo", Versions: []string{cmpOr(req.GetVersion(), "7")}, Platform: "onnx_onnxv1",
		Inputs:  []*oippb.ModelMetadataResponse_TensorMetadata{{Name: "in", Datatype: "FP32", Shape: []int64{-1, 3, 28, 28}}},
		Outputs: []*oippb.ModelMetadataResponse_TensorMetadata{{Name: "out", Datatype: "FP32", Shape: []int64{-1, 10}}}}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (f *fakeOIP) ModelReady(ctx context.Context, req *oippb.ModelReadyRequest) (*oippb.ModelReadyResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	switch req.GetName() {
	case "echo":
		return &oippb.ModelReadyResponse{Ready: true}, nil
	case "loading":
		return &oippb.ModelReadyResponse{Ready: false}, nil
	}
	return nil, status.Errorf(codes.NotFound, "model %q is not loaded", req.GetName())
}

func (f *fakeOIP) ModelInfer(ctx context.Context, req *oippb.ModelInferRequest) (*oippb.ModelInferResponse, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.calls++
	f.last = proto.Clone(req).(*oippb.ModelInferRequest)
	f.mu.Unlock()
	if len(req.GetInputs()) == 0 || len(req.GetRawInputContents()) != len(req.GetInputs()) {
		return nil, status.Errorf(codes.InvalidArgument, "%d inputs, %d raw contents", len(req.GetInputs()), len(req.GetRawInputContents()))
	}
	in := req.GetInputs()[0]
	resp := &oippb.ModelInferResponse{ModelName: req.GetModelName(), ModelVersion: cmpOr(req.GetModelVersion(), "7"), Id: req.GetId(),
		Parameters: map[string]*oippb.InferParameter{"echoed": {ParameterChoice: &oippb.InferParameter_BoolParam{BoolParam: true}}}}
	names := []string{"out"}
	if len(req.GetOutputs()) > 0 {
		names = nil
		for _, o := range req.GetOutputs() {
			names = append(names, o.GetName())
		}
	}
	for _, name := range names {
		resp.Outputs = append(resp.Outputs, &oippb.ModelInferResponse_InferOutputTensor{Name: name, Datatype: in.GetDatatype(), Shape: in.GetShape()})
		resp.RawOutputContents = append(resp.RawOutputContents, req.GetRawInputContents()[0])
	}
	return resp, nil
}

func (f *fakeOIP) inferCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeOIP) lastRequest() (*oippb.ModelInferRequest, metadata.MD) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.lastMD
}

// oipGateway serves the gateway over a fake OIP service; a handler panic
// fails the test (net/http would otherwise swallow it).
func oipGateway(t *testing.T) (*fakeOIP, *httptest.Server) {
	t.Helper()
	fake := &fakeOIP{}
	conn := grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) {
		oippb.RegisterGRPCInferenceServiceServer(r, fake)
	}), grpctest.Options{Bare: true}).Conn
	mux, err := gateway.New(t.Context(), gateway.Conns{Inference: conn})
	if err != nil {
		t.Fatalf("gateway.New() = %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%s %s panicked: %v", r.Method, r.URL.Path, p)
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return fake, srv
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, header http.Header, body []byte) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func TestOIPHealthAndMetadataRoutes(t *testing.T) {
	fake, srv := oipGateway(t)
	tests := []struct {
		path   string
		code   int
		object string
		body   string
	}{
		{"/v2/health/live", 200, "live_server_response", `{"live":true}`},
		{"/v2/health/ready", 503, "ready_server_response", `{"ready":false}`},
		{"/v2", 200, "metadata_server_response", `{"name":"fake","version":"1.2.3","extensions":["binary_tensor_data"]}`},
		{"/v2/", 200, "metadata_server_response", `{"name":"fake","version":"1.2.3","extensions":["binary_tensor_data"]}`},
		{"/v2/models", 404, "error_response", `not part of the Open Inference Protocol`},
		{"/v2/models/echo", 200, "metadata_model_response",
			`{"name":"echo","versions":["7"],"platform":"onnx_onnxv1","inputs":[{"name":"in","datatype":"FP32","shape":[-1,3,28,28]}],"outputs":[{"name":"out","datatype":"FP32","shape":[-1,10]}]}`},
		{"/v2/models/echo/versions/3", 200, "metadata_model_response", `"versions":["3"]`},
		{"/v2/models/nope", 404, "error_response", `{"error":"model \"nope\" not found"}`},
		{"/v2/models/echo/ready", 200, "ready_model_response", `{"name":"echo","ready":true}`},
		{"/v2/models/echo/versions/2/ready", 200, "ready_model_response", `{"name":"echo","ready":true}`},
		{"/v2/models/loading/ready", 503, "ready_model_response", `{"name":"loading","ready":false}`},
		{"/v2/models/nope/ready", 404, "error_response", `"error":`},
		{"/v2/repository/index", 404, "error_response", `not part of the Open Inference Protocol`},
		{"/v2/models/echo/infer", 405, "error_response", `GET is not allowed`},
	}
	for _, tt := range tests {
		got := do(t, http.MethodGet, srv.URL+tt.path, http.Header{"X-Request-Id": {"r1"}}, nil)
		if got.code != tt.code || !strings.Contains(string(got.body), tt.body) || got.header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d %s (%s); want %d containing %s, as JSON", tt.path, got.code, got.body, got.header.Get("Content-Type"), tt.code, tt.body)
		}
		oiptest.Require(t, got.body, tt.object)
		if tt.code != 404 && tt.code != 405 && got.header.Get("X-Request-Id") != "r1-seen" {
			t.Errorf("GET %s: X-Request-Id %q; want the gRPC server's r1-seen", tt.path, got.header.Get("X-Request-Id"))
		}
	}
	fake.mu.Lock()
	fake.ready = true
	fake.mu.Unlock()
	if got := do(t, http.MethodGet, srv.URL+"/v2/health/ready", nil, nil); got.code != 200 || string(got.body) != `{"ready":true}` {
		t.Errorf("GET /v2/health/ready once ready = %d %s; want 200 {\"ready\":true}", got.code, got.body)
	}
	// The unknown-route form of the gateway's own paths is unchanged.
	if got := do(t, http.MethodGet, srv.URL+"/v1/nothing", nil, nil); got.code != 404 || !strings.Contains(string(got.body), `"code":5`) {
		t.Errorf("GET /v1/nothing = %d %s; want the gateway's 404 {code, message}", got.code, got.body)
	}
}

// TestOIPStatusCodes: the service's gRPC codes reach REST as the gateway's
// HTTP statuses, with the protocol's {"error"} body.
func TestOIPStatusCodes(t *testing.T) {
	fake, srv := oipGateway(t)
	body := []byte(`{"inputs":[{"name":"in","shape":[1],"datatype":"FP32","data":[1]}]}`)
	for _, tt := range []struct {
		code  codes.Code
		http  int
		retry bool // an overload, which asks to be retried (package overload)
	}{
		{codes.InvalidArgument, 400, false}, {codes.NotFound, 404, false}, {codes.Unauthenticated, 401, false}, {codes.PermissionDenied, 403, false},
		{codes.ResourceExhausted, 429, true}, {codes.ResourceExhausted, 413, false},
		{codes.Unavailable, 503, false}, {codes.DeadlineExceeded, 504, false}, {codes.Internal, 500, false},
	} {
		fake.mu.Lock()
		fake.err = status.Error(tt.code, "because "+tt.code.String())
		if tt.retry {
			fake.err = overload.Errorf(2*time.Second, "because %s", tt.code)
		}
		fake.mu.Unlock()
		for _, call := range []struct{ method, path string }{{"POST", "/v2/models/echo/infer"}, {"GET", "/v2/health/ready"}, {"GET", "/v2"}} {
			got := do(t, call.method, srv.URL+call.path, nil, body)
			if got.code != tt.http || string(got.body) != `{"error":"because `+tt.code.String()+`"}` {
				t.Errorf("%s %s with %v = %d %s; want %d {\"error\":...}", call.method, call.path, tt.code, got.code, got.body, tt.http)
			}
			if ra := got.header.Get("Retry-After"); (tt.http == 429) != (ra == "2") {
				t.Errorf("%s %s with %v: Retry-After %q", call.method, call.path, tt.code, ra)
			}
		}
	}
}

func TestOIPForwardsAuthorizationAndIDs(t *testing.T) {
	fake, srv := oipGateway(t)
	got := do(t, http.MethodPost, srv.URL+"/v2/models/echo/versions/4/infer",
		http.Header{"Authorization": {"Bearer shoal_secret"}, "X-Request-Id": {"req-9"}},
		[]byte(`{"id":"my-id","inputs":[{"name":"in","shape":[2],"datatype":"INT32","data":[1,2]}]}`))
	if got.code != 200 {
		t.Fatalf("POST infer = %d %s", got.code, got.body)
	}
	req, md := fake.lastRequest()
	if a := md.Get("authorization"); len(a) != 1 || a[0] != "Bearer shoal_secret" {
		t.Errorf("gRPC authorization metadata = %q; want the HTTP header", a)
	}
	if req.GetModelName() != "echo" || req.GetModelVersion() != "4" || req.GetId() != "my-id" {
		t.Errorf("ModelInfer got model %q version %q id %q; want echo, 4, my-id", req.GetModelName(), req.GetModelVersion(), req.GetId())
	}
	var resp struct {
		ID           string `json:"id"`
		ModelVersion string `json:"model_version"`
	}
	if err := json.Unmarshal(got.body, &resp); err != nil || resp.ID != "my-id" || resp.ModelVersion != "4" {
		t.Errorf("response %s: want id my-id echoed, model_version 4", got.body)
	}
	if got.header.Get("X-Request-Id") != "req-9-seen" {
		t.Errorf("X-Request-Id = %q; want req-9-seen", got.header.Get("X-Request-Id"))
	}
}

// TestOIPInferJSONEveryDatatype: "data" of every datatype, flat or nested,
// reaches the service as raw contents and comes back (echoed) as the same
// flat JSON.
func TestOIPInferJSONEveryDatatype(t *testing.T) {
	fake, srv := oipGateway(t)
	tests := []struct {
		datatype string
		shape    string
		data     string
		flat     string
		raw      []byte
	}{
		{"BOOL", "[2,2]", "[[true,false],[false,true]]", "[true,false,false,true]", []byte{1, 0, 0, 1}},
		{"UINT8", "[3]", "[0,1,255]", "[0,1,255]", []byte{0, 1, 255}},
		{"UINT16", "[1,2]", "[[1,65535]]", "[1,65535]", []byte{1, 0, 255, 255}},
		{"UINT32", "[2,2]", "[1,2,3,4]", "[1,2,3,4]", []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0}},
		{"UINT64", "[1]", "[18446744073709551615]", "[18446744073709551615]", bytes.Repeat([]byte{255}, 8)},
		{"INT8", "[2]", "[-1,127]", "[-1,127]", []byte{255, 127}},
		{"INT16", "[1]", "[-2]", "[-2]", []byte{254, 255}},
		{"INT32", "[1,1,1]", "[[[-3]]]", "[-3]", []byte{253, 255, 255, 255}},
		{"INT64", "[1]", "[-9223372036854775808]", "[-9223372036854775808]", []byte{0, 0, 0, 0, 0, 0, 0, 128}},
		{"FP16", "[2]", "[1.0,-0.5]", "[1,-0.5]", []byte{0, 0x3c, 0, 0xb8}},
		{"FP32", "[1,3]", "[[0.5,-2,1e-7]]", "[0.5,-2,1e-07]", f32bytes(0.5, -2, 1e-7)},
		{"FP64", "[1]", "[0.1]", "[0.1]", f64bytes(0.1)},
		{"BYTES", "[2]", `["ab",{"b64":"/9j/"}]`, `["ab",{"b64":"/9j/"}]`, []byte{2, 0, 0, 0, 'a', 'b', 3, 0, 0, 0, 0xff, 0xd8, 0xff}},
	}
	for _, tt := range tests {
		body := fmt.Sprintf(`{"inputs":[{"name":"x","shape":%s,"datatype":%q,"data":%s}]}`, tt.shape, tt.datatype, tt.data)
		got := do(t, http.MethodPost, srv.URL+"/v2/models/echo/infer", nil, []byte(body))
		want := fmt.Sprintf(`{"model_name":"echo","model_version":"7","id":"","parameters":{"echoed":true},"outputs":[{"name":"out","datatype":%q,"shape":%s,"data":%s}]}`,
			tt.datatype, tt.shape, tt.flat)
		if got.code != 200 || string(got.body) != want {
			t.Errorf("POST %s\n= %d %s\nwant %s", body, got.code, got.body, want)
			continue
		}
		if tt.datatype != "BYTES" { // {"b64"} is Shoal's extension, not the specification's tensor data
			oiptest.Require(t, []byte(body), "inference_request")
			oiptest.Require(t, got.body, "inference_response")
		}
		req, _ := fake.lastRequest()
		if !bytes.Equal(req.GetRawInputContents()[0], tt.raw) || req.GetInputs()[0].GetContents() != nil {
			t.Errorf("%s: raw_input_contents = %x; want %x and no typed contents", tt.datatype, req.GetRawInputContents()[0], tt.raw)
		}
	}
}

func TestOIPInferBadRequests(t *testing.T) {
	fake, srv := oipGateway(t)
	fp := func(extra string) string {
		return `{"inputs":[{"name":"x","shape":[2],"datatype":"FP32"` + extra + `}]}`
	}
	framed := func(head string, data []byte) (http.Header, []byte) { return binaryBody(head, data) }
	withHeader := func(v string, body string) (http.Header, []byte) {
		return http.Header{gateway.InferHeaderContentLength: {v}}, []byte(body)
	}
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		msg    string
	}{
		{"empty body", nil, nil, "no JSON"},
		{"not JSON", nil, []byte(`{"inputs":`), "not valid JSON"},
		{"inputs not an array", nil, []byte(`{"inputs":{}}`), "inputs is a JSON object; want an array"},
		{"no inputs", nil, []byte(`{"id":"42","outputs":[{"name":"output0","shape":[3,2],"datatype":"FP32","data":[1,1.1,2,2.1,3,3.1]}]}`), `"inputs" is required`},
		{"id not a string", nil, []byte(`{"id":42,"inputs":[]}`), `"id" must be a string`},
		{"no name", nil, []byte(`{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`), `inputs[0]: "name" is required`},
		{"no shape", nil, []byte(`{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`), `"shape" is required`},
		{"no datatype", nil, []byte(`{"inputs":[{"name":"x","shape":[1],"data":[1]}]}`), `"datatype" is required`},
		{"unknown datatype", nil, []byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP8","data":[1]}]}`), `unknown datatype "FP8"`},
		{"shape of strings", nil, []byte(`{"inputs":[{"name":"x","shape":["1"],"datatype":"FP32","data":[1]}]}`), `shape[0] is "1"`},
		{"fractional dimension", nil, []byte(`{"inputs":[{"name":"x","shape":[1.5],"datatype":"FP32","data":[1]}]}`), `shape[0] is 1.5`},
		{"negative dimension", nil, []byte(`{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}`), "negative"},
		{"shape overflows", nil, []byte(`{"inputs":[{"name":"x","shape":[4294967296,4294967296,4294967296],"datatype":"FP32","data":[1]}]}`), "holds more than"},
		{"dimension past int64", nil, []byte(`{"inputs":[{"name":"x","shape":[18446744073709551616],"datatype":"FP32","data":[1]}]}`), "shape[0]"},
		{"huge shape, little data", nil, []byte(`{"inputs":[{"name":"x","shape":[1000000000000],"datatype":"FP32","data":[1]}]}`), "cannot"},
		{"too few elements (the specification's BOOL example)", nil, []byte(`{"inputs":[{"name":"input1","shape":[3],"datatype":"BOOL","data":[true]}]}`), "data holds 1 elements; the shape holds 3"},
		{"too many elements", nil, []byte(fp(`,"data":[1,2,3]`)), "more than the 2 elements"},
		{"wrong element type", nil, []byte(fp(`,"data":[1,"a"]`)), `data element 1: "a" is not a number`},
		{"no data", nil, []byte(fp(``)), "no data"},
		{"data and binary", nil, []byte(fp(`,"data":[1,2],"parameters":{"binary_data_size":8}`)), "not both"},
		{"shared memory", nil, []byte(fp(`,"parameters":{"shared_memory_region":"r","shared_memory_byte_size":8}`)), "no shared-memory extension"},
		{"parameter of an array", nil, []byte(`{"parameters":{"p":[1]},"inputs":[]}`), `parameter "p": [1] is not a string, number or boolean`},
		{"binary_data_output not a boolean", nil, []byte(`{"parameters":{"binary_data_output":"yes"},"inputs":[]}`), "must be a boolean"},
		{"output without a name", nil, []byte(`{"inputs":[],"outputs":[{}]}`), `outputs[0]: "name" is required`},
		{"gzip", http.Header{"Content-Encoding": {"gzip"}}, []byte(fp(`,"data":[1,2]`)), `Content-Encoding "gzip" is not supported`},
		{"binary without the header", nil, []byte(fp(`,"parameters":{"binary_data_size":8}`)), "no Inference-Header-Content-Length header"},
	}
	bin := func(name string, h http.Header, b []byte, msg string) {
		tests = append(tests, struct {
			name   string
			header http.Header
			body   []byte
			msg    string
		}{name, h, b, msg})
	}
	h, b := framed(fp(`,"parameters":{"binary_data_size":8}`), make([]byte, 5))
	bin("truncated binary section", h, b, "binary_data_size is 8, but only 5 bytes")
	h, b = framed(fp(`,"parameters":{"binary_data_size":8}`), make([]byte, 12))
	bin("bytes after the sections", h, b, "4 bytes of binary data follow")
	h, b = framed(fp(`,"parameters":{"binary_data_size":4}`), make([]byte, 4))
	bin("size does not match the shape", h, b, "4 bytes; 2 FP32 elements take 8")
	h, b = framed(fp(`,"parameters":{"binary_data_size":9223372036854775807}`), make([]byte, 8))
	bin("huge declared size", h, b, "but only 8 bytes")
	h, b = framed(fp(`,"parameters":{"binary_data_size":-8}`), make([]byte, 8))
	bin("negative size", h, b, "want a byte count")
	h, b = framed(fp(`,"parameters":{"binary_data_size":"8"}`), make([]byte, 8))
	bin("size as a string", h, b, "want a byte count")
	h, b = framed(`{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`, append(le(5), 'a', 'b', 'c', 'd', 'e'))
	bin("BYTES elements short of the shape", h, b, "1 BYTES elements; the shape holds 2")
	h, b = framed(`{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}}]}`, append(le(1000), 'a', 'b'))
	bin("BYTES element length past its section", h, b, "length 1000, but only 2 bytes follow")
	h, b = withHeader("999", fp(`,"data":[1,2]`))
	bin("header length past the body", h, b, "999 is past the end")
	h, b = withHeader("-1", fp(`,"data":[1,2]`))
	bin("negative header length", h, b, "want the JSON's length")
	h, b = withHeader("12abc", fp(`,"data":[1,2]`))
	bin("header length not a number", h, b, "want the JSON's length")
	h, b = framed(fp(`,"data":[1,2]`), nil)
	h.Add(gateway.InferHeaderContentLength, "3")
	bin("two header lengths", h, b, "2 Inference-Header-Content-Length headers")
	h, b = withHeader("10", fp(`,"data":[1,2]`))
	bin("header length cuts the JSON", h, b, "not valid JSON")

	for _, tt := range tests {
		got := do(t, http.MethodPost, srv.URL+"/v2/models/echo/infer", tt.header, tt.body)
		var e struct{ Error string }
		_ = json.Unmarshal(got.body, &e)
		if got.code != 400 || !strings.Contains(e.Error, tt.msg) {
			t.Errorf("%s: POST = %d %s; want 400 containing %q", tt.name, got.code, got.body, tt.msg)
		}
		oiptest.Require(t, got.body, "error_response")
	}
	if n := fake.inferCalls(); n != 0 {
		t.Errorf("ModelInfer called %d times for bad requests; want 0", n)
	}
	// Still serving.
	h, b = framed(fp(`,"parameters":{"binary_data_size":8}`), f32bytes(1, 2))
	if got := do(t, http.MethodPost, srv.URL+"/v2/models/echo/infer", h, b); got.code != 200 {
		t.Errorf("a good request after the bad ones = %d %s; want 200", got.code, got.body)
	}
}

func le(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }
