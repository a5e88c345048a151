package client_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"

	"github.com/shoalml/shoal/client"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// A rate limit's refusal is ErrResourceExhausted with the server's
// Retry-After; a call past its deadline matches context.DeadlineExceeded;
// a stream's failure is an *Error too.
func TestErrorKinds(t *testing.T) {
	cfg := defaults(t)
	cfg.Gate.RateLimits = "predict=0.01:1" // one call, then one per 100 s
	s := serve(t, cfg)
	anon := dial(t, s.addr)
	ctx := t.Context()
	image := [][]byte{imagingtest.PNG(28, 28, 1)}

	if _, err := anon.Predict(ctx, image, client.Model("nope")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Predict(model nope) = %v; want ErrNotFound", err)
	}
	_, err := anon.Predict(ctx, image, client.Model("nope"))
	e, ok := errors.AsType[*client.Error](err)
	if !errors.Is(err, client.ErrResourceExhausted) || !ok || e.RetryAfter < time.Second {
		t.Errorf("Predict() over the rate limit = %#v; want ErrResourceExhausted with a RetryAfter", err)
	}

	past, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := anon.Predict(past, image); !errors.Is(err, context.DeadlineExceeded) || status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Predict() past its deadline = %v; want context.DeadlineExceeded", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := anon.Predict(cancelled, image); !errors.Is(err, context.Canceled) {
		t.Errorf("Predict() cancelled = %v; want context.Canceled", err)
	}

	// The raw generated clients' streams convert their errors as well.
	admin := dial(t, s.addr, client.WithToken(s.admin))
	stream, err := admin.Dataset().UploadImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: "nope"}}})
	if _, err := stream.CloseAndRecv(); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("UploadImages(dataset nope): CloseAndRecv() = %v; want ErrNotFound", err)
	}
	imp, err := admin.Dataset().ImportImages(ctx, &datasetpb.ImportImagesRequest{Dataset: "nope",
		Source: &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: t.TempDir()}}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := imp.Recv()
		if errors.Is(err, io.EOF) {
			t.Fatalf("ImportImages(dataset nope) ended without an error")
		}
		if err != nil {
			if !errors.Is(err, client.ErrNotFound) {
				t.Errorf("ImportImages(dataset nope): Recv() = %#v; want ErrNotFound", err)
			}
			break
		}
	}
}
