// Package ml is the Trainer's machine-learning core: named image-classifier
// architectures built on GoMLX, a training loop over in-memory tensors with
// progress callbacks, cancellation and a best-validation checkpoint, and
// evaluation metrics. It knows nothing about RPCs, jobs or storage; the
// Trainer service drives it.
//
// Tensor layout: every image tensor handed to this package, and the input of
// every exported model, is float32 NCHW [N, C, H, W] with pixel values scaled
// to [0, 1]. Per-channel normalisation (mean/std measured on the training
// images) is part of the model graph, so callers and exported ONNX files do
// not need to know it. Models output [N, K] logits; exported ONNX files
// output [N, K] probabilities (softmax applied in the graph).
//
// A model imported from ONNX (ImportONNX) is the exception: its graph,
// normalisation, layout, input and output are the file's own, and so are
// those of its export.
package ml

import (
	"errors"
	"fmt"
)

// InputShape is the per-image shape a model takes: channels, height, width.
type InputShape struct {
	Channels, Height, Width int
}

// Size is the number of float32 values of one image.
func (s InputShape) Size() int { return s.Channels * s.Height * s.Width }

func (s InputShape) String() string {
	return fmt.Sprintf("%dx%dx%d", s.Channels, s.Height, s.Width)
}

// Data is a set of labelled images held in memory.
type Data struct {
	Shape InputShape
	// Images holds len(Labels) images, NCHW, float32 in [0, 1].
	Images []float32
	// Labels are class indices in [0, NumClasses).
	Labels []int32
}

// Len is the number of images.
func (d *Data) Len() int { return len(d.Labels) }

// Image returns the i-th image's values (a sub-slice, not a copy).
func (d *Data) Image(i int) []float32 {
	n := d.Shape.Size()
	return d.Images[i*n : (i+1)*n]
}

// Subset returns a new Data holding copies of the images at the given indices.
func (d *Data) Subset(indices []int) *Data {
	n := d.Shape.Size()
	out := &Data{Shape: d.Shape, Images: make([]float32, 0, len(indices)*n), Labels: make([]int32, 0, len(indices))}
	for _, i := range indices {
		out.Images = append(out.Images, d.Image(i)...)
		out.Labels = append(out.Labels, d.Labels[i])
	}
	return out
}

// Validate checks that the data is consistent and its labels fit numClasses.
func (d *Data) Validate(numClasses int) error {
	if d == nil || d.Len() == 0 {
		return errors.New("no images")
	}
	if d.Shape.Channels <= 0 || d.Shape.Height <= 0 || d.Shape.Width <= 0 {
		return fmt.Errorf("invalid image shape %s", d.Shape)
	}
	if len(d.Images) != d.Len()*d.Shape.Size() {
		return fmt.Errorf("%d image values for %d images of shape %s, want %d",
			len(d.Images), d.Len(), d.Shape, d.Len()*d.Shape.Size())
	}
	for i, l := range d.Labels {
		if l < 0 || int(l) >= numClasses {
			return fmt.Errorf("image %d has label %d, want 0..%d", i, l, numClasses-1)
		}
	}
	return nil
}
