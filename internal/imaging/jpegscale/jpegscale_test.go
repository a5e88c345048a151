package jpegscale

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpus is the standard library's JPEG test files plus encodings of odd
// sizes made here.
func corpus(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.jpeg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test JPEGs: %v", err)
	}
	c := map[string][]byte{}
	for _, f := range files {
		if strings.Contains(f, "truncated") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c[filepath.Base(f)] = b
	}
	for _, sz := range [][2]int{{1, 1}, {9, 17}, {17, 9}, {300, 300}, {301, 7}, {2, 500}, {1000, 3}} {
		for _, gray := range []bool{false, true} {
			var img image.Image = noise(sz[0], sz[1])
			name := fmt.Sprintf("%dx%d", sz[0], sz[1])
			if gray {
				g := image.NewGray(img.Bounds())
				for y := range sz[1] {
					for x := range sz[0] {
						g.Set(x, y, img.At(x, y))
					}
				}
				img, name = g, name+".gray"
			}
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
				t.Fatal(err)
			}
			c[name+".jpeg"] = buf.Bytes()
		}
	}
	return c
}

// noise is a smooth gradient with some noise: detail at every scale.
func noise(w, h int) *image.RGBA {
	r := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := r.IntN(40)
			img.Set(x, y, color.RGBA{uint8((x*255/max(1, w-1) + n) / 2), uint8((y*255/max(1, h-1) + n) / 2), uint8(128 + n), 255})
		}
	}
	return img
}

func TestScale1MatchesStdlib(t *testing.T) {
	for name, data := range corpus(t) {
		want, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: stdlib: %v", name, err)
		}
		got, err := Decode(bytes.NewReader(data), Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) || got.Bounds() != want.Bounds() {
			t.Fatalf("%s: got %T %v, want %T %v", name, got, got.Bounds(), want, want.Bounds())
		}
		if !samePixels(got, want) {
			t.Errorf("%s: pixels differ from image/jpeg's", name)
		}
	}
}

func samePixels(a, b image.Image) bool {
	switch a := a.(type) {
	case *image.YCbCr:
		b := b.(*image.YCbCr)
		return a.SubsampleRatio == b.SubsampleRatio && bytes.Equal(a.Y, b.Y) && bytes.Equal(a.Cb, b.Cb) && bytes.Equal(a.Cr, b.Cr)
	case *image.Gray:
		return bytes.Equal(a.Pix, b.(*image.Gray).Pix)
	case *image.RGBA:
		return bytes.Equal(a.Pix, b.(*image.RGBA).Pix)
	case *image.CMYK:
		return bytes.Equal(a.Pix, b.(*image.CMYK).Pix)
	}
	return false
}

// TestScaledCloseToAreaAverage holds each reduced decode to the full
// decode averaged over scale×scale boxes, plane by plane (each component
// as decoded, before colour conversion, padding blocks included): the
// reduced inverse DCT is that average computed in the DCT, up to rounding,
// clamping and the detail the dropped coefficients carried.
func TestScaledCloseToAreaAverage(t *testing.T) {
	for name, data := range corpus(t) {
		full := decoder{bs: 8}
		if _, err := full.decode(bytes.NewReader(data), false); err != nil {
			t.Fatal(err)
		}
		for _, scale := range []int{2, 4, 8} {
			small := decoder{bs: 8 / scale}
			got, err := small.decode(bytes.NewReader(data), false)
			if err != nil {
				t.Fatalf("%s/%d: %v", name, scale, err)
			}
			w, h := ScaledSize(full.width, full.height, scale)
			if got.Bounds() != image.Rect(0, 0, w, h) {
				t.Fatalf("%s/%d: bounds %v, want %dx%d", name, scale, got.Bounds(), w, h)
			}
			fp, sp := planes(&full), planes(&small)
			for i := range fp {
				mean, worst := diffToAverage(fp[i], sp[i], scale)
				if mean > 1 || worst > 16 {
					t.Errorf("%s/%d: plane %d: |scaled - area average| has mean %.2f, max %d; want <= 1 and <= 16",
						name, scale, i, mean, worst)
				}
			}
		}
	}
}

type plane struct {
	pix          []byte
	stride, w, h int
}

