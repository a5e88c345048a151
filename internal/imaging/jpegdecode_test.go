package imaging_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"math"
	"testing"
	"time"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/fuzztest"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

func tensor(t *testing.T, data []byte, s imaging.Spec, decode func([]byte) (image.Image, error)) []float32 {
	t.Helper()
	img, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, s.Size())
	if err := imaging.Preprocess(img, s, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestDecodeForUnspecifiedIsFull: a version registered before the JPEG
// decode mode existed has none in its InputSpec, and must be served the
// very tensors it was before (Decode, then Preprocess).
func TestDecodeForUnspecifiedIsFull(t *testing.T) {
	photo := imagingtest.PhotoJPEG(300, 300)
	for _, in := range []*registrypb.InputSpec{
		{Channels: 1, Height: 28, Width: 28},
		{Channels: 3, Height: 64, Width: 64, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_CENTER_CROP},
		{Channels: 3, Height: 224, Width: 224, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
	} {
		s, err := imaging.SpecFromProto(in)
		if err != nil {
			t.Fatal(err)
		}
		if s.JPEGDecode != imaging.JPEGFull {
			t.Fatalf("SpecFromProto(no jpeg_decode).JPEGDecode = %v; want full", s.JPEGDecode)
		}
		for _, data := range [][]byte{photo, imagingtest.PNG(40, 30, 1), withExif(imagingtest.JPEG(40, 24, 2), orientationTIFF(binary.BigEndian, 3, 6))} {
			want := tensor(t, data, s, func(b []byte) (image.Image, error) {
				img, _, err := imaging.Decode(b, imaging.Limits{})
				return img, err
			})
			got := tensor(t, data, s, func(b []byte) (image.Image, error) {
				img, _, err := imaging.DecodeFor(b, s, imaging.Limits{})
				return img, err
			})
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("spec %v: value %d is %v; Decode+Preprocess gives %v", in, i, got[i], want[i])
				}
			}
		}
	}
}

func TestJPEGScale(t *testing.T) {
	for _, tc := range []struct {
		w, h, o int
		s       imaging.Spec
		want    int
	}{
		{300, 300, 1, imaging.Spec{Width: 28, Height: 28, Resize: imaging.ResizeStretch}, 8},     // 38x38
		{300, 300, 1, imaging.Spec{Width: 64, Height: 64, Resize: imaging.ResizeStretch}, 4},     // 75x75
		{300, 300, 1, imaging.Spec{Width: 224, Height: 224, Resize: imaging.ResizeStretch}, 1},   // 150 < 224
		{300, 300, 1, imaging.Spec{Width: 150, Height: 150, Resize: imaging.ResizeStretch}, 2},   // exactly enough
		{300, 100, 1, imaging.Spec{Width: 28, Height: 28, Resize: imaging.ResizeStretch}, 2},     // the short side decides
		{100, 300, 6, imaging.Spec{Width: 60, Height: 20, Resize: imaging.ResizeStretch}, 4},     // upright 300x100: 75x25
		{100, 300, 1, imaging.Spec{Width: 60, Height: 20, Resize: imaging.ResizeStretch}, 1},     // as stored, 100 wide
		{1000, 100, 1, imaging.Spec{Width: 28, Height: 28, Resize: imaging.ResizeCenterCrop}, 2}, // the crop is 100x100
		{1000, 100, 1, imaging.Spec{Width: 28, Height: 28, Resize: imaging.ResizeLetterbox}, 8},  // fills 28x2
		{1, 1, 1, imaging.Spec{Width: 1, Height: 1, Resize: imaging.ResizeStretch}, 8},
	} {
		if got := imaging.JPEGScale(tc.w, tc.h, tc.o, tc.s); got != tc.want {
			t.Errorf("JPEGScale(%dx%d, orientation %d, %dx%d %v) = %d; want %d", tc.w, tc.h, tc.o, tc.s.Width, tc.s.Height, tc.s.Resize, got, tc.want)
		}
	}
}

