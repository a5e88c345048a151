package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/grpctest"
)

// fakeDataset and fakeRegistry are real gRPC services with canned answers,
// served behind the production interceptors (which echo the request id).
type fakeDataset struct {
	datasetpb.UnimplementedDatasetServiceServer
}

func (fakeDataset) GetImageContent(_ context.Context, req *datasetpb.GetImageContentRequest) (*datasetpb.GetImageContentResponse, error) {
	if req.GetImageId() != "img1" {
		return nil, status.Errorf(codes.NotFound, "image %q not found", req.GetImageId())
	}
	return &datasetpb.GetImageContentResponse{Body: &httpbody.HttpBody{ContentType: "image/png", Data: []byte("\x89PNG fake bytes")}}, nil
}

type fakeRegistry struct {
	registrypb.UnimplementedRegistryServiceServer
}

func (fakeRegistry) WatchAliases(req *registrypb.WatchAliasesRequest, s grpc.ServerStreamingServer[registrypb.WatchAliasesResponse]) error {
	for i := int64(1); i <= 3; i++ {
		if err := s.Send(&registrypb.WatchAliasesResponse{
			Type:     registrypb.AliasEventType_ALIAS_EVENT_TYPE_SET,
			Alias:    &registrypb.Alias{Model: req.GetModel(), Alias: "production", Version: i},
			Revision: i,
		}); err != nil {
			return err
		}
	}
	return nil
}

func newGateway(t *testing.T) http.Handler {
	t.Helper()
	srv := grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) {
		datasetpb.RegisterDatasetServiceServer(r, fakeDataset{})
		registrypb.RegisterRegistryServiceServer(r, fakeRegistry{})
	}), grpctest.Options{})
	mux, err := gateway.New(t.Context(), gateway.Conns{Dataset: srv.Conn, Registry: srv.Conn})
	if err != nil {
		t.Fatalf("gateway.New() = %v", err)
	}
	return mux
}

func TestHTTPBodyIsServedRaw(t *testing.T) {
	h := newGateway(t)
	req := httptest.NewRequest("GET", "/v1/datasets/fish/images/img1/content", nil)
	req.Header.Set("X-Request-Id", "req-42")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET content = %d %s; want 200", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "image/png" {
		t.Errorf("Content-Type = %q; want image/png (the body's own type)", ct)
	}
	if got := rec.Body.String(); got != "\x89PNG fake bytes" {
		t.Errorf("body = %q; want the raw image bytes", got)
	}
	if got := rec.Header().Get("X-Request-Id"); got != "req-42" {
		t.Errorf("X-Request-Id = %q; want req-42 passed to gRPC and back", got)
	}
}

func TestErrorsAreJSONWithHTTPStatus(t *testing.T) {
	h := newGateway(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/datasets/fish/images/nope/content", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET missing image = %d; want 404", rec.Code)
	}
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code != int(codes.NotFound) || !strings.Contains(body.Message, `"nope" not found`) {
		t.Errorf("error body = %s (%v); want {code: 5, message: ...not found}", rec.Body, err)
	}
	// A service this gateway was not given has no routes.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/jobs", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /v1/jobs without a trainer = %d; want 404", rec.Code)
	}
}

func TestServerStreamIsNDJSON(t *testing.T) {
	srv := httptest.NewServer(newGateway(t))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/aliases:watch?model=fish")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var versions []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line struct {
			Result struct {
				Alias struct {
					Model   string      `json:"model"`
					Version json.Number `json:"version"` // a JSON number in the REST voice
				} `json:"alias"`
			} `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		if strings.Contains(sc.Text(), `"version":"`) {
			t.Errorf("line %q: version is a string; the REST voice writes it as a number", sc.Text())
		}
		if line.Result.Alias.Model != "fish" {
			t.Errorf("line %q: model = %q; want fish (query parameter bound)", sc.Text(), line.Result.Alias.Model)
		}
		versions = append(versions, line.Result.Alias.Version.String())
	}
	if got := strings.Join(versions, ","); got != "1,2,3" {
		t.Errorf("NDJSON versions = %s; want 1,2,3 in order", got)
	}
}

// ClientStreams must name exactly the client-streaming RPCs' routes, or an
// upload would be cut at the body limit (or a route left unbounded).
func TestClientStreamsMatchTheContracts(t *testing.T) {
	var want []string
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(f.Package()), "shoal.") && f.Package() != "inference" {
			return true
		}
		for i := 0; i < f.Services().Len(); i++ {
			methods := f.Services().Get(i).Methods()
			for j := 0; j < methods.Len(); j++ {
				m := methods.Get(j)
				rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if !m.IsStreamingClient() || rule == nil {
					continue
				}
				if rule.GetPost() == "" {
					t.Errorf("%s: a client stream bound to something other than POST", m.FullName())
				}
				want = append(want, "POST "+rule.GetPost())
			}
		}
		return true
	})
	if !slices.Equal(slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(gateway.ClientStreams))) {
		t.Errorf("gateway.ClientStreams = %v; the contracts' client streams are %v", gateway.ClientStreams, want)
	}
}

// GET /openapi.json serves the REST API's OpenAPI document, as make generate
// wrote it, to anyone.
func TestOpenAPIDocument(t *testing.T) {
	rec := httptest.NewRecorder()
	newGateway(t).ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	var doc struct {
		Swagger string         `json:"swagger"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("GET /openapi.json = %d (%v); want 200 and JSON", rec.Code, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", ct)
	}
	for _, path := range []string{"/v1/datasets", "/v1/models/{model}:predict", "/v1/images:upload"} {
		if _, ok := doc.Paths[path]; doc.Swagger != "2.0" || !ok {
			t.Errorf("the document (swagger %q) lacks the path %s", doc.Swagger, path)
		}
	}
}
