package imaging_test

import (
	"fmt"
	"image"
	"image/color"
	"testing"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

const (
	stretch    = imaging.ResizeStretch
	centerCrop = imaging.ResizeCenterCrop
	letterbox  = imaging.ResizeLetterbox
)

// gray builds an opaque NRGBA image whose pixel (x, y) is pix[y][x] on all
// three channels.
func gray(pix [][]uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, len(pix[0]), len(pix)))
	for y, row := range pix {
		for x, v := range row {
			img.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
		}
	}
	return img
}

func px(v uint8) float32 { return float32(v) / 255 }

func TestPreprocess(t *testing.T) {
	rgb := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	rgb.SetNRGBA(0, 0, color.NRGBA{10, 20, 30, 255})
	rgb.SetNRGBA(1, 0, color.NRGBA{40, 50, 60, 255})
	transparent := image.NewNRGBA(image.Rect(0, 0, 1, 1)) // fully transparent: white

	tests := []struct {
		name string
		img  image.Image
		spec imaging.Spec
		want []float32
	}{
		{"identity NCHW", rgb, imaging.Spec{Channels: 3, Height: 1, Width: 2, Resize: stretch},
			[]float32{px(10), px(40), px(20), px(50), px(30), px(60)}},
		{"identity NHWC", rgb, imaging.Spec{Channels: 3, Height: 1, Width: 2, Resize: stretch, NHWC: true},
			[]float32{px(10), px(20), px(30), px(40), px(50), px(60)}},
		{"mean and std per channel", rgb, imaging.Spec{Channels: 3, Height: 1, Width: 2, Resize: stretch,
			Mean: []float32{0.5, 0.25, 0}, Std: []float32{0.5, 0.25, 2}},
			[]float32{(px(10) - 0.5) * 2, (px(40) - 0.5) * 2, (px(20) - 0.25) * 4, (px(50) - 0.25) * 4, px(30) * 0.5, px(60) * 0.5}},
		{"grayscale BT.601", rgb, imaging.Spec{Channels: 1, Height: 1, Width: 2, Resize: stretch},
			[]float32{(0.299*10 + 0.587*20 + 0.114*30) / 255, (0.299*40 + 0.587*50 + 0.114*60) / 255}},
		// Halving widens the tent to radius 2: the output centre at source x=1
		// weighs the pixels at 0.5 and 1.5 by 0.75 each.
		{"stretch 2x1 to 1x1", gray([][]uint8{{100, 200}}), imaging.Spec{Channels: 1, Height: 1, Width: 1, Resize: stretch},
			[]float32{px(150)}},
		// Output centres at x=1 and x=3 weigh their neighbours 0.75, 0.75 and
		// 0.25 (edges clipped): (0*.75+100*.75+200*.25)/1.75 = 71.4 and
		// (100*.25+200*.75+250*.75)/1.75 = 207.1, rounded to 8 bits.
		{"stretch 4x1 to 2x1 anti-aliases", gray([][]uint8{{0, 100, 200, 250}}), imaging.Spec{Channels: 1, Height: 1, Width: 2, Resize: stretch},
			[]float32{px(71), px(207)}},
		// The centred 2x2 square of a 4x2 image, unscaled.
		{"center crop", gray([][]uint8{{1, 2, 3, 4}, {5, 6, 7, 8}}), imaging.Spec{Channels: 1, Height: 2, Width: 2, Resize: centerCrop},
			[]float32{px(2), px(3), px(6), px(7)}},
		// A 2x1 image into 2x2: one black bar row below (integer centring
		// puts the odd row at the bottom).
		{"letterbox", gray([][]uint8{{100, 200}}), imaging.Spec{Channels: 1, Height: 2, Width: 2, Resize: letterbox},
			[]float32{px(100), px(200), 0, 0}},
		{"letterbox pads before normalising", gray([][]uint8{{100, 200}}), imaging.Spec{Channels: 1, Height: 2, Width: 2, Resize: letterbox, Mean: []float32{0.5}},
			[]float32{px(100) - 0.5, px(200) - 0.5, -0.5, -0.5}},
		{"transparent over white", transparent, imaging.Spec{Channels: 3, Height: 1, Width: 1, Resize: stretch},
			[]float32{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]float32, tt.spec.Size())
			if err := imaging.Preprocess(tt.img, tt.spec, got); err != nil {
				t.Fatalf("Preprocess() = %v", err)
			}
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Fatalf("Preprocess() = %v; want %v", got, tt.want)
				}
			}
		})
	}
}