// TestDecodeForDCTScaled: the scaled decode has the reduced size (upright),
// is luma alone for one channel, and its tensors stay close to a full
// decode's.
func TestDecodeForDCTScaled(t *testing.T) {
	photo := imagingtest.PhotoJPEG(300, 300)
	for _, tc := range []struct {
		s        imaging.Spec
		size     int
		gray     bool
		maxMeanD float64
	}{
		{imaging.Spec{Channels: 1, Height: 28, Width: 28, Resize: imaging.ResizeStretch}, 38, true, 0.02},
		{imaging.Spec{Channels: 3, Height: 64, Width: 64, Resize: imaging.ResizeStretch}, 75, false, 0.02},
		{imaging.Spec{Channels: 3, Height: 224, Width: 224, Resize: imaging.ResizeStretch}, 300, false, 0},
	} {
		full := tc.s
		tc.s.JPEGDecode = imaging.JPEGDCTScaled
		img, info, err := imaging.DecodeFor(photo, tc.s, imaging.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if info != (imaging.Info{Format: imaging.JPEG, Width: 300, Height: 300}) {
			t.Errorf("%v: info %+v; want the JPEG's own size", tc.s, info)
		}
		if b := img.Bounds(); b.Dx() != tc.size || b.Dy() != tc.size {
			t.Errorf("%v: decoded %v; want %dx%d", tc.s, b, tc.size, tc.size)
		}
		if _, ok := img.(*image.Gray); ok != tc.gray {
			t.Errorf("%v: decoded a %T; want gray %v", tc.s, img, tc.gray)
		}
		got := tensor(t, photo, tc.s, func(b []byte) (image.Image, error) {
			img, _, err := imaging.DecodeFor(b, tc.s, imaging.Limits{})
			return img, err
		})
		want := tensor(t, photo, full, func(b []byte) (image.Image, error) {
			img, _, err := imaging.DecodeFor(b, full, imaging.Limits{})
			return img, err
		})
		var sum float64
		for i := range want {
			sum += math.Abs(float64(got[i] - want[i]))
		}
		if mean := sum / float64(len(want)); mean > tc.maxMeanD || (tc.maxMeanD == 0 && mean != 0) {
			t.Errorf("%v: mean |DCT-scaled - full| = %.4f of the [0, 1] range; want at most %v", tc.s, mean, tc.maxMeanD)
		}
	}

	// Other formats decode in full whatever the mode.
	s := imaging.Spec{Channels: 1, Height: 4, Width: 4, Resize: imaging.ResizeStretch, JPEGDecode: imaging.JPEGDCTScaled}
	if img, _, err := imaging.DecodeFor(imagingtest.PNG(40, 32, 1), s, imaging.Limits{}); err != nil || img.Bounds().Dx() != 40 {
		t.Errorf("DecodeFor(PNG) = %v, %v; want the full 40x32 image", img.Bounds(), err)
	}
}

// TestDecodeForDCTScaledOrientation: the reduced image is turned upright
// as Decode turns the full one.
func TestDecodeForDCTScaledOrientation(t *testing.T) {
	plain := imagingtest.PhotoJPEG(160, 80)
	s := imaging.Spec{Channels: 3, Height: 20, Width: 10, Resize: imaging.ResizeStretch, JPEGDecode: imaging.JPEGDCTScaled}
	for o := 1; o <= 8; o++ {
		data := withExif(plain, orientationTIFF(binary.LittleEndian, 3, uint16(o)))
		full, info, err := imaging.Decode(data, imaging.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		small, sinfo, err := imaging.DecodeFor(data, s, imaging.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		scale := imaging.JPEGScale(160, 80, o, s)
		if sinfo != info || small.Bounds().Dx() != full.Bounds().Dx()/scale || small.Bounds().Dy() != full.Bounds().Dy()/scale {
			t.Fatalf("orientation %d: %v (%+v) at scale %d; full decode %v (%+v)", o, small.Bounds(), sinfo, scale, full.Bounds(), info)
		}
		// Each corner's colour is where the full decode has it.
		for _, c := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
			fx, fy := c[0]*(full.Bounds().Dx()-1), c[1]*(full.Bounds().Dy()-1)
			sx, sy := c[0]*(small.Bounds().Dx()-1), c[1]*(small.Bounds().Dy()-1)
			fr, fg, fb, _ := full.At(fx, fy).RGBA()
			sr, sg, sb, _ := small.At(sx, sy).RGBA()
			if diff(fr, sr)+diff(fg, sg)+diff(fb, sb) > 3*40*257 {
				t.Errorf("orientation %d: corner %v is %v, the full decode's %v", o, c, small.At(sx, sy), full.At(fx, fy))
			}
		}
	}
}

// TestDecodeForDCTScaledErrors: the scaled path refuses what Decode
// refuses, in the same words.
func TestDecodeForDCTScaledErrors(t *testing.T) {
	photo := imagingtest.PhotoJPEG(64, 48)
	corrupt := bytes.Clone(photo)
	for i := len(corrupt) / 2; i < len(corrupt)/2+40; i++ {
		corrupt[i] = 0xff
	}
	lim := imaging.Limits{MaxBytes: 1 << 20, MaxPixels: 64 * 48}
	s := imaging.Spec{Channels: 1, Height: 8, Width: 8, Resize: imaging.ResizeStretch, JPEGDecode: imaging.JPEGDCTScaled}
	for name, tc := range map[string]struct {
		data []byte
		lim  imaging.Limits
	}{
		"truncated":       {photo[:len(photo)*2/3], lim},
		"corrupt":         {corrupt, lim},
		"header only":     {photo[:200], lim},
		"too many bytes":  {photo, imaging.Limits{MaxBytes: 100}},
		"too many pixels": {photo, imaging.Limits{MaxPixels: 64*48 - 1}},
		"empty":           {nil, lim},
	} {
		_, _, want := imaging.Decode(tc.data, tc.lim)
		_, _, got := imaging.DecodeFor(tc.data, s, tc.lim)
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%s: DecodeFor() = %v; Decode() = %v; want the same error", name, got, want)
		}
	}
	if _, _, err := imaging.DecodeFor(photo, s, lim); err != nil {
		t.Errorf("DecodeFor(whole photo) = %v", err)
	}
}

func TestSpecFromProtoJPEGDecode(t *testing.T) {
	for mode, want := range map[registrypb.JpegDecode]imaging.JPEGDecode{
		registrypb.JpegDecode_JPEG_DECODE_UNSPECIFIED: imaging.JPEGFull,
		registrypb.JpegDecode_JPEG_DECODE_FULL:        imaging.JPEGFull,
		registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED:  imaging.JPEGDCTScaled,
	} {
		s, err := imaging.SpecFromProto(&registrypb.InputSpec{Channels: 1, Height: 1, Width: 1, JpegDecode: mode})
		if err != nil || s.JPEGDecode != want {
			t.Errorf("SpecFromProto(%v) = %v, %v; want %v", mode, s.JPEGDecode, err, want)
		}
		if mode != registrypb.JpegDecode_JPEG_DECODE_UNSPECIFIED && want.Proto() != mode {
			t.Errorf("%v.Proto() = %v; want %v", want, want.Proto(), mode)
		}
	}
	if s, err := imaging.SpecFromProto(&registrypb.InputSpec{Channels: 1, Height: 1, Width: 1, JpegDecode: 7}); err == nil {
		t.Errorf("SpecFromProto(jpeg decode 7) = %+v; want an error", s)
	}
}

// FuzzDecodeForScaled checks that DCT-scaled decoding accepts and refuses
// exactly what Decode does, in the same words, within the same allocation
// bound, and gives Preprocess an image it turns into normalised values.
func FuzzDecodeForScaled(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, gray bool, height, width, resize uint16) {
		defer fuzztest.Watchdog(5 * time.Second)()
		spec := imaging.Spec{
			Channels: 3, Height: 1 + int(height%48), Width: 1 + int(width%48),
			Resize: imaging.ResizeMode(1 + resize%3), JPEGDecode: imaging.JPEGDCTScaled,
		}
		if gray {
			spec.Channels = 1
		}
		_, info, verr := imaging.Decode(data, fuzzLimits)
		before := fuzztest.Allocated()
		img, sinfo, err := imaging.DecodeFor(data, spec, fuzzLimits)
		if used := fuzztest.Allocated() - before; used > maxAlloc(len(data)) {
			t.Fatalf("DecodeFor(%d bytes) allocated %d bytes; want at most %d", len(data), used, maxAlloc(len(data)))
		}
		if (err == nil) != (verr == nil) || sinfo != info || (err != nil && err.Error() != verr.Error()) {
			t.Fatalf("DecodeFor() = %+v, %v but Decode() = %+v, %v", sinfo, err, info, verr)
		}
		if err != nil {
			return
		}
		if b := img.Bounds(); b.Empty() || !b.In(image.Rect(0, 0, info.Width, info.Height)) {
			t.Fatalf("DecodeFor() image bounds %v; want a non-empty part of the %dx%d canvas", b, info.Width, info.Height)
		}
		dst := make([]float32, spec.Size())
		for i := range dst {
			dst[i] = float32(math.NaN())
		}
		if err := imaging.Preprocess(img, spec, dst); err != nil {
			t.Fatalf("Preprocess(%v, %+v) = %v; want nil for a valid image", img.Bounds(), spec, err)
		}
		for i, v := range dst {
			if math.IsNaN(float64(v)) || v < 0 || v > 1 {
				t.Fatalf("Preprocess(%+v)[%d] = %v; want a pixel in [0, 1]", spec, i, v)
			}
		}
	})
}

// jpegSeedPhoto is a JPEG large enough to be decoded at 1/8 scale.
func jpegSeedPhoto(t *testing.T) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, imagingtest.Photo(72, 40), &jpeg.Options{Quality: 60}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
