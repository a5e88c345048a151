package ml

import (
	"fmt"
	timage "github.com/gomlx/gomlx/core/tensors/images"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestConvolutionGradientsOnONNXRuntime: the gradients of convolutions,
// with respect to input and kernel, computed on ONNX Runtime's backend
// (whose Conv has no input dilation; kernel gradients as matrix products
// from 16 input channels) are the pure-Go backend's (GoMLX's own), over
// the shapes ImageNet networks use: 7x7 and 3x3 at stride 2 with padding,
// 1x1 at strides 1 and 2, 3x3 at stride 1, odd sizes, unequal strides,
// kernel dilation, grouped and depthwise convolutions, NHWC with an HWIO
// kernel.
func TestConvolutionGradientsOnONNXRuntime(t *testing.T) {
	ort, pure := bothBackends(t)

	type conv struct {
		in, out, groups, h, w, k int
		strides                  [2]int
		pads                     [2][2]int
		nhwc, hwio               bool // NHWC input and output; kernel as [h, w, in, out]
		dilation                 int  // of the kernel, when > 1
	}
	for _, c := range []conv{
		{in: 3, out: 4, groups: 1, h: 16, w: 16, k: 7, strides: [2]int{2, 2}, pads: [2][2]int{{3, 3}, {3, 3}}},
		{in: 4, out: 6, groups: 1, h: 9, w: 9, k: 3, strides: [2]int{2, 2}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{in: 4, out: 6, groups: 1, h: 8, w: 11, k: 1, strides: [2]int{2, 2}},
		{in: 2, out: 3, groups: 1, h: 10, w: 9, k: 3, strides: [2]int{3, 2}, pads: [2][2]int{{0, 2}, {1, 0}}},
		{in: 4, out: 4, groups: 4, h: 9, w: 9, k: 3, strides: [2]int{2, 2}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{in: 4, out: 6, groups: 2, h: 10, w: 10, k: 5, strides: [2]int{2, 2}, pads: [2][2]int{{2, 2}, {2, 2}}},
		{in: 3, out: 4, groups: 1, h: 12, w: 12, k: 3, strides: [2]int{2, 2}, pads: [2][2]int{{1, 1}, {1, 1}}, nhwc: true},
		// 16 input channels or more: the kernel gradient is Shoal's matrix
		// products, for every convolution without groups, strided or not.
		{in: 16, out: 6, groups: 1, h: 9, w: 8, k: 3, strides: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{in: 16, out: 8, groups: 1, h: 9, w: 9, k: 3, strides: [2]int{2, 2}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{in: 20, out: 3, groups: 1, h: 7, w: 7, k: 1, strides: [2]int{1, 1}},
		{in: 16, out: 4, groups: 1, h: 8, w: 11, k: 1, strides: [2]int{2, 2}},
		{in: 16, out: 5, groups: 1, h: 11, w: 10, k: 3, strides: [2]int{1, 1}, pads: [2][2]int{{2, 2}, {0, 1}}, dilation: 2},
		{in: 16, out: 4, groups: 1, h: 12, w: 12, k: 3, strides: [2]int{2, 1}, pads: [2][2]int{{1, 1}, {1, 1}}, nhwc: true, hwio: true},
		{in: 3, out: 4, groups: 1, h: 12, w: 12, k: 3, strides: [2]int{2, 1}, pads: [2][2]int{{1, 1}, {1, 1}}, nhwc: true, hwio: true},
		// Grouped and depthwise: both gradients are Shoal's.
		{in: 16, out: 16, groups: 4, h: 9, w: 9, k: 3, strides: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{in: 6, out: 6, groups: 6, h: 9, w: 10, k: 3, strides: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{in: 6, out: 6, groups: 6, h: 11, w: 11, k: 5, strides: [2]int{2, 2}, pads: [2][2]int{{2, 2}, {2, 2}}},
		{in: 4, out: 8, groups: 4, h: 10, w: 9, k: 3, strides: [2]int{1, 2}, pads: [2][2]int{{0, 1}, {1, 1}}},
		{in: 6, out: 6, groups: 6, h: 11, w: 10, k: 3, strides: [2]int{1, 1}, pads: [2][2]int{{2, 2}, {2, 2}}, dilation: 2},
		{in: 8, out: 8, groups: 8, h: 9, w: 9, k: 3, strides: [2]int{2, 2}, pads: [2][2]int{{1, 1}, {1, 1}}, nhwc: true, hwio: true},
		{in: 8, out: 4, groups: 2, h: 9, w: 9, k: 3, strides: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}, nhwc: true, hwio: true},
	} {
		name := fmt.Sprintf("%dx%d/%v %d->%d groups %d on %dx%d", c.k, c.k, c.strides, c.in, c.out, c.groups, c.h, c.w)
		if c.nhwc {
			name += " NHWC"
		}
		if c.hwio {
			name += " HWIO"
		}
		var dilations []int
		if c.dilation > 1 {
			name += fmt.Sprintf(" dilation %d", c.dilation)
			dilations = []int{c.dilation, c.dilation}
		}
		rng := rand.New(rand.NewPCG(uint64(c.h), uint64(c.k)))
		const batch = 2
		xDims := []int{batch, c.in, c.h, c.w}
		axes := compute.ConvolveAxesConfig{InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
			KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
			OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3}}
		if c.nhwc {
			xDims = []int{batch, c.h, c.w, c.in}
			axes.InputChannels, axes.InputSpatial = 3, []int{1, 2}
			axes.OutputChannels, axes.OutputSpatial = 3, []int{1, 2}
		}
		kDims := []int{c.out, c.in / c.groups, c.k, c.k}
		if c.hwio {
			kDims = []int{c.k, c.k, c.in / c.groups, c.out}
			axes.KernelSpatial, axes.KernelInputChannels, axes.KernelOutputChannels = []int{0, 1}, 2, 3
		}
		random := func(dims []int) []float32 {
			n := 1
			for _, d := range dims {
				n *= d
			}
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			return v
		}
		x, k := random(xDims), random(kDims)
		// The loss weighs each output by a fixed pseudo-random value, so
		// every output position's gradient is distinct.
		grads := func(backend compute.Backend) [][]float32 {
			exec, err := NewExec(backend, func(x, k *Node) []*Node {
				y := ConvGeneral(x, k, axes, c.strides[:], [][2]int{c.pads[0], c.pads[1]}, nil, dilations, c.groups, 1)
				w := Sin(Add(Iota(x.Graph(), y.Shape(), -1), Mul(Iota(x.Graph(), y.Shape(), 1), Scalar(x.Graph(), y.DType(), 7))))
				loss := ReduceAllSum(Mul(y, w))
				return Gradient(loss, x, k)
			})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var out []*tensors.Tensor
			if err := catch(func() error {
				var err error
				out, err = exec.Call(tensors.FromFlatDataAndDimensions(x, xDims...), tensors.FromFlatDataAndDimensions(k, kDims...))
				return err
			}); err != nil {
				t.Fatalf("%s on %s: %v", name, backend.Name(), err)
			}
			flat := make([][]float32, len(out))
			for i, o := range out {
				flat[i], _ = tensors.CopyFlatData[float32](o)
			}
			return flat
		}
		want, got := grads(pure), grads(ort)
		for i, what := range []string{"input", "kernel"} {
			var worst float64
			for j := range want[i] {
				scale := math.Max(1, math.Abs(float64(want[i][j])))
				worst = math.Max(worst, math.Abs(float64(got[i][j]-want[i][j]))/scale)
			}
			if worst > 1e-4 {
				t.Errorf("%s: gradient with respect to the %s differs from the pure-Go backend's by up to %.2g (relative)", name, what, worst)
			}
		}
	}
}

// The reflection that reads a convolution's parameters finds them in the
// GoMLX version this module builds with.
func TestReadConvParams(t *testing.T) {
	needsGoMLX(t)
	b, err := NewBackend(BackendGo)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	var got convParams
	var ok bool
	exec, err := NewExec(b, func(x, k *Node) *Node {
		y := Convolve(x, k).StridePerAxis(2, 3).PaddingPerDim([][2]int{{1, 2}, {0, 1}}).Done()
		got, ok = readConvParams(y)
		return y
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.Call(tensors.FromShape(shapes.Make(dtypes.Float32, 2, 9, 9, 3)), tensors.FromShape(shapes.Make(dtypes.Float32, 3, 3, 3, 4))); err != nil {
		t.Fatal(err)
	}
	if !ok || fmt.Sprint(got.strides) != "[2 3]" || fmt.Sprint(got.paddings) != "[[1 2] [0 1]]" ||
		len(got.kernelDilations) != 0 || len(got.inputDilations) != 0 || got.channelGroupCount != 1 || got.batchGroupCount != 1 || fmt.Sprint(got.axes.OutputSpatial) != "[1 2]" {
		t.Errorf("readConvParams = %+v, %v; want strides [2 3], paddings [[1 2] [0 1]], no dilations, groups 1, NHWC axes", got, ok)
	}
}

// TestStridedPoolingGradientsOnONNXRuntime: the gradients of strided sum,
// mean and max pooling on ONNX Runtime's backend (whose Pad has no
// interior padding, and whose max pooling gradient dropped all but one
// window's share where windows overlap) are the pure-Go backend's, ties
// included.
func TestStridedPoolingGradientsOnONNXRuntime(t *testing.T) {
	ort, pure := bothBackends(t)
	for _, c := range []struct {
		kind         string
		h, w, window int
		strides      [2]int
		pads         [2][2]int
	}{
		{"sum", 8, 8, 2, [2]int{2, 2}, [2][2]int{}},
		{"mean", 7, 7, 7, [2]int{7, 7}, [2][2]int{}},
		{"mean", 9, 11, 3, [2]int{2, 3}, [2][2]int{}},
		{"max", 11, 11, 3, [2]int{2, 2}, [2][2]int{{1, 1}, {1, 1}}},
		{"max", 11, 11, 3, [2]int{2, 2}, [2][2]int{}},
		{"max", 11, 11, 3, [2]int{1, 1}, [2][2]int{{1, 1}, {1, 1}}},
		{"max", 12, 12, 2, [2]int{2, 2}, [2][2]int{}},
		{"max", 9, 11, 3, [2]int{2, 3}, [2][2]int{{1, 0}, {0, 1}}},
		{"max", 10, 10, 2, [2]int{3, 3}, [2][2]int{}}, // phases no window offset reaches
		{"max", 13, 7, 5, [2]int{2, 1}, [2][2]int{{2, 2}, {1, 1}}},
		{"max with ties", 11, 11, 3, [2]int{2, 2}, [2][2]int{{1, 1}, {1, 1}}},
	} {
		name := fmt.Sprintf("%s pooling %dx%d/%v on %dx%d", c.kind, c.window, c.window, c.strides, c.h, c.w)
		dims := []int{2, 3, c.h, c.w}
		x := make([]float32, 2*3*c.h*c.w)
		rng := rand.New(rand.NewPCG(uint64(c.h), uint64(c.window)))
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			if c.kind == "max with ties" {
				// Rectified, as pooling after a ReLU sees: windows of
				// zeros, whose gradient goes to the first.
				x[i] = max(x[i]-0.5, 0)
			}
		}
		grad := func(backend compute.Backend) []float32 {
			exec, err := NewExec(backend, func(x *Node) *Node {
				var pool *PoolBuilder
				switch c.kind {
				case "sum":
					pool = SumPool(x)
				case "mean":
					pool = MeanPool(x)
				default:
					pool = MaxPool(x)
				}
				y := pool.ChannelsAxis(timage.ChannelsFirst).Window(c.window).StridePerAxis(c.strides[:]...).PaddingPerDim([][2]int{c.pads[0], c.pads[1]}).Done()
				w := Sin(Add(Iota(x.Graph(), y.Shape(), -1), Mul(Iota(x.Graph(), y.Shape(), 1), Scalar(x.Graph(), y.DType(), 7))))
				return Gradient(ReduceAllSum(Mul(y, w)), x)[0]
			})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var out []*tensors.Tensor
			if err := catch(func() error {
				var err error
				out, err = exec.Call(tensors.FromFlatDataAndDimensions(x, dims...))
				return err
			}); err != nil {
				t.Fatalf("%s on %s: %v", name, backend.Name(), err)
			}
			flat, _ := tensors.CopyFlatData[float32](out[0])
			return flat
		}
		want, got := grad(pure), grad(ort)
		var worst float64
		for j := range want {
			worst = math.Max(worst, math.Abs(float64(got[j]-want[j]))/math.Max(1, math.Abs(float64(want[j]))))
		}
		if worst > 1e-5 {
			t.Errorf("%s: gradient differs from the pure-Go backend's by up to %.2g (relative)", name, worst)
		}
	}
}

// bothBackends opens ONNX Runtime's backend and the pure-Go one, finalised
// when t ends.
func bothBackends(t *testing.T) (ort, pure compute.Backend) {
	t.Helper()
	needsGoMLX(t)
	var err error
	if ort, err = NewBackend(onnxBackendConfig(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ort.Finalize)
	if pure, err = NewBackend(BackendGo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pure.Finalize)
	return ort, pure
}
