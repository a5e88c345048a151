package registry

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/onnxrt"
)

func checkVersionNumber(v int64) error {
	if v <= 0 {
		return status.Errorf(codes.InvalidArgument, "version must be a positive number, got %d", v)
	}
	return nil
}

// maxLabelLen bounds one class name.
const maxLabelLen = 255

// checkLabels requires a non-empty list of distinct, non-empty class names.
func checkLabels(labels []string) error {
	if len(labels) == 0 {
		return status.Error(codes.InvalidArgument, "labels are required: the class names in the order of the model's output")
	}
	seen := make(map[string]int, len(labels))
	for i, l := range labels {
		switch {
		case strings.TrimSpace(l) == "":
			return status.Errorf(codes.InvalidArgument, "label #%d is empty", i+1)
		case len(l) > maxLabelLen:
			return status.Errorf(codes.InvalidArgument, "label #%d is longer than %d bytes", i+1, maxLabelLen)
		}
		if j, dup := seen[l]; dup {
			return status.Errorf(codes.InvalidArgument, "label %q appears twice (#%d and #%d): labels must be unique", l, j+1, i+1)
		}
		seen[l] = i
	}
	return nil
}

// normalizeInputSpec checks in and returns a copy with defaults made
// explicit (layout NCHW, resize STRETCH, JPEG decode FULL), so that what
// is stored says exactly how to preprocess.
func normalizeInputSpec(in *registrypb.InputSpec) (*registrypb.InputSpec, error) {
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "inputSpec is required: channels, height, width, mean/std and layout of the model's input")
	}
	out := &registrypb.InputSpec{
		Channels: in.GetChannels(), Height: in.GetHeight(), Width: in.GetWidth(),
		ResizeMode: in.GetResizeMode(), Mean: slices.Clone(in.GetMean()), Std: slices.Clone(in.GetStd()),
		Layout: in.GetLayout(), InputName: in.GetInputName(), OutputName: in.GetOutputName(),
		OutputIsProbabilities: in.GetOutputIsProbabilities(), JpegDecode: in.GetJpegDecode(),
	}
	if out.Channels != 1 && out.Channels != 3 {
		return nil, status.Errorf(codes.InvalidArgument, "inputSpec.channels = %d: use 1 (grayscale) or 3 (RGB)", out.Channels)
	}
	const maxSide = 8192
	if out.Height < 1 || out.Height > maxSide || out.Width < 1 || out.Width > maxSide {
		return nil, status.Errorf(codes.InvalidArgument, "inputSpec height × width = %d × %d: each must be 1 to %d pixels", out.Height, out.Width, maxSide)
	}
	for _, s := range []struct {
		name string
		v    []float32
	}{{"mean", out.Mean}, {"std", out.Std}} {
		if len(s.v) != 0 && len(s.v) != int(out.Channels) {
			return nil, status.Errorf(codes.InvalidArgument, "inputSpec.%s has %d values: give one per channel (%d) or none", s.name, len(s.v), out.Channels)
		}
	}
	for i, s := range out.Std {
		if !(s > 0) {
			return nil, status.Errorf(codes.InvalidArgument, "inputSpec.std[%d] = %v: must be positive", i, s)
		}
	}
	switch out.Layout {
	case registrypb.TensorLayout_TENSOR_LAYOUT_UNSPECIFIED:
		out.Layout = registrypb.TensorLayout_TENSOR_LAYOUT_NCHW
	case registrypb.TensorLayout_TENSOR_LAYOUT_NCHW, registrypb.TensorLayout_TENSOR_LAYOUT_NHWC:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "inputSpec.layout = %d: unknown layout", out.Layout)
	}
	switch out.ResizeMode {
	case registrypb.ResizeMode_RESIZE_MODE_UNSPECIFIED:
		out.ResizeMode = registrypb.ResizeMode_RESIZE_MODE_STRETCH
	case registrypb.ResizeMode_RESIZE_MODE_STRETCH, registrypb.ResizeMode_RESIZE_MODE_CENTER_CROP, registrypb.ResizeMode_RESIZE_MODE_LETTERBOX:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "inputSpec.resizeMode = %d: unknown mode", out.ResizeMode)
	}
	switch out.JpegDecode {
	case registrypb.JpegDecode_JPEG_DECODE_UNSPECIFIED:
		out.JpegDecode = registrypb.JpegDecode_JPEG_DECODE_FULL
	case registrypb.JpegDecode_JPEG_DECODE_FULL, registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED:
	default:
		return nil, status.Errorf(codes.InvalidArgument, "inputSpec.jpegDecode = %d: unknown mode (JPEG_DECODE_FULL or JPEG_DECODE_DCT_SCALED)", out.JpegDecode)
	}
	// Inference preprocesses with this package's rules (it bounds the
	// pixels, not only each side): a version it cannot serve is refused
	// here rather than registered.
	if _, err := imaging.SpecFromProto(out); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "input_spec cannot be served: %v", err)
	}
	return out, nil
}

