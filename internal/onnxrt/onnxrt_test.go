package onnxrt_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

func TestLibraryPathMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so")
	tests := []struct {
		name string
		cfg  onnxrt.Config
		env  string
		home string
	}{
		{"flag names a missing file", onnxrt.Config{Library: missing}, "", ""},
		{"env names a missing file", onnxrt.Config{}, missing, ""},
		{"nothing in the cache", onnxrt.Config{}, "", t.TempDir()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(onnxrt.EnvLibrary, tt.env)
			t.Setenv("SHOAL_CACHE_DIR", tt.home)
			_, err := tt.cfg.LibraryPath()
			if !errors.Is(err, onnxrt.ErrLibraryMissing) {
				t.Fatalf("LibraryPath() = %v; want ErrLibraryMissing", err)
			}
			for _, want := range []string{"--onnxruntime.library", onnxrt.EnvLibrary, "scripts/setup-onnxruntime.sh"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("LibraryPath() = %q; want it to mention %q", err, want)
				}
			}
			if _, err := onnxrt.Load(tt.cfg); !errors.Is(err, onnxrt.ErrLibraryMissing) {
				t.Errorf("Load() = %v; want ErrLibraryMissing", err)
			}
		})
	}
	if err := (&onnxrt.Config{Library: missing}).Validate(); err == nil || !strings.Contains(err.Error(), "setup-onnxruntime.sh") {
		t.Errorf("Validate() = %v; want an error naming the setup script", err)
	}
}

func TestLoadTwiceSameRuntime(t *testing.T) {
	rt := onnxtest.Runtime(t)
	again, err := onnxrt.Load(onnxrt.Config{Library: rt.Library()})
	if err != nil || again.Library() != rt.Library() {
		t.Fatalf("Load(same library) = %v, %v; want the loaded runtime", again, err)
	}
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := writeFile(other); err != nil {
		t.Fatal(err)
	}
	if _, err := onnxrt.Load(onnxrt.Config{Library: other}); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Load(another library) = %v; want an 'already loaded' error", err)
	}
}

func TestInspect(t *testing.T) {
	rt := onnxtest.Runtime(t)
	tests := []struct {
		name    string
		model   onnxtest.Classifier
		wantIn  []int64
		wantOut []int64
		inName  string
		outName string
	}{
		{"nchw dynamic batch", onnxtest.Classifier{Channels: 3, Height: 8, Width: 6, Classes: 5},
			[]int64{-1, 3, 8, 6}, []int64{-1, 5}, "input", "output"},
		{"nhwc fixed batch with softmax", onnxtest.Classifier{Input: "images", Output: "probs", Channels: 1, Height: 4, Width: 4, Classes: 2, NHWC: true, Batch: 1, Softmax: true},
			[]int64{1, 4, 4, 1}, []int64{1, 2}, "images", "probs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := rt.Inspect(tt.model.Bytes())
			if err != nil {
				t.Fatalf("Inspect() = %v", err)
			}
			in, ok := info.Input(tt.inName)
			if !ok || !in.Tensor || in.ElementType != "float32" || !slices.Equal(in.Shape, tt.wantIn) {
				t.Errorf("Input(%q) = %+v, %v; want float32 tensor %v", tt.inName, in, ok, tt.wantIn)
			}
			out, ok := info.Output(tt.outName)
			if !ok || out.ElementType != "float32" || !slices.Equal(out.Shape, tt.wantOut) {
				t.Errorf("Output(%q) = %+v, %v; want float32 tensor %v", tt.outName, out, ok, tt.wantOut)
			}
			path := filepath.Join(t.TempDir(), "m.onnx")
			if err := writeBytes(path, tt.model.Bytes()); err != nil {
				t.Fatal(err)
			}
			fromFile, err := rt.InspectFile(path)
			if err != nil || !slices.EqualFunc(fromFile.Inputs, info.Inputs, equalInfo) || !slices.EqualFunc(fromFile.Outputs, info.Outputs, equalInfo) {
				t.Errorf("InspectFile() = %+v, %v; want %+v", fromFile, err, info)
			}
		})
	}
}

func equalInfo(a, b onnxrt.TensorInfo) bool {
	return a.Name == b.Name && a.ElementType == b.ElementType && a.Tensor == b.Tensor && slices.Equal(a.Shape, b.Shape)
}

func TestInspectRejectsNonModels(t *testing.T) {
	rt := onnxtest.Runtime(t)
	for name, data := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("this is not an ONNX model"),
		"truncated": onnxtest.Classifier{Channels: 3, Height: 2, Width: 2, Classes: 2}.Bytes()[:40],
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := rt.Inspect(data); !errors.Is(err, onnxrt.ErrInvalidModel) {
				t.Errorf("Inspect(%s) = %v; want ErrInvalidModel", name, err)
			}
		})
	}
}
