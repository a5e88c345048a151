package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
)

// roundRobin spreads calls over several connections, as a fleet of
// clients would, so one HTTP/2 connection's flow control is not what is
// measured.
type roundRobin[T any] struct {
	clients []T
	next    atomic.Uint64
}

func (r *roundRobin[T]) get() T {
	return r.clients[r.next.Add(1)%uint64(len(r.clients))]
}

// PredictCall sends one image to InferenceService.Predict.
func PredictCall(conns []*grpc.ClientConn, model string, version int64, image []byte) CallFunc {
	rr := &roundRobin[inferencepb.InferenceServiceClient]{}
	for _, c := range conns {
		rr.clients = append(rr.clients, inferencepb.NewInferenceServiceClient(c))
	}
	req := &inferencepb.PredictRequest{Model: model, Version: version, Images: [][]byte{image}, TopK: 1}
	return func(ctx context.Context) (Timings, error) {
		resp, err := rr.get().Predict(ctx, req)
		if err != nil {
			return Timings{}, err
		}
		t := resp.GetTimings()
		return Timings{Preprocess: t.GetPreprocess().AsDuration(), Queue: t.GetQueue().AsDuration(),
			Compute: t.GetCompute().AsDuration(), BatchSize: int(t.GetBatchSize())}, nil
	}
}

// ModelInferCall sends images preprocessed images as one raw FP32 tensor
// [images, ...] to the Open Inference Protocol's ModelInfer. The response
// carries no timings.
func ModelInferCall(conns []*grpc.ClientConn, model string, version int64, input string, imageShape []int64, images int) CallFunc {
	rr := &roundRobin[oippb.GRPCInferenceServiceClient]{}
	for _, c := range conns {
		rr.clients = append(rr.clients, oippb.NewGRPCInferenceServiceClient(c))
	}
	n := images
	for _, d := range imageShape {
		n *= int(d)
	}
	raw := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32((i*7919)%256)/255))
	}
	req := &oippb.ModelInferRequest{
		ModelName: model, ModelVersion: fmt.Sprint(version),
		Inputs: []*oippb.ModelInferRequest_InferInputTensor{{
			Name: input, Datatype: "FP32", Shape: append([]int64{int64(images)}, imageShape...),
		}},
		RawInputContents: [][]byte{raw},
	}
	return func(ctx context.Context) (Timings, error) {
		_, err := rr.get().ModelInfer(ctx, req)
		return Timings{}, err
	}
}

// HealthCheckCall calls the standard health service, whose handler does
// next to nothing: what it costs the server and the client is the floor of
// any gRPC call to this server (the transport, protobuf, the interceptors),
// against which a call that carries images spreads its own overhead.
func HealthCheckCall(conns []*grpc.ClientConn) CallFunc {
	rr := &roundRobin[healthpb.HealthClient]{}
	for _, c := range conns {
		rr.clients = append(rr.clients, healthpb.NewHealthClient(c))
	}
	req := &healthpb.HealthCheckRequest{}
	return func(ctx context.Context) (Timings, error) {
		_, err := rr.get().Check(ctx, req)
		return Timings{}, err
	}
}

// RESTPredictCall posts one image to the gateway's POST /predict as a
// multipart upload, as the original API's clients do.
func RESTPredictCall(client *http.Client, baseURL, model string, version int64, image []byte) (CallFunc, error) {
	payload, contentType, err := predictForm(model, version, image)
	if err != nil {
		return nil, err
	}
	url := baseURL + "/predict"
	return func(ctx context.Context) (Timings, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		if err != nil {
			return Timings{}, err
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := client.Do(req)
		if err != nil {
			return Timings{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return Timings{}, err
		}
		return predictAnswer(resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}, nil
}

// predictForm is POST /predict's multipart body for one image, and its
// content type.
func predictForm(model string, version int64, image []byte) ([]byte, string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range map[string]string{"model": model, "version": fmt.Sprint(version), "top_k": "1"} {
		if err := mw.WriteField(k, v); err != nil {
			return nil, "", err
		}
	}
	fw, err := mw.CreateFormFile("file", "image.jpg")
	if err != nil {
		return nil, "", err
	}
	if _, err := fw.Write(image); err != nil {
		return nil, "", err
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return body.Bytes(), mw.FormDataContentType(), nil
}

// predictAnswer reads POST /predict's answer: its timings when it is 200,
// else an *HTTPStatusError.
func predictAnswer(code int, retryAfter string, b []byte) (Timings, error) {
	if code != http.StatusOK {
		return Timings{}, &HTTPStatusError{Code: code, RetryAfter: retryAfter, Body: string(bytes.TrimSpace(b))}
	}
	var out struct {
		Timings struct {
			Preprocess, Queue, Compute float64
			BatchSize                  int `json:"batch_size"`
		} `json:"timings_ms"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return Timings{}, fmt.Errorf("POST /predict: %w", err)
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	return Timings{Preprocess: ms(out.Timings.Preprocess), Queue: ms(out.Timings.Queue),
		Compute: ms(out.Timings.Compute), BatchSize: out.Timings.BatchSize}, nil
}
