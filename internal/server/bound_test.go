package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/overload"
	"github.com/shoalml/shoal/internal/server"
	"github.com/shoalml/shoal/internal/testlog"
)

// blocking is an Inference server whose Predict calls wait for release,
// each after saying it started.
type blocking struct {
	inferencepb.UnimplementedInferenceServiceServer
	started chan struct{}
	release chan struct{}
}

func (b *blocking) Predict(ctx context.Context, _ *inferencepb.PredictRequest) (*inferencepb.PredictResponse, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return &inferencepb.PredictResponse{Model: "m"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cancelledEnds says when a call cancelled by its client has ended on the
// server: added after the bound's own stats handler, it sees the end once
// the bound has given the call's slot back.
type cancelledEnds chan struct{}

func (c cancelledEnds) HandleRPC(_ context.Context, s stats.RPCStats) {
	if e, ok := s.(*stats.End); ok && status.Code(e.Error) == codes.Canceled {
		c <- struct{}{}
	}
}
func (c cancelledEnds) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c cancelledEnds) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c cancelledEnds) HandleConn(context.Context, stats.ConnStats)                       {}

// TestCallBound: beyond the bound, a call of a bounded method is refused as
// an overload to retry before its handler runs; others pass; a slot comes
// back when a call ends, however it ends.
func TestCallBound(t *testing.T) {
	fake := &blocking{started: make(chan struct{}, 8), release: make(chan struct{})}
	ended := make(cancelledEnds, 1)
	g := server.NewGRPC(defaultConfig(), testlog.New(t), prometheus.NewRegistry(),
		server.WithCallBound(2, inferencepb.InferenceService_Predict_FullMethodName),
		server.WithServerOptions(grpc.StatsHandler(ended)))
	inferencepb.RegisterInferenceServiceServer(g.Server, fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Server.Serve(lis)
	t.Cleanup(g.Server.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := inferencepb.NewInferenceServiceClient(conn)
	predict := func(ctx context.Context) error {
		_, err := client.Predict(ctx, &inferencepb.PredictRequest{Images: [][]byte{make([]byte, 1<<20)}})
		return err
	}

	// Two calls hold the two slots; one of them is cancelled by its client.
	cancelled, cancel := context.WithCancel(t.Context())
	done := make(chan error, 2)
	go func() { done <- predict(t.Context()) }()
	go func() { done <- predict(cancelled) }()
	<-fake.started
	<-fake.started

	err = predict(t.Context())
	if _, retry := overload.RetryAfter(err); status.Code(err) != codes.ResourceExhausted || !retry {
		t.Fatalf("a third call with 2 in flight = %v; want RESOURCE_EXHAUSTED asking to retry", err)
	}
	if len(fake.started) != 0 {
		t.Fatalf("the refused call reached its handler")
	}
	// Other methods are not bounded.
	if _, err := client.ListLoadedModels(t.Context(), &inferencepb.ListLoadedModelsRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ListLoadedModels with the bound full = %v; want it to reach the (unimplemented) handler", err)
	}

	// A cancelled call gives its slot back.
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("the cancelled call = %v", err)
	}
	// The client sees its cancellation at once; the server ends the call
	// (and frees its slot) when its handler returns.
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled call did not end on the server")
	}
	waitSlot := time.Now().Add(10 * time.Second)
	go func() { done <- predict(t.Context()) }()
	select {
	case <-fake.started:
	case <-time.After(time.Until(waitSlot)):
		t.Fatal("no slot came back after a call was cancelled")
	}
	close(fake.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("a call within the bound = %v", err)
		}
	}
	// All slots are back.
	for range 2 {
		if err := predict(t.Context()); err != nil {
			t.Errorf("a call after all ended = %v", err)
		}
		<-fake.started
	}
}
