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

	ort "github.com/yalue/onnxruntime_go"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/batcher"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// artifactKey is the Registry's content-addressed key for an artifact
// (services/registry/store.go). Inference reads artifacts from the shared
// blob store rather than through DownloadArtifact so a load costs one read
// of the object and no gRPC streaming through the Registry; the SHA-256 the
// Registry reports is checked, so a key scheme that drifted would fail
// loudly rather than serve the wrong bytes.
func artifactKey(sha string) string { return "registry/artifacts/sha256/" + sha }

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
	probs   bool
	input   onnxrt.TensorInfo
	output  onnxrt.TensorInfo
	classes int
	// buckets are the batch sizes ORT runs, ascending; a batch is padded to
	// the smallest bucket that holds it. A graph with a fixed batch
	// dimension has that one bucket.
	buckets  []int
	sessions []*session
	batcher  *batcher.Batcher[[]float32, []float32]
	ready    atomic.Bool
	met      *metrics
	verName  string // version as a metric label
}

// session is one ONNX Runtime session with its tensors, one pair per
// bucket, all backed by the same two buffers. A session is used by one
// batcher worker at a time, so the buffers need no lock.
type session struct {
	ort     *ort.DynamicAdvancedSession
	in, out []float32
	inputs  map[int]*ort.Tensor[float32]
	outputs map[int]*ort.Tensor[float32]
}

// readArtifact reads v's ONNX file from the blob store and checks its hash.
func (s *Service) readArtifact(ctx context.Context, v *registrypb.Version) ([]byte, error) {
	a := v.GetArtifact()
	if a.GetSha256() == "" {
		return nil, fmt.Errorf("%w: %s v%d has no artifact", errBadModel, v.GetModel(), v.GetVersion())
	}
	r, err := s.deps.Blobs.Get(ctx, artifactKey(a.GetSha256()))
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
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(s.cfg.IntraOpThreads); err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	// Parallelism across batches comes from several sessions, not from
	// running a graph's independent branches at once.
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	maxBatch := m.buckets[len(m.buckets)-1]
	for range s.cfg.Sessions {
		sess, err := ort.NewDynamicAdvancedSessionWithONNXData(onnx, []string{m.input.Name}, []string{m.output.Name}, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: onnxruntime: %w", errBadModel, err)
		}
		ss := &session{ort: sess, in: make([]float32, maxBatch*m.spec.Size()), out: make([]float32, maxBatch*m.classes),
			inputs: map[int]*ort.Tensor[float32]{}, outputs: map[int]*ort.Tensor[float32]{}}
		m.sessions = append(m.sessions, ss)
		for _, b := range m.buckets {
			in, err := ort.NewTensor(m.inputShape(b), ss.in)
			if err != nil {
				return nil, fmt.Errorf("input tensor: %w", err)
			}
			ss.inputs[b] = in
			out, err := ort.NewTensor(ort.NewShape(int64(b), int64(m.classes)), ss.out)
			if err != nil {
				return nil, fmt.Errorf("output tensor: %w", err)
			}
			ss.outputs[b] = out
		}
	}
	for w, ss := range m.sessions {
		for _, b := range m.buckets {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := ss.ort.Run([]ort.Value{ss.inputs[b]}, []ort.Value{ss.outputs[b]}); err != nil {
				return nil, fmt.Errorf("%w: warm-up of session %d at batch %d: %w", errBadModel, w, b, err)
			}
		}
	}
	m.batcher, err = batcher.New(batcher.Config{
		MaxBatch: maxBatch, MaxDelay: s.cfg.MaxQueueDelay, QueueSize: s.cfg.QueueSize, Workers: len(m.sessions),
	}, m.run)
	if err != nil {
		return nil, err
	}
	return m, nil
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
	info, err := s.rt.Inspect(onnx)
	if err != nil {
		return nil, bad("%v", err)
	}
	ver := strconv.FormatInt(v.GetVersion(), 10)
	m := &model{name: v.GetModel(), version: v.GetVersion(), labels: v.GetLabels(), spec: spec,
		probs: v.GetInputSpec().GetOutputIsProbabilities(), met: s.met, verName: ver}
	pick := func(kind, name string, ts []onnxrt.TensorInfo) (onnxrt.TensorInfo, error) {
		if name == "" {
			if len(ts) != 1 {
				return onnxrt.TensorInfo{}, bad("the graph has %d %ss and the input spec names none", len(ts), kind)
			}
			return ts[0], nil
		}
		for _, t := range ts {
			if t.Name == name {
				return t, nil
			}
		}
		return onnxrt.TensorInfo{}, bad("the graph has no %s named %q", kind, name)
	}
	if m.input, err = pick("input", v.GetInputSpec().GetInputName(), info.Inputs); err != nil {
		return nil, err
	}
	if m.output, err = pick("output", v.GetInputSpec().GetOutputName(), info.Outputs); err != nil {
		return nil, err
	}
	if m.input.ElementType != "float32" || len(m.input.Shape) != 4 {
		return nil, bad("input %q is %s%v; want a float32 tensor of rank 4", m.input.Name, m.input.ElementType, m.input.Shape)
	}
	want := []int64{-1, int64(spec.Channels), int64(spec.Height), int64(spec.Width)}
	if spec.NHWC {
		want = []int64{-1, int64(spec.Height), int64(spec.Width), int64(spec.Channels)}
	}
	for i := 1; i < 4; i++ {
		if d := m.input.Shape[i]; d != -1 && d != want[i] {
			return nil, bad("input %q has shape %v; the input spec wants %v", m.input.Name, m.input.Shape, want)
		}
	}
	if m.output.ElementType != "float32" || len(m.output.Shape) != 2 {
		return nil, bad("output %q is %s%v; want a float32 tensor [batch, classes]", m.output.Name, m.output.ElementType, m.output.Shape)
	}
	m.classes = int(m.output.Shape[1])
	switch {
	case m.classes <= 0 && len(m.labels) == 0:
		return nil, bad("output %q has a dynamic class dimension and the version has no labels", m.output.Name)
	case m.classes <= 0:
		m.classes = len(m.labels)
	case len(m.labels) > 0 && len(m.labels) != m.classes:
		return nil, bad("output %q has %d classes but the version has %d labels", m.output.Name, m.classes, len(m.labels))
	}
	if batch := m.input.Shape[0]; batch > 0 {
		m.buckets = []int{int(batch)}
	} else {
		for b := 1; b < s.cfg.MaxBatchSize; b *= 2 {
			m.buckets = append(m.buckets, b)
		}
		m.buckets = append(m.buckets, s.cfg.MaxBatchSize)
	}
	return m, nil
}

