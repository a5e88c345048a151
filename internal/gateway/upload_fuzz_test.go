package gateway

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/fuzztest"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/server"
)

// uploadMessageLimit is the fuzzed server's grpc.max-message-bytes: small,
// so that short inputs reach it.
const uploadMessageLimit = 256

// uploadSink serves the two client streams, counting what arrives; a
// message that is not the first's kind ends the stream, as the real
// services do.
type uploadSink struct {
	datasetpb.UnimplementedDatasetServiceServer
	registrypb.UnimplementedRegistryServiceServer
}

func (uploadSink) UploadImages(s grpc.ClientStreamingServer[datasetpb.UploadImagesRequest, datasetpb.UploadImagesResponse]) error {
	n, err := drain(s.RecvMsg, func() proto.Message { return new(datasetpb.UploadImagesRequest) })
	if err != nil {
		return err
	}
	return s.SendAndClose(&datasetpb.UploadImagesResponse{Counts: &datasetpb.ImportCounts{Seen: n}})
}

func (uploadSink) CreateVersion(s grpc.ClientStreamingServer[registrypb.CreateVersionRequest, registrypb.CreateVersionResponse]) error {
	n, err := drain(s.RecvMsg, func() proto.Message { return new(registrypb.CreateVersionRequest) })
	if err != nil {
		return err
	}
	return s.SendAndClose(&registrypb.CreateVersionResponse{Version: &registrypb.Version{Version: n}})
}

func drain(recv func(any) error, msg func() proto.Message) (int64, error) {
	var n int64
	for {
		m := msg()
		err := recv(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if n++; proto.Size(m) > uploadMessageLimit {
			return n, status.Errorf(codes.Internal, "received a message of %d bytes past the limit", proto.Size(m))
		}
	}
}

// FuzzUploadStream posts any body to the REST client streams
// (POST /v1/images:upload and /v1/versions:upload) through the HTTP
// handler and the gateway to gRPC services. Neither may panic, and the
// answer is 200 or a client error (4xx), never a server error.
func FuzzUploadStream(f *testing.F) {
	var cfg server.Config
	cfg.RegisterFlags(flag.NewFlagSet("fuzz", flag.ContinueOnError))
	cfg.MaxMessageBytes = uploadMessageLimit
	conn := grpctest.Start(f, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) {
		datasetpb.RegisterDatasetServiceServer(r, uploadSink{})
		registrypb.RegisterRegistryServiceServer(r, uploadSink{})
	}), grpctest.Options{Log: slog.New(slog.DiscardHandler), MaxMessageBytes: uploadMessageLimit}).Conn
	mux, err := New(context.Background(), Conns{Dataset: conn, Registry: conn})
	if err != nil {
		f.Fatal(err)
	}
	h := server.NewHTTPHandler(cfg, server.HTTPOptions{API: mux, Gatherer: prometheus.NewRegistry(), ClientStreams: ClientStreams})
	f.Fuzz(func(t *testing.T, versions bool, body []byte) {
		defer fuzztest.Watchdog(10 * time.Second)()
		path := "/v1/images:upload"
		if versions {
			path = "/v1/versions:upload"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code >= 500) {
			t.Fatalf("POST %s = %d %s; want 200 or 4xx", path, rec.Code, rec.Body)
		}
	})
}

func writeUploadSeeds(t *testing.T) {
	header := `{"header":{"dataset":"fish"}}`
	file := `{"file":{"split":"SPLIT_TRAIN","label":"Fish","fileName":"a.png","content":"iVBORw0KGgo="}}`
	chunk := `{"archiveChunk":{"fileName":"fish.zip","data":"UEsDBA=="}}`
	spec := `{"spec":{"model":"fish","labels":["a","b"],"inputSpec":{"channels":3,"height":4,"width":4}}}`
	big := `{"chunk":"` + string(bytes.Repeat([]byte("A"), 2*uploadMessageLimit)) + `"}`
	seeds := []fuzztest.Seed{
		{Name: "images-ndjson", Args: []any{false, []byte(header + "\n" + file + "\n" + file + "\n")}},
		{Name: "images-archive", Args: []any{false, []byte(header + "\n" + chunk + "\n")}},
		{Name: "images-pretty", Args: []any{false, []byte("{\n \"header\": {\n  \"dataset\": \"fish\"\n }\n}\n")}},
		{Name: "images-unknown-field", Args: []any{false, []byte(`{"nope":1}`)}},
		{Name: "versions-ndjson", Args: []any{true, []byte(spec + "\n" + `{"chunk":"CAES"}` + "\n")}},
		{Name: "versions-large-chunk", Args: []any{true, []byte(spec + "\n" + big + "\n")}},
		{Name: "empty", Args: []any{true, []byte{}}},
	}
	fuzztest.WriteSeeds(t, "FuzzUploadStream", seeds)
}
