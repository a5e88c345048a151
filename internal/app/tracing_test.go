package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/app/apptest"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// spanLog records the spans a process ends, for tests to wait on.
type spanLog struct {
	mu      sync.Mutex
	spans   []sdktrace.ReadOnlySpan
	changed chan struct{}
}

func newSpanLog() *spanLog { return &spanLog{changed: make(chan struct{})} }

func (l *spanLog) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (l *spanLog) Shutdown(context.Context) error                  { return nil }
func (l *spanLog) ForceFlush(context.Context) error                { return nil }

func (l *spanLog) OnEnd(s sdktrace.ReadOnlySpan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spans = append(l.spans, s)
	close(l.changed)
	l.changed = make(chan struct{})
}

// wait returns the first ended span of the kind named name in trace id
// (any trace when id is invalid), waiting for it to end.
func (l *spanLog) wait(t *testing.T, id trace.TraceID, kind trace.SpanKind, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	return l.waitFor(t, fmt.Sprintf("%s span %q in trace %s", kind, name, id), func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == name && s.SpanKind() == kind && (!id.IsValid() || s.SpanContext().TraceID() == id)
	})
}

// waitChild returns the first ended span of the kind named name whose
// parent is parent.
func (l *spanLog) waitChild(t *testing.T, parent trace.SpanContext, kind trace.SpanKind, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	return l.waitFor(t, fmt.Sprintf("%s span %q, child of %s", kind, name, parent.SpanID()), func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == name && s.SpanKind() == kind &&
			s.SpanContext().TraceID() == parent.TraceID() && s.Parent().SpanID() == parent.SpanID()
	})
}

// waitFor returns the first ended span that matches, waiting for it.
func (l *spanLog) waitFor(t *testing.T, what string, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		l.mu.Lock()
		changed, spans := l.changed, slices.Clone(l.spans)
		l.mu.Unlock()
		if i := slices.IndexFunc(spans, match); i >= 0 {
			return spans[i]
		}
		select {
		case <-changed:
		case <-timeout:
			var names []string
			for _, s := range spans {
				names = append(names, fmt.Sprintf("%s %s %s", s.SpanKind(), s.Name(), s.SpanContext().TraceID()))
			}
			t.Fatalf("no %s ended within a minute; ended spans: %q", what, names)
		}
	}
}

// wantChild checks that child's parent is parent, in parent's trace.
func wantChild(t *testing.T, parent, child sdktrace.ReadOnlySpan) {
	t.Helper()
	if got, want := child.SpanContext().TraceID(), parent.SpanContext().TraceID(); got != want {
		t.Errorf("span %q has trace id %s; want %s, that of %q", child.Name(), got, want, parent.Name())
	}
	if got, want := child.Parent().SpanID(), parent.SpanContext().SpanID(); got != want {
		t.Errorf("span %q has parent %s; want %q (%s)", child.Name(), got, parent.Name(), want)
	}
}

// uploadClassifier registers a small ONNX classifier as version 1 of model.
func uploadClassifier(t *testing.T, r running, model string) {
	t.Helper()
	stream, err := registrypb.NewRegistryServiceClient(r.grpc).CreateVersion(bearerCtx(t.Context(), r.admin))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{
		Model: model, Labels: []string{"a", "b", "c"},
		InputSpec: &registrypb.InputSpec{Channels: 3, Height: 8, Width: 8, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.5, 0.5}},
	}}})
	stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{
		Chunk: onnxtest.Classifier{Channels: 3, Height: 8, Width: 8, Classes: 3}.Bytes()}})
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("CreateVersion(%s) = %v", model, err)
	}
}

const predictSpan = "shoal.inference.v1.InferenceService/Predict"