// checkModelShapes checks that the ONNX graph can be fed as spec says and
// answers one score per label. It fills in spec's input and output names
// when the graph has only one of each. The error says what disagrees.
func checkModelShapes(info onnxrt.ModelInfo, spec *registrypb.InputSpec, labels int) error {
	in, err := pick("input", info.Inputs, spec.InputName, "inputSpec.inputName")
	if err != nil {
		return err
	}
	out, err := pick("output", info.Outputs, spec.OutputName, "inputSpec.outputName")
	if err != nil {
		return err
	}
	spec.InputName, spec.OutputName = in.Name, out.Name

	if !in.Tensor || in.ElementType != "float32" {
		return fmt.Errorf("input %q is %s; serving feeds a float32 image tensor", in.Name, describe(in))
	}
	if len(in.Shape) != 4 {
		return fmt.Errorf("input %q has shape %v; want 4 dimensions (%s)", in.Name, in.Shape, layoutName(spec.Layout))
	}
	want := []int64{1, int64(spec.Channels), int64(spec.Height), int64(spec.Width)}
	names := []string{"batch", "channels", "height", "width"}
	if spec.Layout == registrypb.TensorLayout_TENSOR_LAYOUT_NHWC {
		want = []int64{1, int64(spec.Height), int64(spec.Width), int64(spec.Channels)}
		names = []string{"batch", "height", "width", "channels"}
	}
	for i, d := range in.Shape {
		if d != -1 && d != want[i] {
			return fmt.Errorf("input %q has shape %v (%s): its %s dimension is %d but the input spec says %d",
				in.Name, in.Shape, layoutName(spec.Layout), names[i], d, want[i])
		}
	}

	if !out.Tensor || out.ElementType != "float32" {
		return fmt.Errorf("output %q is %s; serving reads a float32 score tensor", out.Name, describe(out))
	}
	if len(out.Shape) != 2 {
		return fmt.Errorf("output %q has shape %v; want [batch, classes]", out.Name, out.Shape)
	}
	if b := out.Shape[0]; b != -1 && b != 1 {
		return fmt.Errorf("output %q has shape %v: its batch dimension is %d, want dynamic or 1", out.Name, out.Shape, b)
	}
	switch k := out.Shape[1]; {
	case k == -1:
		return fmt.Errorf("output %q has shape %v: its class dimension is dynamic, so it cannot be checked against the %d labels", out.Name, out.Shape, labels)
	case k != int64(labels):
		return fmt.Errorf("output %q has %d classes (shape %v) but %d labels were given", out.Name, k, out.Shape, labels)
	}
	return nil
}

// pick returns the tensor named name, or the only one when name is empty.
func pick(what string, ts []onnxrt.TensorInfo, name, field string) (onnxrt.TensorInfo, error) {
	var names []string
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
		names = append(names, fmt.Sprintf("%q", t.Name))
	}
	switch {
	case name == "" && len(ts) == 1:
		return ts[0], nil
	case name == "":
		return onnxrt.TensorInfo{}, fmt.Errorf("the model has %d %ss (%s): set %s to the one to use", len(ts), what, strings.Join(names, ", "), field)
	}
	return onnxrt.TensorInfo{}, fmt.Errorf("the model has no %s named %q (it has %s)", what, name, strings.Join(names, ", "))
}

func describe(t onnxrt.TensorInfo) string {
	if !t.Tensor {
		return "not a tensor"
	}
	return fmt.Sprintf("a %s tensor", t.ElementType)
}

func layoutName(l registrypb.TensorLayout) string {
	if l == registrypb.TensorLayout_TENSOR_LAYOUT_NHWC {
		return "NHWC"
	}
	return "NCHW"
}
