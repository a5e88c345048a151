package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/server"
)

// unimplemented serves every Shoal service with handlers that answer
// UNIMPLEMENTED, except UploadImages, which reads the whole stream: a call
// that reaches a handler passed the contract's rules.
type unimplemented struct {
	datasetpb.UnimplementedDatasetServiceServer
	uploaded int // messages UploadImages read
}

func (u *unimplemented) UploadImages(stream grpc.ClientStreamingServer[datasetpb.UploadImagesRequest, datasetpb.UploadImagesResponse]) error {
	for {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&datasetpb.UploadImagesResponse{})
		}
		if err != nil {
			return err
		}
		u.uploaded++
	}
}

func (u *unimplemented) Register(r grpc.ServiceRegistrar) {
	datasetpb.RegisterDatasetServiceServer(r, u)
	authpb.RegisterAuthServiceServer(r, authpb.UnimplementedAuthServiceServer{})
	trainerpb.RegisterTrainerServiceServer(r, trainerpb.UnimplementedTrainerServiceServer{})
	registrypb.RegisterRegistryServiceServer(r, registrypb.UnimplementedRegistryServiceServer{})
	inferencepb.RegisterInferenceServiceServer(r, inferencepb.UnimplementedInferenceServiceServer{})
}

type violation struct{ field, reason string }

// fieldViolations reads the google.rpc.BadRequest detail of err.
func fieldViolations(err error) []violation {
	var out []violation
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, violation{v.GetField(), v.GetReason()})
			}
		}
	}
	return out
}