// TestTracePredict: a REST prediction is one trace, from the HTTP server's
// span (named by its route) through the gateway's gRPC call to the
// Inference service's span; a caller's traceparent is continued.
func TestTracePredict(t *testing.T) {
	cfg := defaults(t)
	spans := newSpanLog()
	cfg.Tracing.Processor = spans
	cfg.LogLevel = "info"
	var logs lockedBuffer
	p := apptest.Start(t, cfg, &logs)
	r := running{grpc: p.Conn, addr: p.GRPCAddr, http: p.HTTPURL, stop: p.Stop, admin: p.Admin}
	uploadClassifier(t, r, "fish")
	img := imagingtest.PNG(11, 7, 3)

	if code, body := postImage(t, http.DefaultClient, r.http+"/predict?model=fish&version=1", img); code != http.StatusOK {
		t.Fatalf("POST /predict = %d %s", code, body)
	}
	root := spans.wait(t, trace.TraceID{}, trace.SpanKindServer, "POST /predict")
	if root.Parent().IsValid() {
		t.Errorf("POST /predict without traceparent: span parent %s; want a new trace", root.Parent().SpanID())
	}
	id := root.SpanContext().TraceID()
	call := spans.wait(t, id, trace.SpanKindClient, predictSpan)
	wantChild(t, root, call)
	wantChild(t, call, spans.wait(t, id, trace.SpanKindServer, predictSpan))

	// A caller's trace goes on through Shoal.
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	traceparent := fmt.Sprintf("00-%s-%s-01", parent.TraceID(), parent.SpanID())
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "x.png")
	fw.Write(img)
	mw.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.http+"/predict?model=fish&version=1", &form)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /predict (traceparent %s) = %d", traceparent, resp.StatusCode)
	}
	root = spans.wait(t, parent.TraceID(), trace.SpanKindServer, "POST /predict")
	if root.Parent().SpanID() != parent.SpanID() {
		t.Errorf("POST /predict (traceparent %s): span parent %s; want %s", traceparent, root.Parent().SpanID(), parent.SpanID())
	}
	spans.wait(t, parent.TraceID(), trace.SpanKindServer, predictSpan)
	// The call's log line names its trace.
	if want := "trace_id=" + parent.TraceID().String(); !strings.Contains(logs.String(), want) {
		t.Errorf("the process's log holds no line with %s:\n%s", want, logs.String())
	}

	// A route with a name in its path is named by its template.
	req, err = http.NewRequestWithContext(t.Context(), http.MethodGet, r.http+"/v1/models/fish", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.admin)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans.wait(t, trace.TraceID{}, trace.SpanKindServer, "GET /v1/models/{name=*}")
}

// TestTraceTrainingJob: a training job runs in StartTraining's trace, long
// after the call returned, also when a restarted process resumes it: each
// run's trainer.job span is a child of the call's server span, and the
// job's calls of Dataset and Registry are children of a trainer.job span.
func TestTraceTrainingJob(t *testing.T) {
	cfg := defaults(t)
	spans := newSpanLog()
	cfg.Tracing.Processor = spans
	r := start(t, cfg)
	ctx := bearerCtx(t.Context(), r.admin)
	ds := datasetpb.NewDatasetServiceClient(r.grpc)
	if _, err := ds.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "shapes"}); err != nil {
		t.Fatalf("CreateDataset(shapes) = %v", err)
	}
	up, err := ds.UploadImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	up.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: "shapes"}}})
	seed := 0
	for _, split := range []datasetpb.Split{datasetpb.Split_SPLIT_TRAIN, datasetpb.Split_SPLIT_TEST} {
		for _, label := range []string{"a", "b"} {
			for i := range 4 {
				seed++
				up.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
					Split: split, Label: label, FileName: fmt.Sprintf("%s-%d.png", label, i), Content: imagingtest.PNG(28, 28, seed),
				}}})
			}
		}
	}
	if _, err := up.CloseAndRecv(); err != nil {
		t.Fatalf("UploadImages(shapes) = %v", err)
	}
	if _, err := ds.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: "shapes"}); err != nil {
		t.Fatalf("CreateSnapshot(shapes) = %v", err)
	}
	started, err := trainerpb.NewTrainerServiceClient(r.grpc).StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{
		Dataset: "shapes", SnapshotVersion: 1, Model: "shapes", Epochs: 20, BatchSize: 4, Seed: 1,
		Promotion: trainerpb.PromotionPolicy_PROMOTION_POLICY_ALWAYS,
	}})
	if err != nil {
		t.Fatalf("StartTraining() = %v", err)
	}
	id := started.GetJob().GetId()

	// The process stops after the job's first epoch and starts again on
	// the same storage: the job resumes from its checkpoint.
	watchJob(t, r, id, func(ev *trainerpb.WatchJobResponse) bool { return ev.GetEpoch() != nil })
	if err := r.stop(); err != nil {
		t.Fatalf("stopping the process mid-job: Run() = %v", err)
	}
	r = start(t, cfg)
	last := watchJob(t, r, id, func(*trainerpb.WatchJobResponse) bool { return false })
	if st := last.GetState().GetState(); st != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("the job ended with %v; want SUCCEEDED", last)
	}

	call := spans.wait(t, trace.TraceID{}, trace.SpanKindServer, "shoal.trainer.v1.TrainerService/StartTraining")
	first := spans.waitChild(t, call.SpanContext(), trace.SpanKindInternal, "trainer.job")
	resumed := spans.waitFor(t, "the resumed trainer.job span", func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == "trainer.job" && s.SpanContext().SpanID() != first.SpanContext().SpanID()
	})
	wantChild(t, call, resumed)
	spans.waitChild(t, first.SpanContext(), trace.SpanKindClient, "shoal.dataset.v1.DatasetService/ReadSnapshot")
	for _, name := range []string{
		"shoal.dataset.v1.DatasetService/ReadSnapshot",
		"shoal.registry.v1.RegistryService/CreateVersion",
		"shoal.registry.v1.RegistryService/SetAlias",
	} {
		client := spans.waitChild(t, resumed.SpanContext(), trace.SpanKindClient, name)
		spans.waitChild(t, client.SpanContext(), trace.SpanKindServer, name)
	}
}