// planes returns the decoded component planes, each whole (padding too).
func planes(d *decoder) []plane {
	p := func(pix []byte, stride int) plane { return plane{pix, stride, stride, len(pix) / stride} }
	if d.img1 != nil {
		return []plane{p(d.img1.Pix, d.img1.Stride)}
	}
	ps := []plane{p(d.img3.Y, d.img3.YStride), p(d.img3.Cb, d.img3.CStride), p(d.img3.Cr, d.img3.CStride)}
	if d.blackPix != nil {
		ps = append(ps, p(d.blackPix, d.blackStride))
	}
	return ps
}

// diffToAverage compares each pixel of small with the average of the
// scale×scale box of full it covers.
func diffToAverage(full, small plane, scale int) (mean float64, worst int) {
	var sum, n int
	for y := range small.h {
		for x := range small.w {
			acc := 0
			for yy := y * scale; yy < (y+1)*scale; yy++ {
				for xx := x * scale; xx < (x+1)*scale; xx++ {
					acc += int(full.pix[yy*full.stride+xx])
				}
			}
			area := scale * scale
			d := int(small.pix[y*small.stride+x]) - (acc+area/2)/area
			if d < 0 {
				d = -d
			}
			sum += d
			worst = max(worst, d)
			n++
		}
	}
	return float64(sum) / float64(n), worst
}

func TestLumaOnly(t *testing.T) {
	for name, data := range corpus(t) {
		full, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for _, scale := range []int{1, 2, 4, 8} {
			got, err := Decode(bytes.NewReader(data), Options{Scale: scale, LumaOnly: true})
			if err != nil {
				t.Fatalf("%s/%d: %v", name, scale, err)
			}
			color, err := Decode(bytes.NewReader(data), Options{Scale: scale})
			if err != nil {
				t.Fatal(err)
			}
			switch c := color.(type) {
			case *image.YCbCr:
				g, ok := got.(*image.Gray)
				if !ok {
					t.Fatalf("%s/%d: luma-only of a YCbCr image is %T, want *image.Gray", name, scale, got)
				}
				if g.Bounds() != c.Bounds() {
					t.Fatalf("%s/%d: bounds %v, want %v", name, scale, g.Bounds(), c.Bounds())
				}
				for y := range c.Bounds().Dy() {
					for x := range c.Bounds().Dx() {
						if g.GrayAt(x, y).Y != c.YCbCrAt(x, y).Y {
							t.Fatalf("%s/%d: luma at (%d,%d) is %d, want the colour decode's %d", name, scale, x, y, g.GrayAt(x, y).Y, c.YCbCrAt(x, y).Y)
						}
					}
				}
			default:
				// Gray, RGB and CMYK decode as without the option.
				if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", c) || !samePixels(got, c) {
					t.Errorf("%s/%d: luma-only of a %T changed the decode", name, scale, full)
				}
			}
		}
	}
}

func TestErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/video-001.q50.420.jpeg")
	if err != nil {
		t.Fatal(err)
	}
	for _, scale := range []int{1, 2, 4, 8} {
		for _, tc := range []struct {
			name string
			data []byte
			want func(error) bool
		}{
			{"truncated", good[:len(good)/2], func(err error) bool { return strings.Contains(err.Error(), "short Huffman data") }},
			{"truncated in a marker", good[:300], func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
			{"not a JPEG", []byte("\x89PNG\r\n\x1a\n"), func(err error) bool { return strings.Contains(err.Error(), "missing SOI marker") }},
			{"empty", nil, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) }},
		} {
			_, err := Decode(bytes.NewReader(tc.data), Options{Scale: scale, LumaOnly: true})
			_, stdErr := jpeg.Decode(bytes.NewReader(tc.data))
			if err == nil || !tc.want(err) {
				t.Errorf("%s/%d: error %v", tc.name, scale, err)
			}
			if stdErr == nil || err.Error() != stdErr.Error() {
				t.Errorf("%s/%d: error %q, image/jpeg says %q", tc.name, scale, err, stdErr)
			}
		}
	}
	if _, err := Decode(bytes.NewReader(good), Options{Scale: 3}); err == nil || !strings.Contains(err.Error(), "scale 3") {
		t.Errorf("scale 3: error %v", err)
	}
}

func BenchmarkDecode(b *testing.B) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, noise(300, 300), &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	for _, scale := range []int{1, 2, 4, 8} {
		for _, luma := range []bool{false, true} {
			b.Run(fmt.Sprintf("scale=%d/luma=%v", scale, luma), func(b *testing.B) {
				for b.Loop() {
					if _, err := Decode(bytes.NewReader(buf.Bytes()), Options{Scale: scale, LumaOnly: luma}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
