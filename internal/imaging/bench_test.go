package imaging

import (
	"fmt"
	"syscall"
	"testing"
	"time"

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

// reportCPU adds the process's CPU time per operation (user + system, GC
// included) to a benchmark's figures: on a loaded machine it measures the
// work where ns/op also counts the waits for a core.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

// BenchmarkDecodeAndPreprocess300 is what Inference does per image, with
// each JPEG decode mode: full, and DCT-scaled (1/8 scale and luma alone for
// 28x28 gray, 1/4 for 64x64 RGB, none for 224x224 RGB).
//
//	go test -run '^$' -bench DecodeAndPreprocess300 -cpu 1 ./internal/imaging/
func BenchmarkDecodeAndPreprocess300(b *testing.B) {
	data := imagingtest.PhotoJPEG(300, 300)
	specs := append(benchSpecs, Spec{Channels: 3, Height: 64, Width: 64, Resize: ResizeStretch})
	for _, s := range specs {
		dst := make([]float32, s.Size())
		for _, mode := range []JPEGDecode{JPEGFull, JPEGDCTScaled} {
			s.JPEGDecode = mode
			b.Run(fmt.Sprintf("%dx%dx%d/%v", s.Channels, s.Height, s.Width, mode), func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					img, _, err := DecodeFor(data, s, Limits{})
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
}
