package registry

import (
	"strings"
	"testing"

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
