package inference

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/batcher"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/overload"
)

// defaultTopK is the number of labels returned when a request asks for 0.
const defaultTopK = 5

// Predict decodes and preprocesses the images in parallel, runs them
// through the batcher of the version asked for and returns the top-k
// labels of each.
func (h *handler) Predict(ctx context.Context, req *inferencepb.PredictRequest) (resp *inferencepb.PredictResponse, err error) {
	s := h.svc
	defer func() {
		name := cmp.Or(req.GetModel(), s.cfg.DefaultModel)
		s.met.request(cmp.Or(resp.GetModel(), name), resp.GetVersion(), err)
	}()
	start := time.Now()
	// The contract's rules hold: at least one image, topK and version
	// not negative. The bound on images is the server's setting.
	if n := len(req.GetImages()); n > s.cfg.QueueSize {
		return nil, status.Errorf(codes.InvalidArgument, "images: %d images in one request; at most %d (--inference.queue-size)", n, s.cfg.QueueSize)
	}
	var preDur time.Duration
	r, err := s.infer(ctx, req.GetModel(), req.GetAlias(), req.GetVersion(), len(req.GetImages()), func(m *model) ([][]float32, error) {
		pre := time.Now()
		inputs, err := s.preprocess(req.GetImages(), m.spec)
		preDur = time.Since(pre)
		if err == nil {
			s.met.preprocess.WithLabelValues(m.name, m.verName).Observe(preDur.Seconds())
		}
		return inputs, err
	})
	if err != nil {
		return nil, err
	}
	m := r.m
	resp = &inferencepb.PredictResponse{Model: m.name, Version: m.version, Results: make([]*inferencepb.Classification, len(r.scores))}
	for i, sc := range r.scores {
		resp.Results[i] = &inferencepb.Classification{Labels: m.topK(sc, int(req.GetTopK()))}
	}
	resp.Timings = &inferencepb.Timings{
		Preprocess: durationpb.New(preDur), Queue: durationpb.New(r.info.Queue), Compute: durationpb.New(r.info.Compute),
		Total: durationpb.New(time.Since(start)), BatchSize: int32(r.info.BatchSize),
	}
	return resp, nil
}

// inferred is the outcome of one request's images: the version that
// computed them, each image's scores and how the batch ran.
type inferred struct {
	m      *model
	scores [][]float32
	info   batcher.Info
}

// infer is the path Predict and ModelInfer share: resolve the version asked
// for, let prepare turn the request into that version's input tensors, and
// run them through its batcher. A version retired between resolve and Do
// refuses the work (ErrClosed) without computing any of it; resolving again
// finds its successor.
//
// n is the number of images the request says it carries: they are admitted
// (see model.admit) before prepare decodes them, so that an overloaded
// version refuses work before spending CPU on it.
func (s *Service) infer(ctx context.Context, name, alias string, version int64, n int, prepare func(*model) ([][]float32, error)) (inferred, error) {
	for attempt := 0; ; attempt++ {
		m, err := s.resolve(ctx, name, alias, version)
		if err != nil {
			return inferred{}, err
		}
		release, ok := s.hold(m)
		if !ok && attempt < 3 {
			continue // unloaded since it resolved: resolve again
		}
		var scores [][]float32
		var info batcher.Info
		if ok {
			scores, info, err = admitAndRun(ctx, m, n, prepare)
			release()
		} else {
			err = batcher.ErrClosed
		}
		if errors.Is(err, batcher.ErrClosed) && attempt < 3 {
			continue
		}
		if err != nil {
			return inferred{}, batchError(err, m)
		}
		s.met.queue.WithLabelValues(m.name, m.verName).Observe(info.Queue.Seconds())
		return inferred{m: m, scores: scores, info: info}, nil
	}
}

// admitAndRun admits n images to m (batcher.ErrFull when they do not fit),
// prepares them and runs them through m's batcher.
func admitAndRun(ctx context.Context, m *model, n int, prepare func(*model) ([][]float32, error)) ([][]float32, batcher.Info, error) {
	if !m.admit(n) {
		return nil, batcher.Info{}, batcher.ErrFull
	}
	defer m.admitted.Add(-int64(n))
	start := time.Now()
	images, err := prepare(m)
	if err != nil {
		return nil, batcher.Info{}, err
	}
	scores, info, err := m.batcher.Do(ctx, images)
	if err == nil {
		m.answered(time.Since(start))
	}
	return scores, info, err
}

