package ml

import (
	"context"
	"fmt"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// FeatureExtractor runs a Backbone in an ONNX Runtime session, as
// Inference runs a model: the images normalised and laid out by the base's
// input spec, in batches.
type FeatureExtractor struct {
	bb    *Backbone
	sess  *onnxrt.Session
	batch int
}

// Extractor opens the backbone in ONNX Runtime for runs of up to batch
// images (each run padded to the next power of two, at most batch).
// Close releases it.
func (b *Backbone) Extractor(rt onnxrt.Config, batch int, opts onnxrt.SessionOptions) (*FeatureExtractor, error) {
	r, err := onnxrt.Load(rt)
	if err != nil {
		return nil, err
	}
	if batch <= 0 {
		return nil, fmt.Errorf("batch size must be positive, got %d", batch)
	}
	sizes := []int{batch}
	for s := 1; s < batch; s *= 2 {
		sizes = append(sizes, s)
	}
	// The session's "classes" are the features: it runs any graph that
	// maps an image batch to a [batch, n] matrix.
	s := b.Spec.Shape
	c := onnxrt.Classifier{Input: b.Spec.InputName, Output: b.FeatureTensor, Classes: b.Features,
		Image: onnxrt.Image{Channels: s.Channels, Height: s.Height, Width: s.Width, NHWC: b.Spec.NHWC}}
	sess, err := r.NewSession(b.graph, c, sizes, opts)
	if err != nil {
		return nil, fmt.Errorf("loading the backbone in ONNX Runtime: %w", err)
	}
	return &FeatureExtractor{bb: b, sess: sess, batch: batch}, nil
}

// FeatureShape is the shape head models take: a feature vector as an
// image of Features channels and one pixel.
func (b *Backbone) FeatureShape() InputShape {
	if b.shape.Size() > 0 {
		return b.shape
	}
	return InputShape{Channels: b.Features, Height: 1, Width: 1}
}

// Extract computes the features of images (NCHW in [0, 1], the backbone's
// input shape), one [Features] vector each, with their labels. transform,
// if set, changes each batch's images (a copy) first; it is told the index
// of the batch's first image. done, if set, is told how many images are
// finished after every batch. It stops with ctx's error between batches.
func (f *FeatureExtractor) Extract(ctx context.Context, images *Data, transform func(batch []float32, first int), done func(n int)) (*Data, error) {
	shape := f.bb.Spec.Shape
	if images.Shape != shape {
		return nil, fmt.Errorf("the backbone takes %s images, not %s", shape, images.Shape)
	}
	size, n, k := shape.Size(), images.Len(), f.bb.Features
	out := &Data{Shape: f.bb.FeatureShape(), Images: make([]float32, n*k), Labels: append([]int32(nil), images.Labels...)}
	var buf []float32
	if transform != nil {
		buf = make([]float32, f.batch*size)
	}
	for start := 0; start < n; start += f.batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(start+f.batch, n)
		src := images.Images[start*size : end*size]
		if transform != nil {
			src = buf[:len(src)]
			copy(src, images.Images[start*size:end*size])
			transform(src, start)
		}
		layoutInput(f.bb.Spec, src, f.sess.Input())
		feats, err := f.sess.Run(end - start)
		if err != nil {
			return nil, fmt.Errorf("running the backbone: %w", err)
		}
		copy(out.Images[start*k:end*k], feats)
		if done != nil {
			done(end)
		}
	}
	return out, nil
}

// Close releases the session.
func (f *FeatureExtractor) Close() { f.sess.Close() }
