package onnxrt

import (
	"fmt"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// Image is the shape of one image in a model's input tensor.
type Image struct {
	Channels, Height, Width int
	// NHWC lays a batch out as [batch, height, width, channels], as
	// TensorFlow exports models, instead of [batch, channels, height,
	// width], as PyTorch does.
	NHWC bool
}

// Layout names the image's layout, "NCHW" or "NHWC".
func (im Image) Layout() string {
	if im.NHWC {
		return "NHWC"
	}
	return "NCHW"
}

// Size is the number of float32 values of one image.
func (im Image) Size() int { return im.Channels * im.Height * im.Width }

// Shape is the shape of a batch of n images in the image's layout; n is -1
// for a dynamic batch, as ModelInfo reports it.
func (im Image) Shape(n int64) []int64 {
	if im.NHWC {
		return []int64{n, int64(im.Height), int64(im.Width), int64(im.Channels)}
	}
	return []int64{n, int64(im.Channels), int64(im.Height), int64(im.Width)}
}

// Classifier is the part of a model a Session runs: a float32 batch of
// images fed to Input, float32 scores [batch, Classes] read from Output.
type Classifier struct {
	Input, Output string
	Image         Image
	Classes       int
	// Batch is the graph's fixed batch size, or 0 when its batch dimension
	// is dynamic.
	Batch int
}

// Classifier picks the model's image input and score output (each by name,
// or the only one when the name is empty) and checks that the input takes a
// float32 batch of img and the output gives float32 [batch, classes]. A
// dynamic class dimension takes labels, the number of class names the
// caller has (0 for none); a fixed one must equal it when labels is not 0.
// The error says what disagrees.
func (m ModelInfo) Classifier(input, output string, img Image, labels int) (Classifier, error) {
	in, err := pick("input", m.Inputs, input)
	if err != nil {
		return Classifier{}, err
	}
	out, err := pick("output", m.Outputs, output)
	if err != nil {
		return Classifier{}, err
	}
	if in.ElementType != "float32" || len(in.Shape) != 4 {
		return Classifier{}, fmt.Errorf("input %q is %s%v; want a float32 tensor of rank 4", in.Name, in.ElementType, in.Shape)
	}
	want := img.Shape(-1)
	for i := 1; i < 4; i++ {
		if d := in.Shape[i]; d != -1 && d != want[i] {
			return Classifier{}, fmt.Errorf("input %q has shape %v; want %v (%s)", in.Name, in.Shape, want, img.Layout())
		}
	}
	if out.ElementType != "float32" || len(out.Shape) != 2 {
		return Classifier{}, fmt.Errorf("output %q is %s%v; want a float32 tensor [batch, classes]", out.Name, out.ElementType, out.Shape)
	}
	c := Classifier{Input: in.Name, Output: out.Name, Image: img, Classes: int(out.Shape[1]), Batch: int(max(in.Shape[0], 0))}
	switch {
	case c.Classes <= 0 && labels == 0:
		return Classifier{}, fmt.Errorf("output %q has a dynamic class dimension and there are no labels", out.Name)
	case c.Classes <= 0:
		c.Classes = labels
	case labels > 0 && labels != c.Classes:
		return Classifier{}, fmt.Errorf("output %q has %d classes but there are %d labels", out.Name, c.Classes, labels)
	}
	return c, nil
}

// pick returns the tensor named name, or the only one when name is empty.
func pick(kind string, ts []TensorInfo, name string) (TensorInfo, error) {
	if name == "" {
		if len(ts) != 1 {
			return TensorInfo{}, fmt.Errorf("the graph has %d %ss and none is named", len(ts), kind)
		}
		return ts[0], nil
	}
	if t, ok := find(ts, name); ok {
		return t, nil
	}
	return TensorInfo{}, fmt.Errorf("the graph has no %s named %q", kind, name)
}

// SessionOptions are how ONNX Runtime runs a session. Inference builds its
// sessions' options from its flags and the benchmark from the same
// settings, so bare ONNX Runtime is measured as the server runs it.
type SessionOptions struct {
	// IntraOpThreads is the number of threads one operator may use; 0
	// leaves ONNX Runtime's default (one per core).
	IntraOpThreads int
}

// Session is one ONNX Runtime session of a Classifier, holding an input and
// an output tensor for each of a set of batch sizes. All of them view one
// pair of buffers sized for the largest batch, so a run copies nothing
// through ONNX Runtime's API. A Session is used by one goroutine at a time.
type Session struct {
	c       Classifier
	ort     *ort.DynamicAdvancedSession
	batches []int // ascending
	in, out []float32
	// inputs[i] and outputs[i] are the tensors of batches[i].
	inputs, outputs []*ort.Tensor[float32]
}

// NewSession opens a session on the model in onnx that runs c at each of
// the batch sizes (positive; one only, c.Batch, when the graph's batch is
// fixed). Close releases it.
func (r *Runtime) NewSession(onnx []byte, c Classifier, batches []int, opts SessionOptions) (s *Session, err error) {
	batches = slices.Compact(slices.Sorted(slices.Values(batches)))
	switch {
	case len(batches) == 0 || batches[0] <= 0:
		return nil, fmt.Errorf("onnxruntime: batch sizes %v: want at least one, all positive", batches)
	case c.Batch > 0 && !slices.Equal(batches, []int{c.Batch}):
		return nil, fmt.Errorf("onnxruntime: batch sizes %v: the graph's batch is fixed at %d", batches, c.Batch)
	case c.Image.Size() <= 0 || c.Classes <= 0:
		return nil, fmt.Errorf("onnxruntime: image %+v and %d classes: want positive sizes", c.Image, c.Classes)
	}
	o, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	defer o.Destroy()
	if opts.IntraOpThreads > 0 {
		if err := o.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("onnxruntime session options: %w", err)
		}
	}
	// ONNX Runtime runs a graph's nodes one after another (sequential
	// execution, its default), so no inter-op thread is ever needed:
	// parallelism across batches comes from several sessions.
	if err := o.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(onnx, []string{c.Input}, []string{c.Output}, o)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	largest := batches[len(batches)-1]
	s = &Session{c: c, ort: sess, batches: batches,
		in: make([]float32, largest*c.Image.Size()), out: make([]float32, largest*c.Classes)}
	defer func() {
		if err != nil {
			s.close() // inside a Footprint, maybe
		}
	}()
	for _, b := range batches {
		in, err := ort.NewTensor(ort.NewShape(c.Image.Shape(int64(b))...), s.in)
		if err != nil {
			return nil, fmt.Errorf("onnxruntime: input tensor of batch %d: %w", b, err)
		}
		s.inputs = append(s.inputs, in)
		out, err := ort.NewTensor(ort.NewShape(int64(b), int64(c.Classes)), s.out)
		if err != nil {
			return nil, fmt.Errorf("onnxruntime: output tensor of batch %d: %w", b, err)
		}
		s.outputs = append(s.outputs, out)
	}
	return s, nil
}

