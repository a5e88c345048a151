package cli

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

func TestUploadSpec(t *testing.T) {
	cmd := &cobra.Command{}
	u := registerUploadFlags(cmd, func(string) (string, bool) { return "alice", true })
	err := cmd.Flags().Parse([]string{"--model", "fish", "--labels", "Catfish, Gold Fish", "m.onnx",
		"--size", "224", "--width", "200", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225",
		"--layout", "NHWC", "--resize", "center-crop", "--probabilities"})
	if pos := cmd.Flags().Args(); err != nil || !slices.Equal(pos, []string{"m.onnx"}) {
		t.Fatalf("Parse() = %v, %v; want [m.onnx]", pos, err)
	}
	s, err := u.spec()
	if err != nil {
		t.Fatal(err)
	}
	in := s.GetInputSpec()
	if s.GetModel() != "fish" || !slices.Equal(s.GetLabels(), []string{"Catfish", "Gold Fish"}) || s.GetCreator() != "alice" ||
		in.GetHeight() != 224 || in.GetWidth() != 200 || in.GetChannels() != 3 || len(in.GetMean()) != 3 || in.GetStd()[2] != 0.225 ||
		in.GetLayout() != registrypb.TensorLayout_TENSOR_LAYOUT_NHWC || in.GetResizeMode() != registrypb.ResizeMode_RESIZE_MODE_CENTER_CROP ||
		!in.GetOutputIsProbabilities() || in.GetJpegDecode() != registrypb.JpegDecode_JPEG_DECODE_FULL {
		t.Errorf("spec() = %v", s)
	}
}

// TestUploadJPEGDecode: an upload decodes JPEGs in full unless it asks for
// DCT-scaled decoding.
func TestUploadJPEGDecode(t *testing.T) {
	for _, tc := range []struct {
		flag    string
		want    registrypb.JpegDecode
		wantErr string
	}{
		{"full", registrypb.JpegDecode_JPEG_DECODE_FULL, ""},
		{"dct-scaled", registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED, ""},
		{"DCT-Scaled", registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED, ""},
		{"fast", 0, `--jpeg-decode="fast": use full or dct-scaled`},
	} {
		cmd := &cobra.Command{}
		u := registerUploadFlags(cmd, func(string) (string, bool) { return "alice", true })
		if err := cmd.Flags().Parse([]string{"--model", "m", "--size", "28", "--channels", "1", "--jpeg-decode", tc.flag, "m.onnx"}); err != nil {
			t.Fatal(err)
		}
		s, err := u.spec()
		switch {
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("--jpeg-decode %s: spec() = %v; want %q", tc.flag, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || s.GetInputSpec().GetJpegDecode() != tc.want):
			t.Errorf("--jpeg-decode %s: spec() = %v, %v; want %v", tc.flag, s.GetInputSpec().GetJpegDecode(), err, tc.want)
		}
	}
}

func TestFormatInput(t *testing.T) {
	tests := []struct {
		in   *registrypb.InputSpec
		want string
	}{
		{&registrypb.InputSpec{Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW, Channels: 1, Height: 28, Width: 28,
			ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH},
			"NCHW, 1 channel, 28×28, resize stretch, no normalisation"},
		{&registrypb.InputSpec{Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NHWC, Channels: 3, Height: 224, Width: 200,
			ResizeMode: registrypb.ResizeMode_RESIZE_MODE_LETTERBOX, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}},
			"NHWC, 3 channels, 224×200, resize letterbox, mean [0.5 0.5 0.5], std [0.25 0.25 0.25]"},
		{&registrypb.InputSpec{Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW, Channels: 3, Height: 8, Width: 8,
			ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH, Mean: []float32{0.5, 0.5, 0.5}},
			"NCHW, 3 channels, 8×8, resize stretch, mean [0.5 0.5 0.5]"},
		{&registrypb.InputSpec{Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW, Channels: 1, Height: 28, Width: 28,
			ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH, JpegDecode: registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED},
			"NCHW, 1 channel, 28×28, resize stretch, JPEG decode dct-scaled, no normalisation"},
	}
	for _, tt := range tests {
		if got := formatInput(tt.in); got != tt.want {
			t.Errorf("formatInput(%v) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
