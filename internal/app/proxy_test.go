package app_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// splitPair starts the services in one process and a gateway in another,
// as a split deployment runs them, and returns both.
func splitPair(t *testing.T) (services, gw running) {
	t.Helper()
	return splitPairWith(t, func(*app.Config) {})
}

// splitPairWith is splitPair with both processes' configurations changed
// by edit.
func splitPairWith(t *testing.T, edit func(*app.Config)) (services, gw running) {
	t.Helper()
	secret := strings.Repeat("s", 32)
	cfg := defaults(t)
	shared(t, &cfg)
	cfg.Target = "auth,registry,dataset,trainer,inference"
	cfg.Gate.ServiceToken = secret
	edit(&cfg)
	services = start(t, cfg)

	gcfg := defaults(t)
	gcfg.Target = app.Gateway
	gcfg.Gate.ServiceToken = secret
	for _, s := range app.Services {
		*gcfg.Clients.Addresses[s] = services.addr
	}
	edit(&gcfg)
	gw = start(t, gcfg)
	gw.admin = services.admin
	return services, gw
}

// TestGatewayForwardsEveryService: the gateway's gRPC port answers every
// Shoal service as one process does: reflection lists them, tokens are
// checked by their owner (once: the audit trail has each call once),
// client and server streams pass, and errors keep their codes.
func TestGatewayForwardsEveryService(t *testing.T) {
	_, gw := splitPair(t)

	stream, err := reflectionpb.NewServerReflectionClient(gw.grpc).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		listed = append(listed, s.GetName())
	}
	for _, names := range grpcServices {
		for _, name := range names {
			if !slices.Contains(listed, name) {
				t.Errorf("reflection ListServices at the gateway = %v; missing %s", listed, name)
			}
		}
	}

	// Without a token the owner refuses; the gateway does not answer for it.
	ds := datasetpb.NewDatasetServiceClient(gw.grpc)
	if _, err := ds.CreateDataset(t.Context(), &datasetpb.CreateDatasetRequest{Name: "fish"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("CreateDataset without a token through the gateway = %v; want UNAUTHENTICATED", err)
	}
	if _, err := ds.CreateDataset(bearerCtx(t.Context(), gw.admin), &datasetpb.CreateDatasetRequest{Name: "fish"}); err != nil {
		t.Errorf("CreateDataset with the admin token through the gateway = %v", err)
	}
	// The owner checks the contract's rules; the gateway passes its answer
	// on, details and all.
	_, err = ds.CreateDataset(bearerCtx(t.Context(), gw.admin), &datasetpb.CreateDatasetRequest{Name: "Fish!"})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), `name = "Fish!": `) || len(st.Details()) != 1 {
		t.Errorf("CreateDataset(Fish!) through the gateway = %v (details %v); want INVALID_ARGUMENT naming the field, with a BadRequest", err, st.Details())
	}

	ci := createToken(t, gw, "ci", authpb.Scope_SCOPE_WRITE, authpb.Scope_SCOPE_READ)
	reader := createToken(t, gw, "reader", authpb.Scope_SCOPE_READ)
	reg := registrypb.NewRegistryServiceClient(gw.grpc)

	upload, err := reg.CreateVersion(bearerCtx(t.Context(), ci))
	if err != nil {
		t.Fatal(err)
	}
	_ = upload.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{
		Model: "fish", Labels: []string{"a", "b"}, InputSpec: &registrypb.InputSpec{Channels: 1, Height: 4, Width: 4},
	}}})
	_ = upload.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{
		Chunk: onnxtest.Classifier{Channels: 1, Height: 4, Width: 4, Classes: 2}.Bytes()}})
	if _, err := upload.CloseAndRecv(); err != nil {
		t.Fatalf("CreateVersion (a client stream) through the gateway = %v", err)
	}
	watch, err := reg.WatchAliases(bearerCtx(t.Context(), reader), &registrypb.WatchAliasesRequest{Model: "fish"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := watch.Recv(); err != nil || ev.GetType() != registrypb.AliasEventType_ALIAS_EVENT_TYPE_SYNCED {
		t.Fatalf("WatchAliases through the gateway: first Recv() = %v, %v; want SYNCED", ev, err)
	}

	_, err = reg.SetAlias(bearerCtx(t.Context(), reader), &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 1})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("SetAlias with a read token through the gateway = %v; want PERMISSION_DENIED", err)
	}
	var header metadata.MD
	if _, err := reg.SetAlias(bearerCtx(t.Context(), ci), &registrypb.SetAliasRequest{Model: "fish", Alias: "production", Version: 1},
		grpc.Header(&header)); err != nil {
		t.Fatalf("SetAlias with a write token through the gateway = %v", err)
	}
	if ev, err := watch.Recv(); err != nil || ev.GetType() != registrypb.AliasEventType_ALIAS_EVENT_TYPE_SET || ev.GetAlias().GetVersion() != 1 {
		t.Errorf("WatchAliases through the gateway after SetAlias: Recv() = %v, %v; want SET to version 1", ev, err)
	}

	events, err := authpb.NewAuthServiceClient(gw.grpc).ListAuditEvents(bearerCtx(t.Context(), gw.admin),
		&authpb.ListAuditEventsRequest{Method: "SetAlias"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range events.GetEvents() {
		got = append(got, ev.GetTokenName()+" "+ev.GetCode())
	}
	if want := []string{"ci OK", "reader PERMISSION_DENIED"}; !slices.Equal(got, want) {
		t.Errorf("ListAuditEvents(SetAlias) = %q; want %q, each call once", got, want)
	}
	if ids := header.Get("x-request-id"); len(ids) != 1 || len(events.GetEvents()) == 0 || events.GetEvents()[0].GetRequestId() != ids[0] {
		t.Errorf("x-request-id of SetAlias at the gateway = %v; want one, the id its owner audited", ids)
	}

	if err := gw.grpc.Invoke(t.Context(), "/no.such.v1.Service/Call", &registrypb.GetModelRequest{}, &registrypb.GetModelResponse{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("a call of no service through the gateway = %v; want UNIMPLEMENTED", err)
	}
}