// Classifier is what the session runs.
func (s *Session) Classifier() Classifier { return s.c }

// Batches are the batch sizes the session runs, ascending.
func (s *Session) Batches() []int { return slices.Clone(s.batches) }

// BufferBytes is the size of the session's input and output buffers, which
// are on the Go heap and so not in Footprint's figure.
func (s *Session) BufferBytes() int64 { return 4 * int64(len(s.in)+len(s.out)) }

// Input is the input buffer, room for the largest batch: image i of the
// next Run goes at [i*Image.Size(), (i+1)*Image.Size()).
func (s *Session) Input() []float32 { return s.in }

// Run runs the first n images of Input at the smallest batch size that
// holds them and returns their scores, n rows of Classes values. Rows past
// n of a padded batch hold whatever the buffer held: images are computed
// independently and those rows' scores are not returned. The result views
// the session's output buffer, valid until the next Run.
func (s *Session) Run(n int) ([]float32, error) {
	i, _ := slices.BinarySearch(s.batches, n)
	if n <= 0 || i == len(s.batches) {
		return nil, fmt.Errorf("onnxruntime: run of %d images: the session runs 1 to %d", n, s.batches[len(s.batches)-1])
	}
	if err := s.ort.Run([]ort.Value{s.inputs[i]}, []ort.Value{s.outputs[i]}); err != nil {
		return nil, fmt.Errorf("onnxruntime: run at batch %d: %w", s.batches[i], err)
	}
	return s.out[: n*s.c.Classes : n*s.c.Classes], nil
}

// Close releases the session and its tensors. It may be called more than
// once. It waits for a measurement under way (see Footprint), so as not
// to count in it.
func (s *Session) Close() {
	footprintMu.Lock()
	defer footprintMu.Unlock()
	s.close()
}

func (s *Session) close() {
	for _, t := range s.inputs {
		t.Destroy()
	}
	for _, t := range s.outputs {
		t.Destroy()
	}
	if s.ort != nil {
		s.ort.Destroy()
	}
	s.inputs, s.outputs, s.ort = nil, nil, nil
}

// OutputShape runs the model in onnx once on a float32 input of the given
// shape (zeros) and returns the shape of its output named output: what a
// graph cut at an inner tensor gives, whose shape only running it tells.
func (r *Runtime) OutputShape(onnx []byte, input string, shape []int64, output string) ([]int64, error) {
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(onnx, []string{input}, []string{output}, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	defer sess.Destroy()
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	in, err := ort.NewTensor(ort.NewShape(shape...), make([]float32, n))
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: input tensor %v: %w", shape, err)
	}
	defer in.Destroy()
	outs := []ort.Value{nil}
	if err := sess.Run([]ort.Value{in}, outs); err != nil {
		return nil, fmt.Errorf("onnxruntime: run at input %v: %w", shape, err)
	}
	defer func() { _ = outs[0].Destroy() }() // its memory is ONNX Runtime's; nothing to report
	return slices.Clone(outs[0].GetShape()), nil
}
