package registry

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/fuzztest"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// FuzzVersionSpec checks what an upload's spec is checked with before its
// artifact arrives, beyond its contract's rules (labels, input spec) on any VersionSpec that
// unmarshals: no panic, InvalidArgument for every refusal, and an input
// spec the Registry accepts is one Inference can serve: a version that
// registers but can never load is worse than a refusal.
func FuzzVersionSpec(f *testing.F) {
	f.Fuzz(func(t *testing.T, wire []byte) {
		defer fuzztest.Watchdog(5 * time.Second)()
		var spec registrypb.VersionSpec
		if proto.Unmarshal(wire, &spec) != nil {
			return
		}
		for _, err := range []error{checkLabels(spec.GetLabels())} {
			if err != nil && status.Code(err) != codes.InvalidArgument {
				t.Fatalf("check = %v; want InvalidArgument", err)
			}
		}
		in, err := normalizeInputSpec(spec.GetInputSpec())
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("normalizeInputSpec() = %v; want InvalidArgument", err)
			}
			return
		}
		if _, err := imaging.SpecFromProto(in); err != nil {
			t.Fatalf("normalizeInputSpec(%v) accepted %v, which Inference refuses: %v", spec.GetInputSpec(), in, err)
		}
	})
}

// FuzzModelShapes checks the comparison of an uploaded graph's inputs and
// outputs, as ONNX Runtime reports them, with the spec and the labels: any
// tensors, names, element types and shapes (huge, zero, negative), any
// spec the Registry accepts. No panic; an accepted graph is fed as the
// spec says and answers one score per label.
func FuzzModelShapes(f *testing.F) {
	f.Fuzz(func(t *testing.T, infoJSON, specWire []byte, labels uint16) {
		defer fuzztest.Watchdog(5 * time.Second)()
		var info onnxrt.ModelInfo
		var raw registrypb.InputSpec
		if json.Unmarshal(infoJSON, &info) != nil || proto.Unmarshal(specWire, &raw) != nil {
			return
		}
		spec, err := normalizeInputSpec(&raw)
		if err != nil {
			return
		}
		n := int(labels % 2000)
		if err := checkModelShapes(info, spec, n); err != nil {
			if err.Error() == "" {
				t.Fatal("checkModelShapes() refused with no reason")
			}
			return
		}
		in, okIn := info.Input(spec.GetInputName())
		out, okOut := info.Output(spec.GetOutputName())
		switch {
		case !okIn || !okOut:
			t.Fatalf("checkModelShapes() = nil but the graph has no input %q or output %q", spec.GetInputName(), spec.GetOutputName())
		case in.ElementType != "float32" || len(in.Shape) != 4:
			t.Fatalf("checkModelShapes() accepted input %+v", in)
		case out.ElementType != "float32" || len(out.Shape) != 2 || out.Shape[1] != int64(n):
			t.Fatalf("checkModelShapes() accepted output %+v for %d labels", out, n)
		}
	})
}

// TestWriteFuzzSeeds rebuilds the seed corpora of this package's fuzz
// targets (see package fuzztest).
func TestWriteFuzzSeeds(t *testing.T) {
	marshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rgb := &registrypb.InputSpec{Channels: 3, Height: 224, Width: 224, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}
	specs := []fuzztest.Seed{
		{Name: "resnet", Args: []any{marshal(&registrypb.VersionSpec{Model: "fish", Labels: []string{"a", "b"}, InputSpec: rgb})}},
		{Name: "gray-nhwc", Args: []any{marshal(&registrypb.VersionSpec{Model: "digits", Labels: []string{"0", "1"},
			InputSpec: &registrypb.InputSpec{Channels: 1, Height: 28, Width: 28, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NHWC, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_LETTERBOX}})}},
		{Name: "largest-sides", Args: []any{marshal(&registrypb.VersionSpec{Model: "big", Labels: []string{"a"},
			InputSpec: &registrypb.InputSpec{Channels: 3, Height: 8192, Width: 8192}})}},
		{Name: "bad-std", Args: []any{marshal(&registrypb.VersionSpec{Model: "x", Labels: []string{"a"},
			InputSpec: &registrypb.InputSpec{Channels: 3, Height: 2, Width: 2, Std: []float32{0, 1, -1}}})}},
		{Name: "duplicate-labels", Args: []any{marshal(&registrypb.VersionSpec{Model: "x", Labels: []string{"a", "a", " "}})}},
		{Name: "bad-enums", Args: []any{marshal(&registrypb.VersionSpec{Model: "UPPER", InputSpec: &registrypb.InputSpec{Channels: 3, Height: 1, Width: 1, Layout: 7, ResizeMode: 9}})}},
	}
	fuzztest.WriteSeeds(t, "FuzzVersionSpec", specs)

	info := func(in, out onnxrt.TensorInfo) []byte {
		b, err := json.Marshal(onnxrt.ModelInfo{Inputs: []onnxrt.TensorInfo{in}, Outputs: []onnxrt.TensorInfo{out}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	f32 := func(name string, shape ...int64) onnxrt.TensorInfo {
		return onnxrt.TensorInfo{Name: name, ElementType: "float32", Shape: shape, Tensor: true}
	}
	small := marshal(&registrypb.InputSpec{Channels: 3, Height: 4, Width: 5})
	shapes := []fuzztest.Seed{
		{Name: "matches", Args: []any{info(f32("input", -1, 3, 4, 5), f32("output", -1, 2)), small, uint16(2)}},
		{Name: "fixed-batch", Args: []any{info(f32("input", 1, 3, 4, 5), f32("output", 1, 2)), small, uint16(2)}},
		{Name: "nhwc-mismatch", Args: []any{info(f32("input", -1, 4, 5, 3), f32("output", -1, 2)), small, uint16(2)}},
		{Name: "dynamic-classes", Args: []any{info(f32("input", -1, -1, -1, -1), f32("output", -1, -1)), small, uint16(3)}},
		{Name: "huge-dims", Args: []any{info(f32("input", 1<<62, 3, 4, 5), f32("output", -1, 1<<40)), small, uint16(2)}},
		{Name: "not-float", Args: []any{info(onnxrt.TensorInfo{Name: "input", ElementType: "uint8", Shape: []int64{-1, 3, 4, 5}, Tensor: true}, f32("output", -1, 2)), small, uint16(2)}},
		{Name: "sequence-output", Args: []any{info(f32("input", -1, 3, 4, 5), onnxrt.TensorInfo{Name: "output"}), small, uint16(2)}},
		{Name: "two-inputs", Args: []any{[]byte(`{"Inputs":[{"Name":"a","ElementType":"float32","Shape":[-1,3,4,5],"Tensor":true},{"Name":"b","ElementType":"float32","Shape":[1],"Tensor":true}],"Outputs":[{"Name":"o","ElementType":"float32","Shape":[-1,2],"Tensor":true}]}`), small, uint16(2)}},
		{Name: "no-tensors", Args: []any{[]byte(`{}`), small, uint16(2)}},
	}
	fuzztest.WriteSeeds(t, "FuzzModelShapes", shapes)
}
