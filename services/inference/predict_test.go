package inference_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/services/inference"
)

func TestPredict(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersion(t, "pets", 2, newTestModel(3))
	e.reg.setAlias("pets", "production", 1)
	e.reg.setAlias("pets", "staging", 2)

	jpeg, png := imagingtest.JPEG(30, 20, 1), imagingtest.PNG(7, 9, 2)
	tests := []struct {
		name        string
		req         *inferencepb.PredictRequest
		wantVersion int64
		wantLabels  int
	}{
		{"default model and alias", &inferencepb.PredictRequest{Images: [][]byte{jpeg}}, 1, 3},
		{"named alias", &inferencepb.PredictRequest{Model: "pets", Alias: "staging", Images: [][]byte{png}}, 2, 3},
		{"version", &inferencepb.PredictRequest{Model: "pets", Version: 2, Images: [][]byte{jpeg, png}}, 2, 3},
		{"top 1", &inferencepb.PredictRequest{Images: [][]byte{png, jpeg, imagingtest.GIF(5, 5, 3)}, TopK: 1}, 1, 1},
		{"top_k above the classes", &inferencepb.PredictRequest{Images: [][]byte{imagingtest.BMP(3, 3, 4)}, TopK: 50}, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.client.Predict(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Predict() = %v", err)
			}
			if resp.GetModel() != "pets" || resp.GetVersion() != tt.wantVersion {
				t.Fatalf("Predict() served %s v%d; want pets v%d", resp.GetModel(), resp.GetVersion(), tt.wantVersion)
			}
			if err := e.check(t, resp, tt.req.GetImages()); err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.GetResults() {
				if len(r.GetLabels()) != tt.wantLabels {
					t.Fatalf("got %d labels; want %d", len(r.GetLabels()), tt.wantLabels)
				}
			}
			tm := resp.GetTimings()
			if tm.GetBatchSize() < int32(len(tt.req.GetImages())) && tm.GetBatchSize() < 1 || tm.GetTotal().AsDuration() <= 0 || tm.GetCompute().AsDuration() <= 0 {
				t.Fatalf("timings = %v; want a batch size and positive durations", tm)
			}
		})
	}
}

func TestPredictErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.reg.setAlias("pets", "production", 1)
	good := imagingtest.PNG(4, 4, 1)
	truncated := good[:len(good)-20]
	tests := []struct {
		name string
		req  *inferencepb.PredictRequest
		code codes.Code
		msg  string
	}{
		{"no images", &inferencepb.PredictRequest{}, codes.InvalidArgument, "images: must contain at least 1 item"},
		{"not an image", &inferencepb.PredictRequest{Images: [][]byte{good, []byte("hello")}}, codes.InvalidArgument, "image 1: invalid image: not an image"},
		{"truncated", &inferencepb.PredictRequest{Images: [][]byte{truncated}}, codes.InvalidArgument, "image 0: invalid image"},
		{"empty image", &inferencepb.PredictRequest{Images: [][]byte{{}}}, codes.InvalidArgument, "empty file"},
		{"too many pixels", &inferencepb.PredictRequest{Images: [][]byte{imagingtest.PNGBomb(100000, 100000)}}, codes.InvalidArgument, "more than the limit"},
		{"negative top_k", &inferencepb.PredictRequest{Images: [][]byte{good}, TopK: -1}, codes.InvalidArgument, "topK = -1: must be greater than or equal to 0"},
		{"negative version", &inferencepb.PredictRequest{Model: "pets", Version: -2, Images: [][]byte{good}}, codes.InvalidArgument, "version = -2: must be greater than or equal to 0"},
		{"unknown model", &inferencepb.PredictRequest{Model: "nope", Images: [][]byte{good}}, codes.NotFound, `model "nope" not found`},
		{"unknown version", &inferencepb.PredictRequest{Model: "pets", Version: 9, Images: [][]byte{good}}, codes.NotFound, "no version 9"},
		{"unknown alias", &inferencepb.PredictRequest{Model: "pets", Alias: "canary", Images: [][]byte{good}}, codes.NotFound, `no alias "canary"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.Predict(t.Context(), tt.req)
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Fatalf("Predict() = %v; want %v containing %q", err, tt.code, tt.msg)
			}
		})
	}
}

func TestNothingToServeIsUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0)) // no production alias
	_, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Images: [][]byte{imagingtest.PNG(2, 2, 1)}})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Predict() with no production version = %v; want Unavailable", err)
	}
	ready, err := e.oip.ServerReady(t.Context(), &oippb.ServerReadyRequest{})
	if err != nil || ready.GetReady() {
		t.Fatalf("ServerReady() = %v, %v; want false", ready, err)
	}
}

func TestBadArtifactIsFailedPrecondition(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersionBytes(t, "pets", 1, newTestModel(0), []byte("not onnx"))
	m := newTestModel(0)
	m.spec.Height = 5 // disagrees with the graph's 4x4 input
	e.addVersion(t, "pets", 2, m)
	for _, v := range []int64{1, 2} {
		_, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "pets", Version: v, Images: [][]byte{imagingtest.PNG(2, 2, 1)}})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("Predict(v%d) = %v; want FailedPrecondition", v, err)
		}
	}
}

// TestLayoutsAndFixedBatch serves an NHWC graph and one whose batch
// dimension is fixed at 1 under concurrent load: the batcher never gives
// ORT a batch the graph cannot take.
func TestLayoutsAndFixedBatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	nhwc := newTestModel(1)
	nhwc.c.NHWC = true
	nhwc.spec.Layout = registrypb.TensorLayout_TENSOR_LAYOUT_NHWC
	e.addVersion(t, "pets", 1, nhwc)
	fixed := newTestModel(2)
	fixed.c.Batch = 1
	e.addVersion(t, "pets", 2, fixed)
	probs := newTestModel(5)
	probs.c.Softmax = true
	probs.spec.OutputIsProbabilities = true
	e.addVersion(t, "pets", 3, probs)
	hammer(t, e, 16, 5, func(i int) *inferencepb.PredictRequest {
		return &inferencepb.PredictRequest{Model: "pets", Version: int64(1 + i%3), Images: [][]byte{imagingtest.PNG(5+i%4, 6, i)}}
	})
}

func TestConcurrentPredict(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *inference.Config) { c.MaxBatchSize = 8 }})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.reg.setAlias("pets", "production", 1)
	hammer(t, e, 64, 10, func(i int) *inferencepb.PredictRequest {
		images := make([][]byte, 1+i%3)
		for j := range images {
			images[j] = imagingtest.PNG(3+j, 4+i%5, i*10+j)
		}
		return &inferencepb.PredictRequest{Images: images}
	})
}

// hammer sends callers×each requests concurrently and checks every answer
// against the Go computation of the version it names.
func hammer(t *testing.T, e *env, callers, each int, req func(i int) *inferencepb.PredictRequest) []int64 {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions []int64
	)
	for c := range callers {
		wg.Go(func() {
			for r := range each {
				in := req(c*each + r)
				resp, err := e.client.Predict(context.Background(), in)
				if err != nil {
					t.Errorf("Predict() = %v", err)
					return
				}
				if err := e.check(t, resp, in.GetImages()); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				versions = append(versions, resp.GetVersion())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return versions
}

// TestRunsWholeBatches checks that a graph with a symbolic batch dimension
// (what the Trainer exports) runs a request's images as one ONNX Runtime
// batch, up to --inference.max-batch-size, while a graph with a fixed batch
// of 1 runs them one by one. One session: nothing else runs in between.
func TestRunsWholeBatches(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *inference.Config) { c.Sessions = 1; c.MaxBatchSize = 8 }})
	e.addVersion(t, "pets", 1, newTestModel(0))
	fixed := newTestModel(2)
	fixed.c.Batch = 1
	e.addVersion(t, "pets", 2, fixed)
	tests := []struct {
		version   int64
		images    int
		wantBatch int32
	}{
		{1, 1, 1},
		{1, 7, 7},
		{1, 8, 8},
		{1, 12, 8}, // 8 + 4
		{2, 3, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("v%d %d images", tt.version, tt.images), func(t *testing.T) {
			req := &inferencepb.PredictRequest{Model: "pets", Version: tt.version}
			for i := range tt.images {
				req.Images = append(req.Images, imagingtest.PNG(4, 4, i))
			}
			resp, err := e.client.Predict(t.Context(), req)
			if err != nil {
				t.Fatalf("Predict() = %v", err)
			}
			if err := e.check(t, resp, req.GetImages()); err != nil {
				t.Fatal(err)
			}
			if got := resp.GetTimings().GetBatchSize(); got != tt.wantBatch {
				t.Errorf("Predict(%d images to v%d) ran in a batch of %d; want %d", tt.images, tt.version, got, tt.wantBatch)
			}
		})
	}
	// The batch-size histogram saw the same batches: 1+7+8+(8+4) images in
	// 5 batches for v1, 3 batches of 1 for v2.
	for version, want := range map[string][2]float64{"1": {5, 28}, "2": {3, 3}} {
		n, sum := batchSizes(t, e, "pets", version)
		if n != want[0] || sum != want[1] {
			t.Errorf("shoal_inference_batch_size{pets v%s}: %v batches, %v images; want %v, %v", version, n, sum, want[0], want[1])
		}
	}
}

// batchSizes reads the batch-size histogram of one version: its count and sum.
func batchSizes(t *testing.T, e *env, model, version string) (count, sum float64) {
	t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "shoal_inference_batch_size" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] == model && labels["version"] == version {
				return float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}
