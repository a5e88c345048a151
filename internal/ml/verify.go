package ml

import (
	"fmt"

	"github.com/shoalml/shoal/internal/onnxrt"
	ort "github.com/yalue/onnxruntime_go"
)

// RunONNX runs an exported model (ExportONNX) with ONNX Runtime on n NCHW
// images of the given shape, batch images per run (the model's fixed batch
// size; the last batch is zero-padded), and returns [n*k] probabilities.
// ONNX Runtime is loaded through internal/onnxrt, the process's single
// initialisation shared with the Registry and Inference.
func RunONNX(rt onnxrt.Config, onnxModel []byte, shape InputShape, batch, k int, images []float32) ([]float32, error) {
	if _, err := onnxrt.Load(rt); err != nil {
		return nil, err
	}
	size := shape.Size()
	if size == 0 || len(images)%size != 0 {
		return nil, fmt.Errorf("%d values is not a whole number of %s images", len(images), shape)
	}
	n := len(images) / size
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), int64(shape.Channels), int64(shape.Height), int64(shape.Width)))
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), int64(k)))
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	defer out.Destroy()
	sess, err := ort.NewAdvancedSessionWithONNXData(onnxModel, []string{ONNXInput}, []string{ONNXOutput},
		[]ort.Value{in}, []ort.Value{out}, nil)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: loading the exported model: %w", err)
	}
	defer sess.Destroy()
	probs := make([]float32, 0, n*k)
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		buf := in.GetData()
		clear(buf)
		copy(buf, images[start*size:end*size])
		if err := sess.Run(); err != nil {
			return nil, fmt.Errorf("onnxruntime: running the exported model: %w", err)
		}
		probs = append(probs, out.GetData()[:(end-start)*k]...)
	}
	return probs, nil
}
