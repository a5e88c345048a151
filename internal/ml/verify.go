package ml

import (
	"fmt"
	"math"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// RunONNX runs an exported model (ExportONNX) with ONNX Runtime on n NCHW
// images of the given shape, at most batch images per run (the last run
// takes what is left, unpadded, so a model whose batch dimension is not
// symbolic fails on it), and returns [n*k] probabilities. The model runs in
// an onnxrt.Session, as Inference runs it, under the process's single ONNX
// Runtime initialisation shared with the Registry and Inference.
func RunONNX(rt onnxrt.Config, onnxModel []byte, shape InputShape, batch, k int, images []float32) ([]float32, error) {
	return runONNX(rt, onnxModel, ONNXInput, ONNXOutput, shape, false, batch, k, images)
}

// RunONNX runs a model exported from an imported one (its graph, input and
// output) with ONNX Runtime on n NCHW images in [0, 1], as serving does:
// the images normalised and laid out by the base's input spec, and softmax
// applied to an output of logits. It returns [n*k] probabilities.
func (imp *Imported) RunONNX(rt onnxrt.Config, onnxModel []byte, batch int, images []float32) ([]float32, error) {
	spec := imp.Spec
	shape := spec.Shape
	size := shape.Size()
	if size == 0 || len(images)%size != 0 {
		return nil, fmt.Errorf("%d values is not a whole number of %s images", len(images), shape)
	}
	in := make([]float32, len(images))
	layoutInput(spec, images, in)
	out, err := runONNX(rt, onnxModel, spec.InputName, spec.OutputName, shape, spec.NHWC, batch, imp.NumClasses, in)
	if err != nil {
		return nil, err
	}
	if !imp.probabilities {
		softmaxRows(out, imp.NumClasses)
	}
	return out, nil
}

// layoutInput writes NCHW images in [0, 1] to dst as the model spec takes
// them: normalised by its mean and std, in its layout.
func layoutInput(spec ImportSpec, images, dst []float32) {
	shape := spec.Shape
	size, hw := shape.Size(), shape.Height*shape.Width
	for off := 0; off+size <= len(images); off += size {
		for c := range shape.Channels {
			mean, std := float32(0), float32(1)
			if len(spec.Mean) > 0 {
				mean = perChannel(spec.Mean, shape.Channels)[c]
			}
			if len(spec.Std) > 0 {
				std = perChannel(spec.Std, shape.Channels)[c]
			}
			for i := range hw {
				v := (images[off+c*hw+i] - mean) / std
				if spec.NHWC {
					dst[off+i*shape.Channels+c] = v
				} else {
					dst[off+c*hw+i] = v
				}
			}
		}
	}
}

// OutputIsProbabilities reports whether the imported graph's output is
// probabilities (it ends with the Softmax of its scores) rather than logits.
func (imp *Imported) OutputIsProbabilities() bool { return imp.probabilities }

func softmaxRows(v []float32, k int) {
	for off := 0; off+k <= len(v); off += k {
		row := v[off : off+k]
		m := row[0]
		for _, x := range row {
			m = max(m, x)
		}
		var sum float64
		for i, x := range row {
			e := math.Exp(float64(x - m))
			row[i] = float32(e)
			sum += e
		}
		for i := range row {
			row[i] = float32(float64(row[i]) / sum)
		}
	}
}

func runONNX(cfg onnxrt.Config, onnxModel []byte, input, output string, shape InputShape, nhwc bool, batch, k int, images []float32) ([]float32, error) {
	rt, err := onnxrt.Load(cfg)
	if err != nil {
		return nil, err
	}
	if batch <= 0 {
		return nil, fmt.Errorf("batch size must be positive, got %d", batch)
	}
	size := shape.Size()
	if size == 0 || len(images)%size != 0 {
		return nil, fmt.Errorf("%d values is not a whole number of %s images", len(images), shape)
	}
	n := len(images) / size
	// The session runs exactly the sizes used, batch and what is left, so
	// no run is padded.
	sizes := []int{min(batch, max(n, 1))}
	if rest := n % batch; n > batch && rest != 0 {
		sizes = append(sizes, rest)
	}
	c := onnxrt.Classifier{Input: input, Output: output, Classes: k,
		Image: onnxrt.Image{Channels: shape.Channels, Height: shape.Height, Width: shape.Width, NHWC: nhwc}}
	sess, err := rt.NewSession(onnxModel, c, sizes, onnxrt.SessionOptions{})
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: loading the exported model: %w", err)
	}
	defer sess.Close()
	probs := make([]float32, n*k)
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		copy(sess.Input(), images[start*size:end*size])
		out, err := sess.Run(end - start)
		if err != nil {
			return nil, fmt.Errorf("running the exported model: %w", err)
		}
		copy(probs[start*k:end*k], out)
	}
	return probs, nil
}
