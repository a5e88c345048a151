package inference

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/batcher"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/overload"
)

// errBadModel marks a version that cannot be served as stored (its
// artifact or input spec), as opposed to a failure of this machine.
var errBadModel = errors.New("model version cannot be served")

// model is one model version loaded into ONNX Runtime sessions, with the
// batcher that feeds them.
type model struct {
	name    string
	version int64
	labels  []string
	spec    imaging.Spec
	// probs is true when the graph already outputs probabilities.
	probs bool
	// cls is what the sessions run: the graph's input and output and their
	// shapes.
	cls onnxrt.Classifier
	// buckets are the batch sizes ORT runs, ascending: every size up to the
	// largest batch, so no batch computes padding. A graph with a fixed
	// batch dimension has that one bucket, and smaller batches are padded.
	buckets []int
	// sessions are used one per batcher worker, so each is used by one
	// goroutine at a time; with a wide session, it is the last.
	sessions []*onnxrt.Session
	wide     bool
	// threads are the intra-op threads of each session, and native the
	// memory each holds outside the Go heap, measured as it opened.
	threads []int
	native  []int64
	// wideOnly is true when the version keeps its wide session as its only
	// one (Config.SessionLayout, chooseLayout).
	wideOnly bool
	// warm are the batch sizes warmed at load; batchCap, the largest batch
	// the batcher forms, is the smallest of them that computes about as
	// fast per image as any (see batchCap).
	warm     []int
	batchCap int
	batcher  *batcher.Batcher[[]float32, []float32]
	ready    atomic.Bool
	// admitted counts the images of requests between admission and the
	// end of their batch: being decoded, queued or computed. Decoding
	// costs more CPU than the small models' compute, so bounding the
	// batcher's queue alone let decodes pile up without bound under
	// overload: in a soak at twice the saturation throughput, requests
	// waited until their clients gave up, and few were refused.
	// admitLimit is the queue plus one batch per session; with a latency
	// target, limit adapts the bound below it (overload.Limit), and
	// limitGauge shows the bound in use.
	admitted   atomic.Int64
	admitLimit int64
	limit      *overload.Limit
	limitGauge prometheus.Gauge
	met        *metrics
	verName    string // version as a metric label
	// bytes is the memory the version holds, measured when it loaded: what
	// ONNX Runtime allocated for its sessions (onnxrt.Footprint) and their
	// buffers.
	bytes int64
	// dropped is set (under Service.mu) once the version is out of
	// Service.models, its bytes counted as freeing until it is freed.
	dropped bool
	// gone is closed once its sessions are freed.
	gone chan struct{}
}

