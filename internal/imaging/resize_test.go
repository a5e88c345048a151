package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"

	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// ycbcr returns the photo as a YCbCr image with the given subsampling,
// offset so that its bounds do not start at the origin.
func ycbcr(w, h int, ratio image.YCbCrSubsampleRatio) *image.YCbCr {
	photo := imagingtest.Photo(w+3, h+2)
	img := image.NewYCbCr(image.Rect(0, 0, w+3, h+2), ratio)
	for y := range h + 2 {
		for x := range w + 3 {
			r, g, b, _ := photo.At(x, y).RGBA()
			yy, cb, cr := color.RGBToYCbCr(uint8(r>>8), uint8(g>>8), uint8(b>>8))
			img.Y[img.YOffset(x, y)] = yy
			img.Cb[img.COffset(x, y)], img.Cr[img.COffset(x, y)] = cb, cr
		}
	}
	return img.SubImage(image.Rect(3, 2, w+3, h+2)).(*image.YCbCr)
}

// TestFastPathMatchesXImage holds fastPreprocess to x/image/draw's result,
// bit for bit, over the source types it takes, up- and downscaling, every
// resize mode, both layouts and normalisations.
func TestFastPathMatchesXImage(t *testing.T) {
	var jpegBuf bytes.Buffer
	if err := jpeg.Encode(&jpegBuf, imagingtest.Photo(300, 200), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	decoded, err := jpeg.Decode(&jpegBuf)
	if err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(image.Rect(5, 7, 125, 87))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i*31 + i/97)
	}
	rgba := imagingtest.Photo(90, 140)
	sources := map[string]image.Image{
		"jpeg 4:2:0":  decoded,
		"ycbcr 4:4:4": ycbcr(64, 48, image.YCbCrSubsampleRatio444), "ycbcr 4:2:2": ycbcr(64, 48, image.YCbCrSubsampleRatio422),
		"ycbcr 4:4:0": ycbcr(33, 71, image.YCbCrSubsampleRatio440), "ycbcr 4:2:0 odd": ycbcr(31, 17, image.YCbCrSubsampleRatio420),
		"gray offset": gray, "rgba": rgba, "rgba sub-image": rgba.SubImage(image.Rect(10, 20, 70, 120)),
	}
	specs := []Spec{
		{Channels: 1, Height: 28, Width: 28, Resize: ResizeStretch},
		{Channels: 3, Height: 224, Width: 224, Resize: ResizeCenterCrop,
			Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
		{Channels: 3, Height: 32, Width: 48, Resize: ResizeLetterbox, NHWC: true},
		{Channels: 1, Height: 300, Width: 17, Resize: ResizeLetterbox, Mean: []float32{0.5}, Std: []float32{0.25}},
	}
	for name, img := range sources {
		for _, s := range specs {
			t.Run(fmt.Sprintf("%s to %dx%dx%d %v", name, s.Channels, s.Height, s.Width, s.Resize), func(t *testing.T) {
				sr, dr := geometry(img.Bounds(), s)
				want := make([]float32, s.Size())
				preprocessXImage(img, s, sr, dr, want)
				got := make([]float32, s.Size())
				if !fastPreprocess(img, s, sr, dr, got) {
					t.Fatalf("fastPreprocess(%T) declined", img)
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("value %d = %v; x/image gives %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

func TestFastPathDeclines(t *testing.T) {
	s := Spec{Channels: 3, Height: 8, Width: 8, Resize: ResizeStretch}
	translucent := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for _, img := range []image.Image{
		translucent, // not opaque: composited over white by the general path
		image.NewNRGBA(image.Rect(0, 0, 4, 4)),
		image.NewYCbCr(image.Rect(0, 0, 4, 4), image.YCbCrSubsampleRatio411),
	} {
		sr, dr := geometry(img.Bounds(), s)
		if fastPreprocess(img, s, sr, dr, make([]float32, s.Size())) {
			t.Errorf("fastPreprocess(%T) = true; want false", img)
		}
	}
}
