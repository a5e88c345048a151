package imaging_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/bmp"

	"github.com/shoalml/shoal/internal/fuzztest"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// fuzzLimits are small, so that an input whose decoder ignores the header's
// size shows up as an allocation far beyond what the limit allows.
var fuzzLimits = imaging.Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 16}

// maxAlloc bounds the heap one decode of n bytes may use under fuzzLimits:
// the largest decoder state per pixel (a progressive CMYK JPEG keeps 64
// int32 coefficients per 8×8 block and component besides the image), the
// input's own size a few times over, and a fixed allowance for tables.
func maxAlloc(n int) uint64 {
	return uint64(48*fuzzLimits.MaxPixels) + 8*uint64(n) + 4<<20
}

// FuzzValidate checks that Validate never panics, refuses with ErrInvalid,
// accepts only images within the limits, and stays within maxAlloc: the
// pixel limit is applied to the header before any pixel is decoded.
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzztest.Watchdog(5 * time.Second)()
		before := fuzztest.Allocated()
		info, err := imaging.Validate(data, fuzzLimits)
		if used := fuzztest.Allocated() - before; used > maxAlloc(len(data)) {
			t.Fatalf("Validate(%d bytes) allocated %d bytes; want at most %d for %d pixels", len(data), used, maxAlloc(len(data)), fuzzLimits.MaxPixels)
		}
		format, known := imaging.Sniff(data)
		if err != nil {
			if !errors.Is(err, imaging.ErrInvalid) {
				t.Fatalf("Validate() = %v; want an error wrapping ErrInvalid", err)
			}
			if err.Error() == imaging.ErrInvalid.Error() || strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("Validate() = %q; want a reason", err)
			}
			return
		}
		switch {
		case !known || format != info.Format:
			t.Fatalf("Validate() = %+v, nil but Sniff() = %q, %v", info, format, known)
		case info.Width <= 0 || info.Height <= 0 || int64(info.Width)*int64(info.Height) > fuzzLimits.MaxPixels:
			t.Fatalf("Validate() = %+v, nil; want 1 to %d pixels", info, fuzzLimits.MaxPixels)
		}
	})
}

// FuzzDecodePreprocess checks that whatever Validate accepts, Decode
// accepts alike, and Preprocess and Thumbnail then turn into finite values
// and a JPEG, for every kind of spec, without error or panic.
func FuzzDecodePreprocess(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, gray bool, height, width, resize uint16, nhwc bool) {
		defer fuzztest.Watchdog(5 * time.Second)()
		info, verr := imaging.Validate(data, fuzzLimits)
		before := fuzztest.Allocated()
		img, dinfo, err := imaging.Decode(data, fuzzLimits)
		if used := fuzztest.Allocated() - before; used > maxAlloc(len(data)) {
			t.Fatalf("Decode(%d bytes) allocated %d bytes; want at most %d", len(data), used, maxAlloc(len(data)))
		}
		if (err == nil) != (verr == nil) || dinfo != info {
			t.Fatalf("Decode() = %+v, %v but Validate() = %+v, %v", dinfo, err, info, verr)
		}
		if err != nil {
			return
		}
		b := img.Bounds()
		if b.Empty() || !b.In(image.Rect(0, 0, info.Width, info.Height)) {
			t.Fatalf("Decode() image bounds %v; want a non-empty part of the %dx%d canvas", b, info.Width, info.Height)
		}

		spec := imaging.Spec{
			Channels: 3, Height: 1 + int(height%48), Width: 1 + int(width%48),
			Resize: imaging.ResizeMode(1 + resize%3), NHWC: nhwc,
			Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225},
		}
		if gray {
			spec.Channels, spec.Mean, spec.Std = 1, []float32{0.5}, []float32{0.25}
		}
		dst := make([]float32, spec.Size())
		for i := range dst {
			dst[i] = float32(math.NaN()) // every value must be written
		}
		if err := imaging.Preprocess(img, spec, dst); err != nil {
			t.Fatalf("Preprocess(%v image, %+v) = %v; want nil for a valid image", b, spec, err)
		}
		for i, v := range dst {
			// (p/255 - mean) / std lies in [-mean/std, (1-mean)/std].
			if math.IsNaN(float64(v)) || v < -2.5 || v > 2.7 {
				t.Fatalf("Preprocess(%v image, %+v)[%d] = %v; want a normalised pixel", b, spec, i, v)
			}
		}

		thumb, err := imaging.Thumbnail(data, 16, fuzzLimits)
		if err != nil {
			t.Fatalf("Thumbnail() = %v; want nil for a valid image", err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
		if err != nil || cfg.Width > 16 || cfg.Height > 16 || cfg.Width < 1 || cfg.Height < 1 {
			t.Fatalf("Thumbnail() is a %dx%d JPEG (%v); want at most 16x16", cfg.Width, cfg.Height, err)
		}
	})
}

