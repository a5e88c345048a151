package onnxrt_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// InspectIsolated answers as InspectFile does, from a child process, and
// turns a bad file, a crash, a timeout or a memory bound into
// ErrInvalidModel with a reason, while this process carries on.
func TestInspectIsolated(t *testing.T) {
	rt := onnxtest.Runtime(t)
	model := onnxtest.Classifier{Channels: 3, Height: 8, Width: 6, Classes: 5}.Bytes()
	file := func(b []byte) string {
		path := filepath.Join(t.TempDir(), "m.onnx")
		if err := writeBytes(path, b); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := file(model)
	want, err := rt.InspectFile(good)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rt.InspectIsolated(t.Context(), good, onnxrt.Isolation{Timeout: time.Minute, MemoryBytes: 1 << 30})
	if err != nil || !slices.EqualFunc(got.Inputs, want.Inputs, equalInfo) || !slices.EqualFunc(got.Outputs, want.Outputs, equalInfo) {
		t.Fatalf("InspectIsolated(model) = %+v, %v; want %+v", got, err, want)
	}

	refused := []struct {
		name string
		path string
		iso  onnxrt.Isolation
		want string
	}{
		{"text", file([]byte("this is not an ONNX model")), onnxrt.Isolation{Timeout: time.Minute}, "Protobuf parsing failed"},
		{"truncated", file(model[:40]), onnxrt.Isolation{Timeout: time.Minute}, ""},
		{"missing", filepath.Join(t.TempDir(), "nothing.onnx"), onnxrt.Isolation{Timeout: time.Minute}, ""},
		{"timeout", good, onnxrt.Isolation{Timeout: time.Nanosecond}, "longer than 1ns"},
		// 78 MB of weights do not fit in 256 MiB next to the runtime.
		{"memory", file(onnxtest.Classifier{Channels: 3, Height: 256, Width: 256, Classes: 100}.Bytes()),
			onnxrt.Isolation{Timeout: time.Minute, MemoryBytes: 256 << 20}, ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if tt.iso.MemoryBytes > 0 && raceBuild {
				t.Skip("a race-built child cannot load ONNX Runtime within this bound; make check (no -race) runs it")
			}
			_, err := rt.InspectIsolated(t.Context(), tt.path, tt.iso)
			if !errors.Is(err, onnxrt.ErrInvalidModel) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("InspectIsolated(%s) = %v; want ErrInvalidModel saying %q", tt.name, err, tt.want)
			}
		})
	}

	// The caller's context ending is the caller's error, not the model's.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := rt.InspectIsolated(ctx, good, onnxrt.Isolation{Timeout: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Errorf("InspectIsolated(canceled context) = %v; want the context's error", err)
	}
}
