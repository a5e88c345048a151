package gateway

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
)

// heldInference holds each Predict until release is closed, saying on
// entered that one arrived.
type heldInference struct {
	inferencepb.InferenceServiceClient
	entered chan struct{}
	release chan struct{}
}

func (h *heldInference) Predict(ctx context.Context, _ *inferencepb.PredictRequest, _ ...grpc.CallOption) (*inferencepb.PredictResponse, error) {
	h.entered <- struct{}{}
	<-h.release
	return &inferencepb.PredictResponse{Model: "fish", Version: 1, Results: []*inferencepb.Classification{
		{Labels: []*inferencepb.LabelScore{{Label: "Shark", Probability: 0.9}}}}}, nil
}

// TestPredictBound: with as many predictions in flight as the bound, the
// next is answered 429 with Retry-After at once, and once one ends the
// next is forwarded again.
func TestPredictBound(t *testing.T) {
	const most = 2
	client := &heldInference{entered: make(chan struct{}), release: make(chan struct{})}
	h := predictHandler(runtime.NewServeMux(runtime.WithErrorHandler(retryAfterOnOverload)), client, most)
	post := func() *httptest.ResponseRecorder {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		fw, err := w.CreateFormFile("file", "a.png")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write([]byte("not decoded here"))
		_ = w.Close()
		req := httptest.NewRequest(http.MethodPost, "/predict", &b)
		req.Header.Set("Content-Type", w.FormDataContentType())
		rec := httptest.NewRecorder()
		h(rec, req, nil)
		return rec
	}
	held := make(chan *httptest.ResponseRecorder, most)
	for range most {
		go func() { held <- post() }()
		<-client.entered
	}
	if rec := post(); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("POST /predict with %d in flight = %d, Retry-After %q; want 429 with Retry-After", most, rec.Code, rec.Header().Get("Retry-After"))
	}
	close(client.release)
	for range most {
		if rec := <-held; rec.Code != http.StatusOK {
			t.Errorf("POST /predict (held) = %d %s; want 200", rec.Code, rec.Body)
		}
	}
	go func() { <-client.entered }()
	if rec := post(); rec.Code != http.StatusOK {
		t.Errorf("POST /predict after the held ones ended = %d %s; want 200", rec.Code, rec.Body)
	}
}
