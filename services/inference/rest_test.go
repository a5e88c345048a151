package inference_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/overload"
)

// restServer serves the gateway over conn, as the app does.
func restServer(t *testing.T, conn grpc.ClientConnInterface) *httptest.Server {
	t.Helper()
	mux, err := gateway.New(t.Context(), gateway.Conns{Inference: conn})
	if err != nil {
		t.Fatalf("gateway.New() = %v", err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func multipartBody(t *testing.T, field string, data []byte, fields map[string]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if field != "" {
		fw, _ := mw.CreateFormFile(field, "image")
		fw.Write(data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

type restPrediction struct {
	Prediction string  `json:"prediction"`
	Confidence float32 `json:"confidence"`
	TopK       []struct {
		Label       string  `json:"label"`
		Probability float32 `json:"probability"`
	} `json:"top_k"`
	Model   string `json:"model"`
	Version int64  `json:"version"`
}

func TestRESTPredict(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersion(t, "pets", 2, newTestModel(4))
	e.reg.setAlias("pets", "production", 1)
	srv := restServer(t, e.conn)
	img := imagingtest.JPEG(30, 30, 7)

	grpcResp, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Images: [][]byte{img}})
	if err != nil {
		t.Fatalf("Predict() = %v", err)
	}
	want := grpcResp.GetResults()[0].GetLabels()

	tests := []struct {
		name    string
		fields  map[string]string
		version int64
		topK    int
	}{
		{"original contract", nil, 1, 3},
		{"version and top_k", map[string]string{"model": "pets", "version": "2", "top_k": "2"}, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartBody(t, "file", img, tt.fields)
			resp, err := http.Post(srv.URL+"/predict", ct, body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got restPrediction
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("POST /predict = %d %s; want 200", resp.StatusCode, b)
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.Model != "pets" || got.Version != tt.version || len(got.TopK) != tt.topK ||
				got.Prediction != got.TopK[0].Label || got.Confidence != got.TopK[0].Probability {
				t.Fatalf("POST /predict = %+v; want pets v%d with %d labels, prediction = top label", got, tt.version, tt.topK)
			}
			if tt.version == 1 {
				for i, l := range got.TopK {
					if l.Label != want[i].GetLabel() || math.Abs(float64(l.Probability-want[i].GetProbability())) > 1e-6 {
						t.Fatalf("REST top_k[%d] = %+v; gRPC says %v", i, l, want[i])
					}
				}
			}
		})
	}

	t.Run("proto route", func(t *testing.T) {
		body := `{"images":["` + base64.StdEncoding.EncodeToString(img) + `"],"topK":1}`
		resp, err := http.Post(srv.URL+"/v1/models/pets:predict", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"label":"`+want[0].GetLabel()+`"`) {
			t.Fatalf("POST /v1/models/pets:predict = %d %s; want 200 with label %s", resp.StatusCode, b, want[0].GetLabel())
		}
	})
}

func TestRESTPredictErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.reg.setAlias("pets", "production", 1)
	srv := restServer(t, e.conn)
	tests := []struct {
		name   string
		field  string
		data   []byte
		fields map[string]string
		code   int
		msg    string
	}{
		{"not an image", "file", []byte("plain text"), nil, http.StatusBadRequest, "not an image"},
		{"no file field", "image", imagingtest.PNG(2, 2, 1), nil, http.StatusBadRequest, `unknown form field \"image\"`},
		{"bad top_k", "file", imagingtest.PNG(2, 2, 1), map[string]string{"top_k": "x"}, http.StatusBadRequest, "top_k"},
		{"negative top_k", "file", imagingtest.PNG(2, 2, 1), map[string]string{"top_k": "-1"}, http.StatusBadRequest, "top_k"},
		{"misspelt field", "file", imagingtest.PNG(2, 2, 1), map[string]string{"topK": "1"}, http.StatusBadRequest, `unknown form field or query parameter \"topK\"`},
		{"unknown model", "file", imagingtest.PNG(2, 2, 1), map[string]string{"model": "nope"}, http.StatusNotFound, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartBody(t, tt.field, tt.data, tt.fields)
			resp, err := http.Post(srv.URL+"/predict", ct, body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.msg) {
				t.Fatalf("POST /predict = %d %s; want %d containing %q", resp.StatusCode, b, tt.code, tt.msg)
			}
		})
	}
}

// overloaded is an Inference server whose queue is always full (err nil),
// or that answers err.
type overloaded struct {
	inferencepb.UnimplementedInferenceServiceServer
	err error
}

func (o overloaded) Predict(context.Context, *inferencepb.PredictRequest) (*inferencepb.PredictResponse, error) {
	if o.err != nil {
		return nil, o.err
	}
	return nil, overload.Errorf(time.Second, "queue full")
}

// An overload is 429 with Retry-After; RESOURCE_EXHAUSTED that does not ask
// to be retried (a size over a limit) is 413 without it, so that clients
// do not retry what will never pass.
func TestRESTOverloadIs429WithRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		err   error
		code  int
		retry bool
	}{
		{nil, http.StatusTooManyRequests, true},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5242880 vs. 4194304)"), http.StatusRequestEntityTooLarge, false},
	} {
		testRESTResourceExhausted(t, overloaded{err: tt.err}, tt.code, tt.retry)
	}
}

func testRESTResourceExhausted(t *testing.T, fake overloaded, code int, retry bool) {
	srv := restServer(t, grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) {
		inferencepb.RegisterInferenceServiceServer(r, fake)
	}), grpctest.Options{}).Conn)
	for _, call := range []func() (*http.Response, error){
		func() (*http.Response, error) {
			body, ct := multipartBody(t, "file", imagingtest.PNG(2, 2, 1), nil)
			return http.Post(srv.URL+"/predict", ct, body)
		},
		func() (*http.Response, error) {
			return http.Post(srv.URL+"/v1/models/m:predict", "application/json", strings.NewReader(`{"images":["AA=="]}`))
		},
	} {
		resp, err := call()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code || (resp.Header.Get("Retry-After") != "") != retry {
			t.Fatalf("%s = %d, Retry-After %q; want %d, with Retry-After %v", resp.Request.URL.Path, resp.StatusCode, resp.Header.Get("Retry-After"), code, retry)
		}
	}
}
