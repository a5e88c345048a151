package inference

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"
)

// metrics are the service's Prometheus series, per model and version.
type metrics struct {
	requests   *prometheus.CounterVec
	queue      *prometheus.HistogramVec
	batchSize  *prometheus.HistogramVec
	preprocess *prometheus.HistogramVec
	compute    *prometheus.HistogramVec
	// The memory budget: each loaded version's bytes, their total (those
	// unloading included), the budget, and the versions unloaded for it.
	loadedBytes *prometheus.GaugeVec
	// admissionLimit is each version's bound on images taken in at once.
	admissionLimit *prometheus.GaugeVec
	resident       prometheus.Gauge
	budget         prometheus.Gauge
	budgetUnloads  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	// Latency buckets from 100µs to ~3s: a small model's batch computes in
	// well under a millisecond, a ResNet's in tens to hundreds.
	latency := prometheus.ExponentialBuckets(0.0001, 2.5, 12)
	labels := []string{"model", "version"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_inference_requests_total",
			Help: "Predict and ModelInfer requests by model, version (empty when none was resolved) and gRPC code.",
		}, []string{"model", "version", "code"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shoal_inference_queue_wait_seconds", Help: "Time requests waited in the batch queue.", Buckets: latency,
		}, labels),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shoal_inference_batch_size", Help: "Images per batch run in ONNX Runtime (before padding).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}, labels),
		preprocess: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shoal_inference_preprocess_seconds", Help: "Time decoding and preprocessing a request's images.", Buckets: latency,
		}, labels),
		compute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shoal_inference_compute_seconds", Help: "ONNX Runtime time per batch.", Buckets: latency,
		}, labels),
		loadedBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shoal_inference_loaded_bytes",
			Help: "Memory a loaded version holds, measured at load: its ONNX Runtime sessions' native allocations (weights, arenas) and buffers.",
		}, labels),
		admissionLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shoal_inference_admission_limit",
			Help: "Images a loaded version takes in at once (being decoded, queued or computed) before refusing requests with RESOURCE_EXHAUSTED: " +
				"inference.queue-size plus a batch per session, or what the latency target adapted it to.",
		}, labels),
		resident: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_inference_resident_bytes", Help: "Memory all loaded versions hold, those still unloading included.",
		}),
		budget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shoal_inference_memory_budget_bytes", Help: "The memory budget for loaded versions (--inference.memory-budget; 0: none).",
		}),
		budgetUnloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_inference_budget_unloads_total", Help: "Versions unloaded to stay within the memory budget.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.queue, m.batchSize, m.preprocess, m.compute,
		m.loadedBytes, m.admissionLimit, m.resident, m.budget, m.budgetUnloads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// request counts one finished request.
func (m *metrics) request(model string, version int64, err error) {
	v := ""
	if version > 0 {
		v = strconv.FormatInt(version, 10)
	}
	m.requests.WithLabelValues(model, v, status.Code(err).String()).Inc()
}

// forget drops a retired version's histograms so series do not pile up
// over many promotions.
func (m *metrics) forget(model string, version int64) {
	v := strconv.FormatInt(version, 10)
	for _, h := range []*prometheus.HistogramVec{m.queue, m.batchSize, m.preprocess, m.compute} {
		h.DeleteLabelValues(model, v)
	}
	m.loadedBytes.DeleteLabelValues(model, v)
	m.admissionLimit.DeleteLabelValues(model, v)
}
