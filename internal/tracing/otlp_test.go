package tracing

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collector is an OTLP trace receiver that hands each export to the test.
type collector struct {
	collectorpb.UnimplementedTraceServiceServer
	got chan *collectorpb.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	c.got <- req
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

// TestOTLPSendsSpans: with --tracing.exporter=otlp the spans reach the
// collector at --tracing.endpoint, at the latest when the provider shuts
// down, under the process's service name.
func TestOTLPSendsSpans(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{got: make(chan *collectorpb.ExportTraceServiceRequest, 16)}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, c)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	cfg := defaults()
	cfg.Exporter, cfg.Endpoint, cfg.Insecure = ExporterOTLP, lis.Addr().String(), true
	p, err := New(cfg, "shoal-inference", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New(otlp) = %v", err)
	}
	_, span := p.Tracer("test").Start(context.Background(), "work")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown() = %v", err)
	}
	select {
	case req := <-c.got:
		rs := req.GetResourceSpans()
		if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || len(rs[0].GetScopeSpans()[0].GetSpans()) != 1 {
			t.Fatalf("the collector received %v; want one span", req)
		}
		if name := rs[0].GetScopeSpans()[0].GetSpans()[0].GetName(); name != "work" {
			t.Errorf("span name = %q; want work", name)
		}
		var service string
		for _, kv := range rs[0].GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		if service != "shoal-inference" {
			t.Errorf("resource service.name = %q; want shoal-inference", service)
		}
	default:
		t.Fatal("the collector received nothing by the end of Shutdown")
	}
}
