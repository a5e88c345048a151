package bench

import (
	"fmt"

	"github.com/shoalml/shoal/internal/onnxbuild"
)

// ResNet18ONNX writes torchvision's ResNet-18 as PyTorch's ONNX export of
// it in eval mode looks (batch norms folded into the convolutions): input
// "images" float32 [N, 3, 224, 224], output "probabilities" float32
// [N, classes] after a softmax, N symbolic. The weights are random
// (He-initialised from seed): this is the original pipeline's network for
// measuring inference, not a classifier. ONNX Runtime runs its Conv nodes
// with its own convolution kernels, unlike the Trainer's export, whose
// convolutions are written as im2col + MatMul for GoMLX's pure-Go backend.
func ResNet18ONNX(classes int, seed uint64) ([]byte, error) {
	if classes < 2 {
		return nil, fmt.Errorf("resnet18: need at least 2 classes, got %d", classes)
	}
	b := onnxbuild.New(seed, 18)
	x := conv(b, "images", 3, 64, 7, 2, 3, true)
	x = b.Node("MaxPool", []string{x}, onnxbuild.Ints("kernel_shape", 3, 3), onnxbuild.Ints("strides", 2, 2), onnxbuild.Ints("pads", 1, 1, 1, 1))
	in := 64
	for stage, width := range []int{64, 128, 256, 512} {
		for block := range 2 {
			stride := 1
			if block == 0 && stage > 0 {
				stride = 2
			}
			shortcut := x
			if stride != 1 || in != width {
				shortcut = conv(b, x, in, width, 1, stride, 0, false)
			}
			y := conv(b, x, in, width, 3, stride, 1, true)
			y = conv(b, y, width, width, 3, 1, 1, false)
			x = b.Node("Relu", []string{b.Node("Add", []string{y, shortcut})})
			in = width
		}
	}
	x = b.Node("GlobalAveragePool", []string{x})
	x = b.Node("Flatten", []string{x}, onnxbuild.Int("axis", 1))
	w := b.Weights([]int64{int64(classes), 512}, 512)
	bias := b.Weights([]int64{int64(classes)}, 0)
	x = b.Node("Gemm", []string{x, w, bias}, onnxbuild.Int("transB", 1))
	b.Node("Softmax", []string{x}, onnxbuild.Int("axis", 1))
	return b.Model("resnet18", "shoal-bench", onnxbuild.ValueInfo("images", false, 3, 224, 224),
		onnxbuild.ValueInfo("probabilities", false, int64(classes)))
}

// conv adds a k×k convolution with bias (a folded batch norm), optionally
// followed by a ReLU.
func conv(b *onnxbuild.Graph, x string, in, out, k, stride, pad int, relu bool) string {
	w := b.Weights([]int64{int64(out), int64(in), int64(k), int64(k)}, in*k*k)
	bias := b.Weights([]int64{int64(out)}, 0)
	y := b.Node("Conv", []string{x, w, bias}, onnxbuild.Ints("kernel_shape", k, k), onnxbuild.Ints("strides", stride, stride),
		onnxbuild.Ints("pads", pad, pad, pad, pad))
	if relu {
		y = b.Node("Relu", []string{y})
	}
	return y
}
