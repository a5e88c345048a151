package registry

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

// TestInputSpecServable checks that the Registry refuses input specs that
// Inference cannot preprocess: each side may be up to 8192 pixels, but not
// both at once.
func TestInputSpecServable(t *testing.T) {
	tests := []struct {
		h, w    int32
		wantErr string
	}{
		{4096, 4096, ""},
		{8192, 2048, ""},
		{8192, 8192, "input_spec cannot be served: imaging: input spec size 8192x8192 is too large: at most 16777216 pixels"},
		{8193, 1, "each must be 1 to 8192 pixels"},
	}
	for _, tt := range tests {
		_, err := normalizeInputSpec(&registrypb.InputSpec{Channels: 3, Height: tt.h, Width: tt.w})
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("normalizeInputSpec(%dx%d) = %v; want %q", tt.w, tt.h, err, tt.wantErr)
		}
	}
}

// TestInputSpecJPEGDecode: the JPEG decode mode is kept as asked, made
// explicit (FULL) when not given, and refused when unknown.
func TestInputSpecJPEGDecode(t *testing.T) {
	for in, want := range map[registrypb.JpegDecode]registrypb.JpegDecode{
		registrypb.JpegDecode_JPEG_DECODE_UNSPECIFIED: registrypb.JpegDecode_JPEG_DECODE_FULL,
		registrypb.JpegDecode_JPEG_DECODE_FULL:        registrypb.JpegDecode_JPEG_DECODE_FULL,
		registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED:  registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED,
	} {
		out, err := normalizeInputSpec(&registrypb.InputSpec{Channels: 1, Height: 28, Width: 28, JpegDecode: in})
		if err != nil || out.GetJpegDecode() != want {
			t.Errorf("normalizeInputSpec(jpeg decode %v) = %v, %v; want %v", in, out.GetJpegDecode(), err, want)
		}
	}
	_, err := normalizeInputSpec(&registrypb.InputSpec{Channels: 1, Height: 28, Width: 28, JpegDecode: 9})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "inputSpec.jpegDecode = 9") {
		t.Errorf("normalizeInputSpec(jpeg decode 9) = %v; want InvalidArgument naming the field", err)
	}
}