func (m *model) inputShape(batch int) ort.Shape {
	if m.spec.NHWC {
		return ort.NewShape(int64(batch), int64(m.spec.Height), int64(m.spec.Width), int64(m.spec.Channels))
	}
	return ort.NewShape(int64(batch), int64(m.spec.Channels), int64(m.spec.Height), int64(m.spec.Width))
}

// bucket is the smallest batch size ORT runs that holds n images.
func (m *model) bucket(n int) int {
	i, _ := slices.BinarySearch(m.buckets, n)
	return m.buckets[i]
}

// run is the batcher's compute function: it copies the preprocessed images
// into the worker's session buffer, pads the batch to its bucket (rows past
// n hold stale values; rows are independent and their outputs ignored) and
// returns each image's scores.
func (m *model) run(_ context.Context, w int, in [][]float32) ([][]float32, error) {
	ss := m.sessions[w]
	size := m.spec.Size()
	for i, img := range in {
		copy(ss.in[i*size:(i+1)*size], img)
	}
	b := m.bucket(len(in))
	started := time.Now()
	if err := ss.ort.Run([]ort.Value{ss.inputs[b]}, []ort.Value{ss.outputs[b]}); err != nil {
		return nil, fmt.Errorf("onnxruntime run of %s v%d at batch %d: %w", m.name, m.version, b, err)
	}
	// Looked up per batch rather than held, so a retired instance's
	// metrics.forget never orphans a reloaded instance's series.
	m.met.compute.WithLabelValues(m.name, m.verName).Observe(time.Since(started).Seconds())
	m.met.batchSize.WithLabelValues(m.name, m.verName).Observe(float64(len(in)))
	out := make([][]float32, len(in))
	scores := make([]float32, len(in)*m.classes) // one allocation for the batch
	copy(scores, ss.out[:len(in)*m.classes])
	for i := range out {
		out[i] = scores[i*m.classes : (i+1)*m.classes : (i+1)*m.classes]
	}
	return out, nil
}

// free releases the sessions and tensors; the batcher must have stopped.
func (m *model) free() {
	for _, ss := range m.sessions {
		for _, t := range ss.inputs {
			t.Destroy()
		}
		for _, t := range ss.outputs {
			t.Destroy()
		}
		if ss.ort != nil {
			ss.ort.Destroy()
		}
	}
	m.sessions = nil
}

// label names class i, or its index when the version has no labels.
func (m *model) label(i int) string {
	if i < len(m.labels) {
		return m.labels[i]
	}
	return fmt.Sprint(i)
}