// TestValidationOverGRPC sends each service requests that break a rule of
// its contract (and one that keeps them): the server refuses them
// INVALID_ARGUMENT before any handler runs, naming the field (by its JSON
// name) and the rule in the message and in a BadRequest detail.
func TestValidationOverGRPC(t *testing.T) {
	srv := grpctest.Start(t, &unimplemented{}, grpctest.Options{})
	ds := datasetpb.NewDatasetServiceClient(srv.Conn)
	tr := trainerpb.NewTrainerServiceClient(srv.Conn)
	rg := registrypb.NewRegistryServiceClient(srv.Conn)
	inf := inferencepb.NewInferenceServiceClient(srv.Conn)
	au := authpb.NewAuthServiceClient(srv.Conn)
	ctx := t.Context()
	call := func(_ any, err error) error { return err }
	tests := []struct {
		name string
		err  error
		msg  string      // the whole message; "" for a call that passes
		want []violation // the BadRequest's field violations
	}{
		{"CreateDataset(bad name)", call(ds.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "Fish!"})),
			`name = "Fish!": use 1 to 63 lower-case letters, digits, '-' and '_'`, []violation{{"name", "shoal.name"}}},
		{"CreateDataset(no name)", call(ds.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{})),
			"name: is required", []violation{{"name", "required"}}},
		{"CreateDataset(long description)", call(ds.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "fish", Description: strings.Repeat("x", 4097)})),
			"description: must be at most 4096 bytes", []violation{{"description", "string.max_bytes"}}},
		{"ListImages(unknown split)", call(ds.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: "fish", Split: 9, PageSize: -1})),
			"split = 9: must be one of the defined enum values; pageSize = -1: must be greater than or equal to 0",
			[]violation{{"split", "enum.defined_only"}, {"pageSize", "int32.gte"}}},
		{"ImportImages(no source)", firstErr(ds.ImportImages(ctx, &datasetpb.ImportImagesRequest{Dataset: "fish"})),
			"source: exactly one field is required in oneof", []violation{{"source", "required"}}},
		{"CreateDataset(valid)", call(ds.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "fish"})), "", nil},
		{"StartTraining(no spec)", call(tr.StartTraining(ctx, &trainerpb.StartTrainingRequest{})),
			"spec: is required", []violation{{"spec", "required"}}},
		{"StartTraining(bad numbers)", call(tr.StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{
			Dataset: "fish", Epochs: -1, Augmentation: &trainerpb.Augmentation{ColorJitter: 1}, BaseVersion: &registrypb.VersionRef{Model: "m"},
		}})),
			"spec.epochs = -1: must be greater than or equal to 0; spec.augmentation.colorJitter = 1: must be greater than or equal to 0 and less than 1; spec.baseVersion.version = 0: must be greater than 0",
			[]violation{{"spec.epochs", "int32.gte"}, {"spec.augmentation.colorJitter", "float.gte_lt"}, {"spec.baseVersion.version", "int64.gt"}}},
		{"GetJob(not an id)", call(tr.GetJob(ctx, &trainerpb.GetJobRequest{JobId: "42"})),
			`jobId = "42": must be a valid UUID`, []violation{{"jobId", "string.uuid"}}},
		{"SetAlias(no version)", call(rg.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fish", Alias: "production"})),
			"version = 0: must be greater than 0", []violation{{"version", "int64.gt"}}},
		{"GetVersion(bad alias)", call(rg.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "fish", Alias: "Prod"})),
			`alias = "Prod": use 1 to 63 lower-case letters, digits, '-' and '_'`, []violation{{"alias", "shoal.name"}}},
		{"GetVersion(valid)", call(rg.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "fish", Version: 1})), "", nil},
		{"Predict(no images)", call(inf.Predict(ctx, &inferencepb.PredictRequest{TopK: -1})),
			"images: must contain at least 1 item(s); topK = -1: must be greater than or equal to 0",
			[]violation{{"images", "repeated.min_items"}, {"topK", "int32.gte"}}},
		{"RevokeToken(no id)", call(au.RevokeToken(ctx, &authpb.RevokeTokenRequest{})),
			"id: is required", []violation{{"id", "required"}}},
	}
	for _, tt := range tests {
		st := status.Convert(tt.err)
		if tt.msg == "" {
			if st.Code() != codes.Unimplemented {
				t.Errorf("%s = %v; want it to reach the handler (UNIMPLEMENTED)", tt.name, tt.err)
			}
			continue
		}
		if st.Code() != codes.InvalidArgument || st.Message() != tt.msg {
			t.Errorf("%s = %v; want INVALID_ARGUMENT %q", tt.name, tt.err, tt.msg)
		}
		if got := fieldViolations(tt.err); !equal(got, tt.want) {
			t.Errorf("%s: field violations = %v; want %v", tt.name, got, tt.want)
		}
	}
}

// firstErr is the error a server stream ends with at once, or nil.
func firstErr[T any](stream grpc.ServerStreamingClient[T], err error) error {
	if err != nil {
		return err
	}
	_, err = stream.Recv()
	return err
}

func equal(a, b []violation) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestValidationOfClientStreams: each message of a client stream is
// checked as the handler receives it; the first that breaks a rule ends
// the call.
func TestValidationOfClientStreams(t *testing.T) {
	svc := &unimplemented{}
	srv := grpctest.Start(t, svc, grpctest.Options{})
	stream, err := datasetpb.NewDatasetServiceClient(srv.Conn).UploadImages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*datasetpb.UploadImagesRequest{
		{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: "fish"}}},
		{Payload: &datasetpb.UploadImagesRequest_ArchiveChunk{ArchiveChunk: &datasetpb.ArchiveChunk{FileName: "a.zip"}}},
		{}, // no payload
	} {
		if err := stream.Send(m); err != nil {
			break // the server ended the call; CloseAndRecv says why
		}
	}
	_, err = stream.CloseAndRecv()
	const want = "payload: exactly one field is required in oneof"
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != want {
		t.Errorf("UploadImages(header, chunk, empty message) = %v; want INVALID_ARGUMENT %q", err, want)
	}
	if svc.uploaded != 2 {
		t.Errorf("UploadImages read %d messages before the refusal; want 2", svc.uploaded)
	}
}

// refuseAnonymous is a gate that admits only calls with an authorization
// header.
type refuseAnonymous struct{}