// TestWriteFuzzSeeds rebuilds the seed corpora of this package's fuzz
// targets (see package fuzztest).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv(fuzztest.EnvWrite) == "" {
		t.Skipf("set %s=1 to rewrite the seed corpora", fuzztest.EnvWrite)
	}
	webp, err := os.ReadFile("testdata/gopher.webp")
	if err != nil {
		t.Fatal(err)
	}
	images := []fuzztest.Seed{
		{Name: "jpeg-ycbcr", Args: []any{imagingtest.JPEG(16, 12, 1)}},
		{Name: "jpeg-gray", Args: []any{encodeJPEG(t, grayImage(9, 7))}},
		{Name: "png-nrgba", Args: []any{imagingtest.PNG(8, 6, 2)}},
		{Name: "png-gray16", Args: []any{encodePNG(t, gray16Image(5, 4))}},
		{Name: "png-paletted", Args: []any{encodePNG(t, palettedImage(7, 3))}},
		{Name: "gif-two-frames", Args: []any{imagingtest.GIF(10, 6, 3)}},
		{Name: "bmp-24bit", Args: []any{imagingtest.BMP(5, 3, 4)}},
		{Name: "bmp-8bit-paletted", Args: []any{encodeBMP(t, palettedImage(6, 2))}},
		{Name: "webp-lossless", Args: []any{webp}},
		{Name: "webp-lossless-flat", Args: []any{webpLossless(3, 2)}},
		{Name: "jpeg-exif-rotated", Args: []any{withExif(imagingtest.JPEG(12, 8, 5), orientationTIFF(binary.LittleEndian, 3, 6))}},
		{Name: "png-bomb-header", Args: []any{imagingtest.PNGBomb(100000, 100000)}},
		{Name: "png-truncated", Args: []any{imagingtest.PNG(8, 6, 2)[:60]}},
		{Name: "empty", Args: []any{[]byte{}}},
	}
	// Go writes neither progressive JPEG nor lossy WebP: small test images
	// of Go and of x/image stand in.
	goroot := goOutput(t, "env", "GOROOT")
	xImage := goOutput(t, "list", "-m", "-f", "{{.Dir}}", "golang.org/x/image")
	for _, s := range []struct{ name, path string }{
		{"jpeg-progressive", filepath.Join(goroot, "src", "image", "testdata", "video-005.gray.q50.progressive.jpeg")},
		{"webp-lossy", filepath.Join(xImage, "testdata", "blue-purple-pink.lossy.webp")},
	} {
		b, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, fuzztest.Seed{Name: s.name, Args: []any{b}})
		if s.name == "webp-lossy" {
			images = append(images, fuzztest.Seed{Name: "webp-lossy-alpha", Args: []any{webpWithAlpha(t, b)}})
		}
	}
	fuzztest.WriteSeeds(t, "FuzzValidate", images)

	var pre []fuzztest.Seed
	for i, s := range images {
		if s.Name == "png-bomb-header" || s.Name == "png-truncated" || s.Name == "empty" {
			continue
		}
		if _, err := imaging.Validate(s.Args[0].([]byte), fuzzLimits); err != nil {
			t.Fatalf("seed %s: Validate() = %v; want a valid image", s.Name, err)
		}
		// Vary the spec across seeds: gray or RGB, size, mode, layout.
		pre = append(pre, fuzztest.Seed{Name: s.Name, Args: []any{s.Args[0], i%2 == 0, uint16(3 + 5*i), uint16(40 - 3*i), uint16(i), i%3 == 0}})
	}
	fuzztest.WriteSeeds(t, "FuzzDecodePreprocess", pre)

	// The DCT-scaled decoder: every kind of JPEG above, one large enough
	// for 1/8 scale, and broken ones.
	photo := jpegSeedPhoto(t)
	scaled := []fuzztest.Seed{
		{Name: "jpeg-photo-gray-28", Args: []any{photo, true, uint16(4), uint16(8), uint16(0)}},
		{Name: "jpeg-photo-rgb-crop", Args: []any{photo, false, uint16(9), uint16(9), uint16(1)}},
		{Name: "jpeg-photo-truncated", Args: []any{photo[:len(photo)*2/3], true, uint16(4), uint16(4), uint16(0)}},
	}
	for i, s := range images {
		if f, _ := imaging.Sniff(s.Args[0].([]byte)); f == imaging.JPEG {
			scaled = append(scaled, fuzztest.Seed{Name: s.Name, Args: []any{s.Args[0], i%2 == 0, uint16(1 + i), uint16(2 + i), uint16(i)}})
		}
	}
	fuzztest.WriteSeeds(t, "FuzzDecodeForScaled", scaled)
}