// watchJob follows job id until done says so or the job ends; it returns
// the last event read.
func watchJob(t *testing.T, r running, id string, done func(*trainerpb.WatchJobResponse) bool) *trainerpb.WatchJobResponse {
	t.Helper()
	stream, err := trainerpb.NewTrainerServiceClient(r.grpc).WatchJob(bearerCtx(t.Context(), r.admin), &trainerpb.WatchJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	var last *trainerpb.WatchJobResponse
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return last // the stream ends after the final state
		}
		if err != nil {
			t.Fatalf("WatchJob(%s) = %v", id, err)
		}
		if last = ev; done(ev) {
			return last
		}
	}
}

// TestTraceSplitDeployment: in a split deployment, a call to the gateway's
// gRPC port (forwarded to the services' process) and a REST prediction
// each make one trace across both processes, continuing the caller's.
func TestTraceSplitDeployment(t *testing.T) {
	spans := newSpanLog()
	services, gw := splitPairWith(t, func(cfg *app.Config) { cfg.Tracing.Processor = spans })
	uploadClassifier(t, services, "fish")

	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb8},
		TraceFlags: trace.FlagsSampled,
	})
	traceparent := fmt.Sprintf("00-%s-%s-01", parent.TraceID(), parent.SpanID())
	ctx := metadata.AppendToOutgoingContext(bearerCtx(t.Context(), gw.admin), "traceparent", traceparent)
	if _, err := registrypb.NewRegistryServiceClient(gw.grpc).ListModels(ctx, &registrypb.ListModelsRequest{}); err != nil {
		t.Fatalf("ListModels through the gateway = %v", err)
	}
	const listModels = "shoal.registry.v1.RegistryService/ListModels"
	// Both processes record into spans: the gateway's server span is the
	// caller's child, the owner's that of the gateway's forwarded call.
	forwarded := spans.waitChild(t, parent, trace.SpanKindServer, listModels)
	call := spans.waitChild(t, forwarded.SpanContext(), trace.SpanKindClient, listModels)
	spans.waitChild(t, call.SpanContext(), trace.SpanKindServer, listModels)

	if code, body := postImage(t, http.DefaultClient, gw.http+"/predict?model=fish&version=1", imagingtest.PNG(11, 7, 3)); code != http.StatusOK {
		t.Fatalf("POST /predict at the gateway = %d %s", code, body)
	}
	root := spans.wait(t, trace.TraceID{}, trace.SpanKindServer, "POST /predict")
	call = spans.wait(t, root.SpanContext().TraceID(), trace.SpanKindClient, predictSpan)
	wantChild(t, root, call)
	wantChild(t, call, spans.wait(t, root.SpanContext().TraceID(), trace.SpanKindServer, predictSpan))
}

// lockedBuffer is a log destination the test reads while the process
// writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTraceThroughUntracedGateway: a process with --tracing.exporter=none
// keeps no spans but passes the caller's trace on, so the services behind
// a gateway that does not trace continue the caller's trace.
func TestTraceThroughUntracedGateway(t *testing.T) {
	spans := newSpanLog()
	services, gw := splitPairWith(t, func(cfg *app.Config) {
		if cfg.Target != app.Gateway {
			cfg.Tracing.Processor = spans
		}
	})
	uploadClassifier(t, services, "fish")
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb9},
		TraceFlags: trace.FlagsSampled,
	})
	traceparent := fmt.Sprintf("00-%s-%s-01", parent.TraceID(), parent.SpanID())
	ctx := metadata.AppendToOutgoingContext(bearerCtx(t.Context(), gw.admin), "traceparent", traceparent)
	if _, err := registrypb.NewRegistryServiceClient(gw.grpc).ListModels(ctx, &registrypb.ListModelsRequest{}); err != nil {
		t.Fatalf("ListModels through the gateway = %v", err)
	}
	// The gateway's none provider makes no span of its own: the owner's
	// span is the caller's child.
	spans.waitChild(t, parent, trace.SpanKindServer, "shoal.registry.v1.RegistryService/ListModels")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.http+"/v1/models/fish", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+gw.admin)
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans.waitChild(t, parent, trace.SpanKindServer, "shoal.registry.v1.RegistryService/GetModel")
}