func TestPreprocessErrors(t *testing.T) {
	img := gray([][]uint8{{1}})
	tests := []struct {
		name string
		spec imaging.Spec
		dst  int
	}{
		{"two channels", imaging.Spec{Channels: 2, Height: 1, Width: 1, Resize: stretch}, 2},
		{"zero size", imaging.Spec{Channels: 1, Resize: stretch}, 0},
		{"mean count", imaging.Spec{Channels: 3, Height: 1, Width: 1, Resize: stretch, Mean: []float32{1, 2}}, 3},
		{"zero std", imaging.Spec{Channels: 1, Height: 1, Width: 1, Resize: stretch, Std: []float32{0}}, 1},
		{"unspecified resize", imaging.Spec{Channels: 1, Height: 1, Width: 1}, 1},
		{"short destination", imaging.Spec{Channels: 3, Height: 1, Width: 1, Resize: stretch}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := imaging.Preprocess(img, tt.spec, make([]float32, tt.dst)); err == nil {
				t.Fatalf("Preprocess(%+v) = nil; want an error", tt.spec)
			}
		})
	}
}

func TestSpecFromProto(t *testing.T) {
	s, err := imaging.SpecFromProto(&registrypb.InputSpec{Channels: 3, Height: 4, Width: 5, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NHWC})
	if err != nil {
		t.Fatalf("SpecFromProto() = %v", err)
	}
	if s.Resize != stretch || !s.NHWC || s.Size() != 60 {
		t.Fatalf("SpecFromProto() = %+v; want STRETCH, NHWC, size 60", s)
	}
	if _, err := imaging.SpecFromProto(&registrypb.InputSpec{Channels: 4, Height: 1, Width: 1}); err == nil {
		t.Fatal("SpecFromProto(4 channels) = nil; want an error")
	}
	for mode, want := range map[registrypb.ResizeMode]imaging.ResizeMode{
		registrypb.ResizeMode_RESIZE_MODE_UNSPECIFIED: stretch,
		registrypb.ResizeMode_RESIZE_MODE_STRETCH:     stretch,
		registrypb.ResizeMode_RESIZE_MODE_CENTER_CROP: centerCrop,
		registrypb.ResizeMode_RESIZE_MODE_LETTERBOX:   letterbox,
	} {
		s, err := imaging.SpecFromProto(&registrypb.InputSpec{Channels: 1, Height: 1, Width: 1, ResizeMode: mode})
		if err != nil || s.Resize != want {
			t.Errorf("SpecFromProto(%v) = %v, %v; want %v", mode, s.Resize, err, want)
		}
	}
	if s, err := imaging.SpecFromProto(&registrypb.InputSpec{Channels: 1, Height: 1, Width: 1, ResizeMode: 99}); err == nil {
		t.Errorf("SpecFromProto(resize mode 99) = %+v; want an error", s)
	}
}

// BenchmarkPreprocess is a 300x300 JPEG decoded and preprocessed for a
// 28x28 grayscale and a 224x224 RGB model.
func BenchmarkPreprocess(b *testing.B) {
	data := imagingtest.JPEG(300, 300, 7)
	for _, spec := range []imaging.Spec{
		{Channels: 1, Height: 28, Width: 28, Resize: stretch},
		{Channels: 3, Height: 224, Width: 224, Resize: centerCrop, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
	} {
		dst := make([]float32, spec.Size())
		b.Run(fmt.Sprintf("decode/%dx%dx%d", spec.Channels, spec.Height, spec.Width), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := imaging.Decode(data, imaging.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		img, _, _ := imaging.Decode(data, imaging.Limits{})
		b.Run(fmt.Sprintf("preprocess/%dx%dx%d", spec.Channels, spec.Height, spec.Width), func(b *testing.B) {
			for b.Loop() {
				if err := imaging.Preprocess(img, spec, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
