package ml

import (
	"fmt"

	"github.com/shoalml/shoal/internal/onnxrt"
	ort "github.com/yalue/onnxruntime_go"
)

// RunONNX runs an exported model (ExportONNX) with ONNX Runtime on n NCHW
// images of the given shape, at most batch images per run (the last run
// takes what is left, unpadded, so a model whose batch dimension is not
// symbolic fails on it), and returns [n*k] probabilities. ONNX Runtime is
// loaded through internal/onnxrt, the process's single initialisation
// shared with the Registry and Inference.
func RunONNX(rt onnxrt.Config, onnxModel []byte, shape InputShape, batch, k int, images []float32) ([]float32, error) {
	if _, err := onnxrt.Load(rt); err != nil {
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
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(onnxModel, []string{ONNXInput}, []string{ONNXOutput}, nil)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: loading the exported model: %w", err)
	}
	defer sess.Destroy()
	probs := make([]float32, n*k)
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		if err := runBatch(sess, shape, k, images[start*size:end*size], probs[start*k:end*k]); err != nil {
			return nil, err
		}
	}
	return probs, nil
}

// runBatch runs len(out)/k images through sess, writing into out.
func runBatch(sess *ort.DynamicAdvancedSession, shape InputShape, k int, images, out []float32) error {
	b := int64(len(out) / k)
	in, err := ort.NewTensor(ort.NewShape(b, int64(shape.Channels), int64(shape.Height), int64(shape.Width)), images)
	if err != nil {
		return fmt.Errorf("onnxruntime: %w", err)
	}
	defer in.Destroy()
	res, err := ort.NewTensor(ort.NewShape(b, int64(k)), out)
	if err != nil {
		return fmt.Errorf("onnxruntime: %w", err)
	}
	defer res.Destroy()
	if err := sess.Run([]ort.Value{in}, []ort.Value{res}); err != nil {
		return fmt.Errorf("onnxruntime: running the exported model at batch %d: %w", b, err)
	}
	return nil
}