// batchError maps the batcher's refusals to statuses.
func batchError(err error, m *model) error {
	switch {
	case errors.Is(err, batcher.ErrFull) && m.limit != nil:
		return overload.Errorf(time.Second, "model %q version %d is overloaded: it has taken in all it can answer within the latency target (%v); retry shortly",
			m.name, m.version, m.limit.Target())
	case errors.Is(err, batcher.ErrFull):
		return overload.Errorf(time.Second, "model %q version %d is overloaded: its queue is full; retry shortly", m.name, m.version)
	case errors.Is(err, batcher.ErrClosed):
		return status.Errorf(codes.Unavailable, "model %q version %d is being unloaded; retry", m.name, m.version)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return err
}

// decodeImage is imaging.DecodeFor; tests replace it to inject a panic into
// preprocessing.
var decodeImage = imaging.DecodeFor

// preprocess decodes and preprocesses images on up to GOMAXPROCS
// goroutines, outside the batcher so its workers only compute. Every bad
// image is named in one InvalidArgument error.
func (s *Service) preprocess(images [][]byte, spec imaging.Spec) ([][]float32, error) {
	lim := imaging.Limits{MaxBytes: s.cfg.MaxImageBytes, MaxPixels: s.cfg.MaxImagePixels}
	out := make([][]float32, len(images))
	// One allocation for the request's tensors.
	vals := make([]float32, len(images)*spec.Size())
	errs := make([]error, len(images))
	one := func(i int) {
		dst := vals[i*spec.Size() : (i+1)*spec.Size() : (i+1)*spec.Size()]
		out[i] = dst
		errs[i] = s.deps.Panics.Call("preprocess", func() error {
			img, _, err := decodeImage(images[i], spec, lim)
			if err == nil {
				err = imaging.Preprocess(img, spec, dst)
			}
			return err
		})
	}
	if workers := min(len(images), runtime.GOMAXPROCS(0)); workers <= 1 {
		for i := range images {
			one(i)
		}
	} else {
		var wg sync.WaitGroup
		next := make(chan int, len(images))
		for i := range images {
			next <- i
		}
		close(next)
		for range workers {
			wg.Go(func() {
				for i := range next {
					one(i)
				}
			})
		}
		wg.Wait()
	}
	var bad []string
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, imaging.ErrInvalid):
			bad = append(bad, fmt.Sprintf("image %d: %v", i, err))
		default:
			return nil, fmt.Errorf("preprocess image %d: %w", i, err)
		}
	}
	if len(bad) > 0 {
		return nil, status.Error(codes.InvalidArgument, joinReasons(bad))
	}
	return out, nil
}

func joinReasons(r []string) string {
	const most = 10
	if len(r) > most {
		r = append(r[:most:most], fmt.Sprintf("and %d more", len(r)-most))
	}
	msg := r[0]
	for _, s := range r[1:] {
		msg += "; " + s
	}
	return msg
}

// topK returns the k most probable labels of one image's scores, applying
// softmax unless the graph already outputs probabilities.
func (m *model) topK(scores []float32, k int) []*inferencepb.LabelScore {
	if k == 0 {
		k = defaultTopK
	}
	k = min(k, len(scores))
	probs := scores
	if !m.probs {
		probs = softmax(scores)
	}
	out := make([]*inferencepb.LabelScore, k)
	for i, j := range ranked(probs)[:k] {
		out[i] = &inferencepb.LabelScore{Label: m.label(j), Index: int32(j), Probability: probs[j]}
	}
	return out
}

// ranked returns the class indices from the most to the least probable;
// the sort is stable, so equal probabilities keep the label order.
func ranked(probs []float32) []int {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case probs[a] > probs[b]:
			return -1
		case probs[a] < probs[b]:
			return 1
		}
		return 0
	})
	return idx
}

// softmax in float64 with the maximum subtracted, so large logits do not
// overflow.
func softmax(x []float32) []float32 {
	hi := float64(slices.Max(x))
	sum := 0.0
	e := make([]float64, len(x))
	for i, v := range x {
		e[i] = math.Exp(float64(v) - hi)
		sum += e[i]
	}
	out := make([]float32, len(x))
	for i := range e {
		out[i] = float32(e[i] / sum)
	}
	return out
}
