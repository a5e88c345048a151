package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/fuzztest"
)

// fakeInference answers every Predict with one label and keeps the request.
type fakeInference struct {
	inferencepb.InferenceServiceClient
	got *inferencepb.PredictRequest
}

func (f *fakeInference) Predict(_ context.Context, req *inferencepb.PredictRequest, _ ...grpc.CallOption) (*inferencepb.PredictResponse, error) {
	f.got = req
	return &inferencepb.PredictResponse{Model: "fish", Version: 1, Results: []*inferencepb.Classification{
		{Labels: []*inferencepb.LabelScore{{Label: "Shark", Probability: 0.9}}},
	}}, nil
}

// FuzzPredictForm posts any body under any content type to POST /predict.
// The handler may not panic; it answers 200 with the original API's JSON
// having passed exactly one image of at most maxPredictUpload bytes to
// Predict, or 4xx with a JSON error, never 5xx; and its heap use is
// bounded by the body, not by what the body's headers claim.
func FuzzPredictForm(f *testing.F) {
	mux := runtime.NewServeMux()
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		defer fuzztest.Watchdog(5 * time.Second)()
		client := &fakeInference{}
		req := httptest.NewRequest(http.MethodPost, "/predict?top_k=3", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		before := fuzztest.Allocated()
		predictHandler(mux, client)(rec, req, nil)
		if req.MultipartForm != nil {
			_ = req.MultipartForm.RemoveAll() // as net/http's server does
		}
		if used, limit := fuzztest.Allocated()-before, 64*uint64(len(body)+len(contentType))+2<<20; used > limit {
			t.Fatalf("POST /predict with %d bytes allocated %d bytes; want at most %d", len(body), used, limit)
		}
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("POST /predict = %d %q; want a JSON body", rec.Code, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK:
			if client.got == nil || len(client.got.GetImages()) != 1 || len(client.got.GetImages()[0]) > maxPredictUpload {
				t.Fatalf("POST /predict = 200 after Predict(%d images); want one image of at most %d bytes", len(client.got.GetImages()), maxPredictUpload)
			}
			if answer["prediction"] != "Shark" {
				t.Fatalf("POST /predict = 200 %s; want the prediction", rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if client.got != nil {
				t.Fatalf("POST /predict = %d after calling Predict; want the form refused before", rec.Code)
			}
		default:
			t.Fatalf("POST /predict = %d %s; want 200 or 4xx", rec.Code, rec.Body)
		}
	})
}

// TestWriteFuzzSeeds rebuilds the seed corpora of this package's fuzz
// targets (see package fuzztest).
func TestWriteFuzzSeeds(t *testing.T) {
	writeUploadSeeds(t)
	form := func(fields map[string]string, file []byte, fileField string) (string, []byte) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		_ = w.SetBoundary("fuzzboundary")
		for k, v := range fields {
			_ = w.WriteField(k, v)
		}
		if file != nil {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="`+fileField+`"; filename="fish.png"`)
			h.Set("Content-Type", "image/png")
			p, _ := w.CreatePart(h)
			_, _ = p.Write(file)
		}
		_ = w.Close()
		return w.FormDataContentType(), b.Bytes()
	}
	png := []byte("\x89PNG\r\n\x1a\nnot really")
	seeds := []fuzztest.Seed{}
	add := func(name, ct string, body []byte) {
		seeds = append(seeds, fuzztest.Seed{Name: name, Args: []any{ct, body}})
	}
	ct, body := form(nil, png, "file")
	add("file", ct, body)
	ct, body = form(map[string]string{"model": "fish", "version": "2", "top_k": "1"}, png, "file")
	add("file-and-fields", ct, body)
	ct, body = form(map[string]string{"version": "two"}, png, "file")
	add("bad-version", ct, body)
	ct, body = form(nil, png, "image")
	add("wrong-field", ct, body)
	ct, body = form(nil, []byte{}, "file")
	add("empty-file", ct, body)
	add("truncated", ct, body[:len(body)/2])
	add("no-boundary", "multipart/form-data", body)
	add("json", "application/json", []byte(`{"images":["aGVsbG8="]}`))
	add("urlencoded", "application/x-www-form-urlencoded", []byte("file=abc&top_k=2"))
	fuzztest.WriteSeeds(t, "FuzzPredictForm", seeds)
}
