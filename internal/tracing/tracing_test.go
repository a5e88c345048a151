package tracing

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

func defaults() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	return c
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string // in the error; "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"otlp", func(c *Config) { c.Exporter = ExporterOTLP }, ""},
		{"unknown exporter", func(c *Config) { c.Exporter = "jaeger" }, "--tracing.exporter"},
		{"endpoint without port", func(c *Config) { c.Exporter, c.Endpoint = ExporterOTLP, "collector" }, "--tracing.endpoint"},
		{"endpoint unused", func(c *Config) { c.Endpoint = "collector" }, ""},
		{"ratio above 1", func(c *Config) { c.SampleRatio = 1.5 }, "--tracing.sample-ratio"},
		{"negative ratio", func(c *Config) { c.SampleRatio = -0.1 }, "--tracing.sample-ratio"},
		{"no sampling", func(c *Config) { c.SampleRatio = 0 }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v; want an error naming %q (none if empty)", err, tc.want)
			}
		})
	}
}

// TestNoneStartsNothing: without an exporter the provider keeps no spans
// and starts no goroutine, but a caller's trace context passes on.
func TestNoneStartsNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := New(defaults(), "shoal", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx, span := p.Tracer("test").Start(trace.ContextWithRemoteSpanContext(context.Background(), caller), "x")
	if span.IsRecording() {
		t.Errorf("a span of the none provider records; want none kept")
	}
	if got := trace.SpanContextFromContext(ctx); got.TraceID() != caller.TraceID() {
		t.Errorf("span context under the none provider = %v; want the caller's trace %s", got, caller.TraceID())
	}
	span.End()
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after New(none); want at most %d", n, before)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown() = %v", err)
	}
}

func TestEncodeDecode(t *testing.T) {
	if got := Encode(context.Background()); got != "" {
		t.Errorf("Encode(no span) = %q; want \"\"", got)
	}
	ts, _ := trace.ParseTraceState("vendor=x")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xa, 1}, SpanID: trace.SpanID{0xb, 2}, TraceFlags: trace.FlagsSampled, TraceState: ts,
	})
	s := Encode(trace.ContextWithSpanContext(context.Background(), sc))
	got := trace.SpanContextFromContext(Decode(context.Background(), s))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() || got.TraceState().String() != "vendor=x" || !got.IsRemote() {
		t.Errorf("Decode(Encode(%v)) = %v; want the same remote span context", sc, got)
	}
	// A tracestate too long to keep is dropped; the trace goes on.
	var members []string
	for i := range 32 {
		members = append(members, fmt.Sprintf("v%02d=%s", i, strings.Repeat("!", 60)))
	}
	long, err := trace.ParseTraceState(strings.Join(members, ","))
	if err != nil {
		t.Fatal(err)
	}
	s = Encode(trace.ContextWithSpanContext(context.Background(), sc.WithTraceState(long)))
	got = trace.SpanContextFromContext(Decode(context.Background(), s))
	if len(s) > MaxEncoded || got.TraceID() != sc.TraceID() || got.TraceState().Len() != 0 {
		t.Errorf("Encode(a %d-member tracestate) = %d bytes, decoding to %v; want at most %d, the trace without its state", long.Len(), len(s), got, MaxEncoded)
	}
	for _, bad := range []string{"", "%zz", "traceparent=nonsense"} {
		if got := trace.SpanContextFromContext(Decode(context.Background(), bad)); got.IsValid() {
			t.Errorf("Decode(%q) = %v; want no span context", bad, got)
		}
	}
}

func TestServiceName(t *testing.T) {
	for _, tc := range []struct {
		targets []string
		all     bool
		want    string
	}{
		{[]string{"auth", "dataset"}, true, "shoal"},
		{[]string{"inference"}, false, "shoal-inference"},
		{[]string{"dataset", "registry"}, false, "shoal-dataset-registry"},
	} {
		if got := ServiceName(tc.targets, tc.all); got != tc.want {
			t.Errorf("ServiceName(%v, %v) = %q; want %q", tc.targets, tc.all, got, tc.want)
		}
	}
}

// TestOTLPStops: the OTLP provider connects only to send, and Shutdown
// stops it even when no collector listens.
func TestOTLPStops(t *testing.T) {
	c := defaults()
	c.Exporter, c.Endpoint, c.Insecure = ExporterOTLP, "127.0.0.1:1", true
	p, err := New(c, "shoal", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New(otlp) = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown() with nothing to send = %v; want nil", err)
	}
}