func (refuseAnonymous) check(ctx context.Context) error {
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("authorization")) == 0 {
		return status.Error(codes.Unauthenticated, "no credential")
	}
	return nil
}

func (g refuseAnonymous) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := g.check(ctx); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (g refuseAnonymous) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := g.check(ss.Context()); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// TestValidationAfterTheGates: a caller the gates refuse learns nothing of
// the request's rules.
func TestValidationAfterTheGates(t *testing.T) {
	srv := grpctest.Start(t, &unimplemented{}, grpctest.Options{Gates: []server.Gate{refuseAnonymous{}}})
	c := datasetpb.NewDatasetServiceClient(srv.Conn)
	bad := &datasetpb.CreateDatasetRequest{Name: "Fish!"}
	if _, err := c.CreateDataset(t.Context(), bad); status.Code(err) != codes.Unauthenticated {
		t.Errorf("CreateDataset(bad name, no credential) = %v; want UNAUTHENTICATED", err)
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer x")
	if _, err := c.CreateDataset(ctx, bad); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreateDataset(bad name, credential) = %v; want INVALID_ARGUMENT", err)
	}
	stream, err := c.ImportImages(t.Context(), &datasetpb.ImportImagesRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ImportImages(no dataset, no credential) = %v; want UNAUTHENTICATED", err)
	}
}

// TestValidationOverREST: the gateway answers a violation 400 with the
// same message and the BadRequest detail in its JSON body.
func TestValidationOverREST(t *testing.T) {
	srv := grpctest.Start(t, &unimplemented{}, grpctest.Options{})
	gw, err := gateway.New(t.Context(), gateway.Conns{Dataset: srv.Conn, Trainer: srv.Conn, Registry: srv.Conn, Inference: srv.Conn, Auth: srv.Conn})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(gw)
	defer web.Close()
	tests := []struct {
		method, path, body string
		msg                string
		want               []violation
	}{
		{"POST", "/v1/datasets", `{"name":"Fish!"}`,
			`name = "Fish!": use 1 to 63 lower-case letters, digits, '-' and '_'`, []violation{{"name", "shoal.name"}}},
		{"GET", "/v1/datasets/fish/images?pageSize=-5", "",
			"pageSize = -5: must be greater than or equal to 0", []violation{{"pageSize", "int32.gte"}}},
		{"POST", "/v1/jobs", `{"spec":{"dataset":"fish","validationFraction":0.9}}`,
			"spec.validationFraction = 0.9: must be greater than or equal to 0 and less than or equal to 0.5",
			[]violation{{"spec.validationFraction", "double.gte_lte"}}},
		{"GET", "/v1/jobs/not-a-job", "",
			`jobId = "not-a-job": must be a valid UUID`, []violation{{"jobId", "string.uuid"}}},
		{"PUT", "/v1/models/fish/aliases/Prod", `{"version":"1"}`,
			`alias = "Prod": use 1 to 63 lower-case letters, digits, '-' and '_'`, []violation{{"alias", "shoal.name"}}},
	}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(t.Context(), tt.method, web.URL+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got struct {
			Code    int
			Message string
			Details []struct {
				Type            string `json:"@type"`
				FieldViolations []struct{ Field, Reason string }
			}
		}
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusBadRequest || got.Message != tt.msg {
			t.Errorf("%s %s = %d %s; want 400 with message %q", tt.method, tt.path, resp.StatusCode, body, tt.msg)
			continue
		}
		var vs []violation
		for _, d := range got.Details {
			if d.Type == "type.googleapis.com/"+string(proto.MessageName(&errdetails.BadRequest{})) {
				for _, v := range d.FieldViolations {
					vs = append(vs, violation{v.Field, v.Reason})
				}
			}
		}
		if !equal(vs, tt.want) {
			t.Errorf("%s %s: field violations = %v; want %v (body %s)", tt.method, tt.path, vs, tt.want, body)
		}
	}
}
