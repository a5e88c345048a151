package imaging

import (
	"fmt"
	"testing"

	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// The benchmarks behind BENCHMARKS.md's decoding table: a 300x300
// photo-like JPEG, decoded, then resized and normalised for the default
// small model (28x28 gray) and for ResNet18 (224x224 RGB), by the fast path
// and by x/image/draw.
//
//	go test -run '^$' -bench . ./internal/imaging/

var benchSpecs = []Spec{
	{Channels: 1, Height: 28, Width: 28, Resize: ResizeStretch},
	{Channels: 3, Height: 224, Width: 224, Resize: ResizeStretch,
		Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
}

func BenchmarkDecodeJPEG300(b *testing.B) {
	data := imagingtest.PhotoJPEG(300, 300)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Decode(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResize300(b *testing.B) {
	img, _, err := Decode(imagingtest.PhotoJPEG(300, 300), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range benchSpecs {
		name := fmt.Sprintf("%dx%dx%d", s.Channels, s.Height, s.Width)
		dst := make([]float32, s.Size())
		sr, dr := geometry(img.Bounds(), s)
		b.Run("fast/"+name, func(b *testing.B) {
			for b.Loop() {
				if !fastPreprocess(img, s, sr, dr, dst) {
					b.Fatal("fast path declined a decoded JPEG")
				}
			}
		})
		b.Run("ximage/"+name, func(b *testing.B) {
			for b.Loop() {
				preprocessXImage(img, s, sr, dr, dst)
			}
		})
	}
}

// BenchmarkDecodeAndPreprocess300 is what Inference does per image.
func BenchmarkDecodeAndPreprocess300(b *testing.B) {
	data := imagingtest.PhotoJPEG(300, 300)
	for _, s := range benchSpecs {
		dst := make([]float32, s.Size())
		b.Run(fmt.Sprintf("%dx%dx%d", s.Channels, s.Height, s.Width), func(b *testing.B) {
			for b.Loop() {
				img, _, err := Decode(data, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				if err := Preprocess(img, s, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