func goOutput(t *testing.T, args ...string) string {
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

func grayImage(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 37)
	}
	return img
}

func gray16Image(w, h int) *image.Gray16 {
	img := image.NewGray16(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 53)
	}
	return img
}

func palettedImage(w, h int) *image.Paletted {
	pal := color.Palette{color.Black, color.White, color.RGBA{200, 30, 30, 255}, color.RGBA{0, 0, 255, 128}}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for i := range img.Pix {
		img.Pix[i] = uint8(i % len(pal))
	}
	return img
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 75}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeBMP(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := bmp.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bitWriter writes a VP8L bit stream: least significant bit first.
type bitWriter struct {
	buf   []byte
	nbits uint
}

func (w *bitWriter) write(v uint32, n uint) {
	for i := range n {
		if w.nbits%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		w.buf[len(w.buf)-1] |= byte(v>>i&1) << (w.nbits % 8)
		w.nbits++
	}
}

// vp8lPixels writes the pixel part of a VP8L stream where every pixel is
// the same colour: no transform, no colour cache, no meta codes, and five
// one-symbol prefix codes, so the pixels themselves take no bits.
func vp8lPixels(w *bitWriter, a, r, g, b uint8) {
	w.write(0, 1)                                // no transform
	w.write(0, 1)                                // no colour cache
	w.write(0, 1)                                // no meta prefix codes
	for _, sym := range []uint8{g, r, b, a, 0} { // green, red, blue, alpha, distance
		w.write(1, 1) // simple code
		w.write(0, 1) // one symbol
		w.write(1, 1) // of 8 bits
		w.write(uint32(sym), 8)
	}
}

// webpLossless is a w×h one-colour lossless WebP.
func webpLossless(width, height int) []byte {
	w := &bitWriter{buf: []byte{0x2f}, nbits: 8}
	w.write(uint32(width-1), 14)
	w.write(uint32(height-1), 14)
	w.write(1, 1) // alpha used
	w.write(0, 3) // version
	vp8lPixels(w, 200, 10, 120, 250)
	return riff(chunk("VP8L", w.buf))
}

// webpWithAlpha wraps a simple lossy WebP into the extended format with an
// alpha plane (VP8X, ALPH compressed as VP8L, then the VP8 frame).
func webpWithAlpha(t *testing.T, simple []byte) []byte {
	cfg, err := imaging.Validate(simple, imaging.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	vp8 := simple[12:] // the VP8 chunk, header included
	x := make([]byte, 10)
	x[0] = 0x10 // alpha
	put24 := func(b []byte, v int) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }
	put24(x[4:], cfg.Width-1)
	put24(x[7:], cfg.Height-1)
	a := &bitWriter{buf: []byte{0x01}, nbits: 8} // VP8L compression, no filter
	vp8lPixels(a, 255, 0, 128, 0)                // alpha is the green channel
	var body []byte
	body = append(body, chunk("VP8X", x)...)
	body = append(body, chunk("ALPH", a.buf)...)
	body = append(body, vp8...)
	return riff(body)
}

func chunk(fourcc string, data []byte) []byte {
	b := append([]byte(fourcc), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(data)))
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func riff(body []byte) []byte {
	b := append([]byte("RIFF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(4+len(body)))
	b = append(b, "WEBP"...)
	return append(b, body...)
}
