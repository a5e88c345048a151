package inference_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.reg.setAlias("pets", "production", 1)
	for range 3 {
		if _, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Images: [][]byte{imagingtest.PNG(3, 3, 1)}}); err != nil {
			t.Fatalf("Predict() = %v", err)
		}
	}
	e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "pets", Version: 1, Images: [][]byte{[]byte("x")}})
	e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "nope", Images: [][]byte{[]byte("x")}})

	want := `
# HELP shoal_inference_requests_total Predict and ModelInfer requests by model, version (empty when none was resolved) and gRPC code.
# TYPE shoal_inference_requests_total counter
shoal_inference_requests_total{code="InvalidArgument",model="pets",version=""} 1
shoal_inference_requests_total{code="NotFound",model="nope",version=""} 1
shoal_inference_requests_total{code="OK",model="pets",version="1"} 3
`
	if err := testutil.GatherAndCompare(e.metrics, strings.NewReader(want), "shoal_inference_requests_total"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shoal_inference_queue_wait_seconds", "shoal_inference_batch_size",
		"shoal_inference_preprocess_seconds", "shoal_inference_compute_seconds"} {
		n, err := testutil.GatherAndCount(e.metrics, name)
		if err != nil || n != 1 {
			t.Errorf("%s: %d series, %v; want 1 (pets v1)", name, n, err)
		}
	}
}
