package ml

import (
	"context"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// Every architecture takes its own default input, which a job that names
// none trains on.
func TestArchitectureDefaultInput(t *testing.T) {
	for _, a := range Architectures() {
		if err := a.CheckInput(a.DefaultInput()); err != nil {
			t.Errorf("%s.CheckInput(%s) = %v; want its default input accepted", a.Name, a.DefaultInput(), err)
		}
	}
}

func TestParameterCount(t *testing.T) {
	needsGoMLX(t)
	arch, _ := LookupArchitecture("small-cnn")
	got, err := ParameterCount(arch, InputShape{1, 28, 28}, 10)
	if err != nil {
		t.Fatal(err)
	}
	// conv 3x3x1x16, BN 2x16, conv 3x3x16x32, BN 2x32, dense 7*7*32x128
	// + 128, head 128x10 + 10.
	want := int64(9*16 + 2*16 + 9*16*32 + 2*32 + 7*7*32*128 + 128 + 128*10 + 10)
	t.Logf("small-cnn: %d parameters", got)
	if got != want {
		t.Errorf("ParameterCount(small-cnn, 28x28x1, 10) = %d; want %d", got, want)
	}
}

// TestSubsample2 checks the ONNX-trainable stride-2 subsampling against a
// strided slice, on even and odd sizes and offsets.
func TestSubsample2(t *testing.T) {
	needsGoMLX(t)
	b, err := NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	for _, tc := range []struct{ h, w, y0, x0 int }{{8, 8, 0, 0}, {7, 9, 0, 0}, {10, 10, 1, 2}, {9, 7, 2, 1}} {
		x := make([]float32, 2*tc.h*tc.w*3)
		for i := range x {
			x[i] = float32(i)
		}
		outH, outW := (tc.h-tc.y0+1)/2, (tc.w-tc.x0+1)/2
		got, err := graph.NewExec(b, func(x *graph.Node) *graph.Node { return subsample2(x, tc.y0, tc.x0, outH, outW) })
		if err != nil {
			t.Fatal(err)
		}
		want, err := graph.NewExec(b, func(x *graph.Node) *graph.Node {
			return graph.Slice(x, graph.AxisRange(), graph.AxisRange(tc.y0, tc.h).Stride(2), graph.AxisRange(tc.x0, tc.w).Stride(2), graph.AxisRange())
		})
		if err != nil {
			t.Fatal(err)
		}
		in := tensors.FromFlatDataAndDimensions(x, 2, tc.h, tc.w, 3)
		g, err := got.Call(in)
		if err != nil {
			t.Fatal(err)
		}
		w, err := want.Call(in)
		if err != nil {
			t.Fatal(err)
		}
		gf, _ := tensors.CopyFlatData[float32](g[0])
		wf, _ := tensors.CopyFlatData[float32](w[0])
		if !slices.Equal(gf, wf) || !slices.Equal(g[0].Shape().Dimensions, w[0].Shape().Dimensions) {
			t.Errorf("subsample2(%+v) = %v %v; want %v %v", tc, g[0].Shape(), gf, w[0].Shape(), wf)
		}
	}
}

// TestStridedArchitecturesTrainOnONNXRuntime: the ResNets' stride-2
// convolutions must be trainable on ONNX Runtime's backend (the default
// where it is installed), whose Pad has no interior padding.
func TestStridedArchitecturesTrainOnONNXRuntime(t *testing.T) {
	needsGoMLX(t)
	backend := onnxBackendConfig(t)
	for _, tc := range []struct {
		arch  string
		shape InputShape
	}{{"resnet-small", InputShape{3, 16, 16}}, {"resnet18", InputShape{3, 33, 33}}} {
		cfg := Config{Architecture: tc.arch, NumClasses: 3, Epochs: 1, BatchSize: 8, LearningRate: 1e-3, Seed: 1, Backend: backend}
		res, err := Train(context.Background(), cfg, stripes(16, tc.shape, 1), stripes(9, tc.shape, 2))
		if err != nil {
			t.Errorf("Train(%s on ONNX Runtime) = %v", tc.arch, err)
			continue
		}
		res.Model.Close()
	}
}