// readArtifact reads v's ONNX file from the blob store, at the key the
// Registry gives, and checks its hash. Inference reads the shared store
// rather than calling DownloadArtifact, so a load costs one read of the
// object and no gRPC streaming through the Registry.
func (s *Service) readArtifact(ctx context.Context, v *registrypb.Version) ([]byte, error) {
	a := v.GetArtifact()
	if a.GetSha256() == "" || a.GetBlobKey() == "" {
		return nil, fmt.Errorf("%w: %s v%d has no artifact", errBadModel, v.GetModel(), v.GetVersion())
	}
	r, err := s.deps.Blobs.Get(ctx, a.GetBlobKey())
	if err != nil {
		return nil, fmt.Errorf("read artifact of %s v%d: %w", v.GetModel(), v.GetVersion(), err)
	}
	defer r.Close()
	var buf bytes.Buffer
	if a.GetSizeBytes() > 0 {
		buf.Grow(int(a.GetSizeBytes()))
	}
	h := sha256.New()
	if _, err := io.Copy(&buf, io.TeeReader(r, h)); err != nil {
		return nil, fmt.Errorf("read artifact of %s v%d: %w", v.GetModel(), v.GetVersion(), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.GetSha256() {
		return nil, fmt.Errorf("artifact of %s v%d: sha256 %s, want %s", v.GetModel(), v.GetVersion(), got, a.GetSha256())
	}
	return buf.Bytes(), nil
}

// load reads v's artifact, opens cfg.Sessions sessions on it and warms each
// at every bucket size, so no request pays for ORT's first-run allocations.
// The returned model's batcher is not running yet.
func (s *Service) load(ctx context.Context, v *registrypb.Version) (m *model, err error) {
	onnx, err := s.readArtifact(ctx, v)
	if err != nil {
		return nil, err
	}
	m, err = s.describe(v, onnx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.free()
		}
	}()
	if err := s.openSessions(ctx, m, onnx); err != nil {
		return nil, err
	}
	maxBatch := m.buckets[len(m.buckets)-1]
	m.batchCap = maxBatch
	if m.cls.Batch == 0 {
		if err := chooseLayout(ctx, m, s.cfg.SessionLayout, s.cfg.WideSessionMinGain); err != nil {
			return nil, fmt.Errorf("%w: timing the batch sizes: %w", errBadModel, err)
		}
	}
	for i, ss := range m.sessions {
		m.bytes += m.native[i] + ss.BufferBytes()
	}
	narrow := len(m.sessions)
	if m.wide {
		narrow--
	}
	m.batcher, err = batcher.New(batcher.Config{
		MaxBatch: m.batchCap, MaxDelay: s.cfg.MaxQueueDelay, QueueSize: s.cfg.QueueSize, Workers: narrow, Wide: m.wide,
		Pending: m.admitted.Load, Panics: s.deps.Panics,
	}, func(ctx context.Context, w int, in [][]float32) ([][]float32, error) { return runBatch(m, ctx, w, in) })
	if err != nil {
		return nil, err
	}
	m.admitLimit = int64(s.cfg.QueueSize + narrow*maxBatch)
	if s.cfg.LatencyTarget > 0 {
		// Down to an image per session: below a batch per session the
		// batches are smaller and cost more per image, but while the
		// cores are shared (a training job, another model) that is what
		// holds the target; it grows back by a batch at a time.
		m.limit = overload.NewLimit(s.cfg.LatencyTarget, int64(narrow), m.admitLimit, int64(m.batchCap))
	}
	m.limitGauge = s.met.admissionLimit.WithLabelValues(m.name, m.verName)
	m.limitGauge.Set(float64(m.currentLimit()))
	return m, nil
}

// openSessions opens m's sessions on onnx, the wide one last, and warms
// each at every power of two up to the largest batch and at the largest,
// which also grows each session's arena to what its largest batch needs,
// so that Footprint sees it.
func (s *Service) openSessions(ctx context.Context, m *model, onnx []byte) error {
	threads := []int{}
	for range s.cfg.Sessions {
		threads = append(threads, s.cfg.IntraOpThreads)
	}
	if s.cfg.WideSession && s.cfg.Sessions > 1 {
		threads = append(threads, s.cfg.Sessions*s.cfg.IntraOpThreads)
		m.wide = true
	}
	largest := m.buckets[len(m.buckets)-1]
	var warm []int
	for b := 1; b < largest; b *= 2 {
		warm = append(warm, b)
	}
	warm = append(warm, largest)
	if m.cls.Batch > 0 {
		warm = []int{m.cls.Batch}
	}
	m.warm = warm
	for w, n := range threads {
		native, err := onnxrt.Footprint(func() error {
			sess, err := s.rt.NewSession(onnx, m.cls, m.buckets, onnxrt.SessionOptions{IntraOpThreads: n})
			if err != nil {
				return fmt.Errorf("%w: %w", errBadModel, err)
			}
			m.sessions = append(m.sessions, sess)
			for _, b := range warm {
				if err := ctx.Err(); err != nil {
					return err
				}
				if _, err := sess.Run(b); err != nil {
					return fmt.Errorf("%w: warm-up of session %d: %w", errBadModel, w, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		m.threads = append(m.threads, n)
		m.native = append(m.native, native)
	}
	return nil
}

// admit takes n images in if they fit under the admission limit; the
// caller subtracts them from admitted once their batch is done. A request
// larger than the limit by itself is admitted alone, so that the request's
// own checks say what is wrong with it.
func (m *model) admit(n int) bool {
	if total := m.admitted.Add(int64(n)); total > m.currentLimit() && total > int64(n) {
		m.admitted.Add(-int64(n))
		if m.limit != nil {
			m.limit.Refused()
			m.limitGauge.Set(float64(m.limit.Current()))
		}
		return false
	}
	return true
}

// currentLimit is the admission limit in use: the adapted one with a
// latency target, else the queue plus a batch per session.
func (m *model) currentLimit() int64 {
	if m.limit != nil {
		return m.limit.Current()
	}
	return m.admitLimit
}

// answered records a request answered d after its admission, which adapts
// the limit to the latency target.
func (m *model) answered(d time.Duration) {
	if m.limit != nil {
		m.limit.Answered(d)
		m.limitGauge.Set(float64(m.limit.Current()))
	}
}

// describe checks that v's graph and input spec agree and works out the
// tensors' shapes and the batch buckets.
func (s *Service) describe(v *registrypb.Version, onnx []byte) (*model, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s v%d: %s", errBadModel, v.GetModel(), v.GetVersion(), fmt.Sprintf(format, args...))
	}
	spec, err := imaging.SpecFromProto(v.GetInputSpec())
	if err != nil {
		return nil, bad("%v", err)
	}
	if err := onnxrt.CheckExternalData(onnx); err != nil {
		return nil, bad("%v", err)
	}
	info, err := s.rt.Inspect(onnx)
	if err != nil {
		return nil, bad("%v", err)
	}
	in := v.GetInputSpec()
	image := onnxrt.Image{Channels: spec.Channels, Height: spec.Height, Width: spec.Width, NHWC: spec.NHWC}
	cls, err := info.Classifier(in.GetInputName(), in.GetOutputName(), image, len(v.GetLabels()))
	if err != nil {
		return nil, bad("%v", err)
	}
	m := &model{name: v.GetModel(), version: v.GetVersion(), labels: v.GetLabels(), spec: spec, gone: make(chan struct{}),
		probs: in.GetOutputIsProbabilities(), cls: cls, met: s.met, verName: strconv.FormatInt(v.GetVersion(), 10)}
	if cls.Batch > 0 {
		m.buckets = []int{cls.Batch}
	} else {
		for b := 1; b <= s.cfg.MaxBatchSize; b++ {
			m.buckets = append(m.buckets, b)
		}
	}
	return m, nil
}

// run is the batcher's compute function: it copies the preprocessed images
// into the worker's session, which pads the batch to its bucket, and
// returns each image's scores.
// runBatch is (*model).run; tests replace it to inject a panic into a
// batch.
var runBatch = (*model).run

func (m *model) run(_ context.Context, w int, in [][]float32) ([][]float32, error) {
	ss := m.sessions[w]
	buf, size := ss.Input(), m.cls.Image.Size()
	for i, img := range in {
		copy(buf[i*size:(i+1)*size], img)
	}
	started := time.Now()
	got, err := ss.Run(len(in))
	if err != nil {
		return nil, fmt.Errorf("%s v%d: %w", m.name, m.version, err)
	}
	// Looked up per batch rather than held, so a retired instance's
	// metrics.forget never orphans a reloaded instance's series.
	m.met.compute.WithLabelValues(m.name, m.verName).Observe(time.Since(started).Seconds())
	m.met.batchSize.WithLabelValues(m.name, m.verName).Observe(float64(len(in)))
	k := m.cls.Classes
	out := make([][]float32, len(in))
	scores := slices.Clone(got) // one allocation for the batch
	for i := range out {
		out[i] = scores[i*k : (i+1)*k : (i+1)*k]
	}
	return out, nil
}

// free releases the sessions; the batcher must have stopped.
func (m *model) free() {
	for _, ss := range m.sessions {
		ss.Close()
	}
	m.sessions = nil
	onnxrt.ReleaseFreed()
}

// label names class i, or its index when the version has no labels.
func (m *model) label(i int) string {
	if i < len(m.labels) {
		return m.labels[i]
	}
	return fmt.Sprint(i)
}
