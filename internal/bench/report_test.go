package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/onnxrt"
)

func TestMarkdownRatios(t *testing.T) {
	narrow := SessionSettings{Sessions: 2, SessionOptions: onnxrt.SessionOptions{IntraOpThreads: 1}}
	wide := SessionSettings{Sessions: 1, SessionOptions: onnxrt.SessionOptions{IntraOpThreads: 2}}
	r := &Report{Model: "m", Version: 1, Architecture: "a", Input: "1x2x2", MaxBatch: 8, OIPImages: 8, point: time.Second,
		ORT: []ORTPoint{{Batch: 1, ImagesPerSecond: 100}, {Batch: 8, ImagesPerSecond: 200, CPU: 90 * time.Microsecond, Settings: narrow},
			{Batch: 16, ImagesPerSecond: 400}},
		WideThreads:       2,
		WideORT:           []ORTPoint{{Batch: 1, ImagesPerSecond: 150, BatchLatency: 8 * time.Millisecond, Settings: wide}},
		ModelInfer:        []Stats{{Concurrency: 1, ImagesPerSecond: 90}, {Concurrency: 8, ImagesPerSecond: 180, ServerCPU: 100 * time.Microsecond, ClientCPU: 40 * time.Microsecond}},
		ModelInferBatched: []Stats{{Concurrency: 1, ImagesPerSecond: 190}},
		Predict: []Stats{{Concurrency: 1, ImagesPerSecond: 50, P50: 10 * time.Millisecond, Preprocess: 180 * time.Microsecond},
			{Concurrency: 32, ImagesPerSecond: 160, P99: 30 * time.Millisecond}},
		REST:  []Stats{{Concurrency: 8, ImagesPerSecond: 100}},
		Floor: Stats{Concurrency: 32, Requests: 1000, ImagesPerSecond: 5000, ServerCPU: 60 * time.Microsecond, ClientCPU: 30 * time.Microsecond},
		Rounds: []Round{
			{ORT: 200, Served: []RoundPoint{{"OIP ModelInfer", 8, 180}}},
			{ORT: 100, Served: []RoundPoint{{"OIP ModelInfer", 8, 95}}},
			{ORT: 200, Served: []RoundPoint{{"OIP ModelInfer", 8, 100}}},
		},
	}
	var b strings.Builder
	r.Markdown(&b)
	out := b.String()
	for _, want := range []string{
		"(200.0 images/s at batch 8, 2 session(s) × 1 thread(s))", // batch 16 is beyond the server's max batch
		"| 1 | 150.0 | 8.00 | – |",                                // (a'), the wide session
		"| gRPC Predict | 1.25× (10.00 / 8.00 ms) | 80% (160.0 / 200.0) | – | – |",
		"- (b) OIP ModelInfer at saturation: 90% (180.0 images/s at concurrency 8)",
		"- (b') OIP ModelInfer, 8 images per request at saturation: 95%",
		"- (c) gRPC Predict at saturation: 80% (160.0 images/s at concurrency 32); p99 at concurrency 32 = 3.0× the single-request latency (30.00 ms / 10.00 ms)",
		"| OIP ModelInfer | 8 | 90% | 50–95% | 200.0 |",
		"| 8 | 200.0 | 0.00 | 90.0 |",
		"| 8 | 180.0 | 0.00 | 0.00 | 100.0 | 40.0 | 0 |",
		"- (b) OIP ModelInfer: 100.0 µs, bare's is 90% of it (load generator: 40.0 µs per image)",
		// The floor: 90 µs a call against bare's 90 µs an image.
		"CPU per call 60.0 µs of the server's and 30.0 µs of the load generator's",
		"- (b) OIP ModelInfer, 1 image a call: 50%",
		"- (b') OIP ModelInfer, 8 images a call: 89%",        // 90 / (90 + 90/8)
		"- (c) gRPC Predict, a JPEG decoded in 0.18 ms: 25%", // 90 / (90 + 90 + 180)
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown() lacks %q; got:\n%s", want, out)
		}
	}
}
