package imaging_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/shoalml/shoal/internal/imaging"
)

// TestPreprocessGolden pins Preprocess's exact output. Models are trained
// on what it produces and served with it, so any change to it, however
// small, changes what every registered model sees: if this fails on
// purpose, the models trained before the change need retraining, and the
// change must say so.
func TestPreprocessGolden(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / 299), uint8(y * 255 / 199), uint8((x*7 + y*13) % 256), 255})
		}
	}
	tests := []struct {
		name string
		spec imaging.Spec
		want string
	}{
		{"gray 28 stretch", imaging.Spec{Channels: 1, Height: 28, Width: 28, Resize: imaging.ResizeStretch}, "05ce72009c2604e292be6da60fc2921f9abd255701bec691b01870815865f95a"},
		{"rgb 64 center crop, normalised", imaging.Spec{Channels: 3, Height: 64, Width: 64, Resize: imaging.ResizeCenterCrop,
			Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}, "5d5ea0c5ebdf9f9a0dbed1c13993c49ea5bf2b6ee35aa19faad495b825628c74"},
		{"rgb 32 letterbox nhwc", imaging.Spec{Channels: 3, Height: 32, Width: 32, Resize: imaging.ResizeLetterbox, NHWC: true}, "513bac896d7cf2f087caa9265d174c0d3ab465b56b80707336f32bf81d1bcfc7"},
	}
	for _, tt := range tests {
		dst := make([]float32, tt.spec.Size())
		if err := imaging.Preprocess(img, tt.spec, dst); err != nil {
			t.Fatalf("%s: Preprocess = %v", tt.name, err)
		}
		// Rounded to 1e-4 before hashing, so that a platform that fuses
		// floating-point operations differently does not fail the test,
		// while any real change of the function does.
		h := sha256.New()
		for _, v := range dst {
			_ = binary.Write(h, binary.LittleEndian, int32(math.Round(float64(v)*1e4)))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != tt.want {
			t.Errorf("%s: Preprocess output hash = %s; want %s", tt.name, got, tt.want)
		}
	}
}
