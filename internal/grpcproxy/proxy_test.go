package grpcproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoalml/shoal/internal/grpcproxy"
)

// owner is the service behind the proxy: grpc-go's interop TestService,
// answering with what it saw of each call.
type owner struct {
	testpb.UnimplementedTestServiceServer
	cancelled chan struct{} // closed when a streaming call's context ends
}

// seen describes the incoming call: its metadata and deadline.
func seen(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	dl, ok := ctx.Deadline()
	left := "none"
	if ok {
		left = time.Until(dl).Round(time.Second).String()
	}
	return fmt.Sprintf("auth=%v fwd=%v rid=%v deadline=%s", md.Get("authorization"), md.Get("x-forwarded-for"), md.Get("x-request-id"), left)
}

func (o *owner) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-owner-header", "h", "x-request-id", "theirs"))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-owner-trailer", "t"))
	if req.GetResponseStatus().GetCode() != 0 {
		st := status.New(codes.Code(req.GetResponseStatus().GetCode()), req.GetResponseStatus().GetMessage())
		st, _ = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)})
		return nil, st.Err()
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload(), Username: seen(ctx)}, nil
}

func (o *owner) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range req.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	if len(req.GetResponseParameters()) == 0 {
		// Streams until the caller goes away.
		if err := stream.SendHeader(metadata.Pairs("x-owner-header", "h")); err != nil {
			return err
		}
		<-stream.Context().Done()
		close(o.cancelled)
		return stream.Context().Err()
	}
	return nil
}

func (o *owner) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	total := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(req.GetPayload().GetBody())
	}
}

func (o *owner) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

func serve(t *testing.T, s *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// setup starts the owner and, in front of it, a server that serves health
// itself and proxies the TestService; it returns a client of the front.
func setup(t *testing.T) (*owner, *grpc.ClientConn) {
	t.Helper()
	o := &owner{cancelled: make(chan struct{})}
	back := grpc.NewServer()
	testpb.RegisterTestServiceServer(back, o)
	toOwner := dial(t, serve(t, back))

	p := grpcproxy.New(func(service string) *grpc.ClientConn {
		if service == "grpc.testing.TestService" {
			return toOwner
		}
		return nil
	}, grpcproxy.WithRequestID("x-request-id", func(context.Context) string { return "ours" }))
	front := grpc.NewServer(p.ServerOptions()...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(front, h)
	return o, dial(t, serve(t, front))
}

func TestUnaryCarriesMetadataDeadlineAndAnswer(t *testing.T) {
	_, conn := setup(t)
	client := testpb.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer secret", "x-forwarded-for", "203.0.113.9")
	var header, trailer metadata.MD
	resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("image")}},
		grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatalf("UnaryCall() = %v", err)
	}
	if got := string(resp.GetPayload().GetBody()); got != "image" {
		t.Errorf("UnaryCall().Payload = %q; want the request's %q", got, "image")
	}
	want := "auth=[Bearer secret] fwd=[203.0.113.9, 127.0.0.1] rid=[ours] deadline=5s"
	if got := resp.GetUsername(); got != want {
		t.Errorf("the owner saw %q; want %q", got, want)
	}
	if got := header.Get("x-owner-header"); len(got) != 1 || got[0] != "h" {
		t.Errorf("header x-owner-header = %v; want [h]", got)
	}
	if got := header.Get("x-request-id"); len(got) != 0 {
		t.Errorf("header x-request-id = %v; want the owner's left out (the proxy's interceptors send their own)", got)
	}
	if got := trailer.Get("x-owner-trailer"); len(got) != 1 || got[0] != "t" {
		t.Errorf("trailer x-owner-trailer = %v; want [t]", got)
	}
}

func TestErrorKeepsCodeDetailsAndMetadata(t *testing.T) {
	_, conn := setup(t)
	var header, trailer metadata.MD
	_, err := testpb.NewTestServiceClient(conn).UnaryCall(t.Context(), &testpb.SimpleRequest{
		ResponseStatus: &testpb.EchoStatus{Code: int32(codes.ResourceExhausted), Message: "queue full"},
	}, grpc.Header(&header), grpc.Trailer(&trailer))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || st.Message() != "queue full" {
		t.Fatalf("UnaryCall() = %v; want RESOURCE_EXHAUSTED queue full", err)
	}
	if len(st.Details()) != 1 {
		t.Errorf("status details = %v; want the owner's RetryInfo", st.Details())
	} else if ri, ok := st.Details()[0].(*errdetails.RetryInfo); !ok || ri.GetRetryDelay().AsDuration() != 3*time.Second {
		t.Errorf("status details = %v; want RetryInfo of 3s", st.Details())
	}
	all := metadata.Join(header, trailer)
	if all.Get("x-owner-header") == nil || all.Get("x-owner-trailer") == nil {
		t.Errorf("metadata of the refusal = %v; want the owner's header and trailer", all)
	}
}

func TestStreams(t *testing.T) {
	o, conn := setup(t)
	client := testpb.NewTestServiceClient(conn)

	out, err := client.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 1}, {Size: 100_000}, {Size: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		m, err := out.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("StreamingOutputCall: Recv() = %v", err)
		}
		sizes = append(sizes, len(m.GetPayload().GetBody()))
	}
	if fmt.Sprint(sizes) != "[1 100000 3]" {
		t.Errorf("StreamingOutputCall sizes = %v; want [1 100000 3]", sizes)
	}

	in, err := client.StreamingInputCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{5, 0, 70_000} {
		if err := in.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, n)}}); err != nil {
			t.Fatalf("StreamingInputCall: Send() = %v", err)
		}
	}
	if resp, err := in.CloseAndRecv(); err != nil || resp.GetAggregatedPayloadSize() != 70_005 {
		t.Errorf("StreamingInputCall: CloseAndRecv() = %v, %v; want 70005", resp, err)
	}

	duplex, err := client.FullDuplexCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{"one", "two"} {
		if err := duplex.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(word)}}); err != nil {
			t.Fatal(err)
		}
		if m, err := duplex.Recv(); err != nil || string(m.GetPayload().GetBody()) != word {
			t.Errorf("FullDuplexCall echo of %q = %v, %v", word, m, err)
		}
	}
	if err := duplex.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := duplex.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("FullDuplexCall after CloseSend: Recv() = %v; want EOF", err)
	}

	// A caller that goes away ends the call at the owner too.
	ctx, cancel := context.WithCancel(t.Context())
	endless, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if md, err := endless.Header(); err != nil || md.Get("x-owner-header") == nil {
		t.Errorf("Header() of a stream without messages = %v, %v; want the owner's, before any message", md, err)
	}
	cancel()
	select {
	case <-o.cancelled:
	case <-time.After(10 * time.Second):
		t.Error("the owner's stream still runs 10s after its caller cancelled")
	}
}

func TestOwnAndUnknownServices(t *testing.T) {
	_, conn := setup(t)
	if resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Health.Check() on the proxy's own server = %v, %v; want SERVING", resp, err)
	}
	err := conn.Invoke(t.Context(), "/no.such.Service/Call", &testpb.Empty{}, &testpb.Empty{})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "no.such.Service") {
		t.Errorf("Invoke(/no.such.Service/Call) = %v; want UNIMPLEMENTED naming the service", err)
	}
}
