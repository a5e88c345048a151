package imaging_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/shoalml/shoal/internal/imaging"
)

// withExif inserts an APP1 segment holding tiff after a JPEG's SOI.
func withExif(plain, tiff []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(2+len(payload)))
	out := append([]byte{}, plain[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, plain[2:]...)
}

// orientationTIFF is a TIFF header and an IFD with one entry: tag 0x0112,
// of type typ, count 1, value v, in byte order bo.
func orientationTIFF(bo binary.ByteOrder, typ uint16, v uint16) []byte {
	t := make([]byte, 8+2+12+4)
	if bo == binary.LittleEndian {
		copy(t, "II")
	} else {
		copy(t, "MM")
	}
	bo.PutUint16(t[2:], 42)
	bo.PutUint32(t[4:], 8)
	bo.PutUint16(t[8:], 1)
	bo.PutUint16(t[10:], 0x0112)
	bo.PutUint16(t[12:], typ)
	bo.PutUint32(t[14:], 1)
	bo.PutUint16(t[18:], v)
	return t
}

// quadrants is a w×h picture of four flat quadrants of different colours,
// so that any turn or mirror moves a colour to another corner.
func quadrants(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cs := []color.RGBA{{220, 30, 30, 255}, {30, 200, 40, 255}, {30, 40, 210, 255}, {230, 230, 230, 255}}
	for y := range h {
		for x := range w {
			q := 0
			if x >= w/2 {
				q++
			}
			if y >= h/2 {
				q += 2
			}
			img.SetRGBA(x, y, cs[q])
		}
	}
	return img
}

// upright is where a viewer shows the source pixel (x, y) of a w×h image
// with orientation o: the definitions of TIFF 6.0, tag 274.
func upright(o, x, y, w, h int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return h - 1 - y, x
	case 7:
		return h - 1 - y, w - 1 - x
	case 8:
		return y, w - 1 - x
	}
	return x, y
}

// TestEXIFOrientation: a JPEG is decoded as a viewer shows it, for each of
// the eight orientations and both byte orders, in colour and in gray; its
// Info gives the upright size, and so does its thumbnail.
func TestEXIFOrientation(t *testing.T) {
	const w, h = 32, 16
	src := quadrants(w, h)
	var plain, grayPlain bytes.Buffer
	if err := jpeg.Encode(&plain, src, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(src.Rect)
	for y := range h {
		for x := range w {
			gray.Set(x, y, src.At(x, y))
		}
	}
	if err := jpeg.Encode(&grayPlain, gray, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
		for o := 1; o <= 8; o++ {
			for _, c := range []struct {
				name  string
				plain []byte
				want  image.Image
			}{{"colour", plain.Bytes(), src}, {"gray", grayPlain.Bytes(), gray}} {
				data := withExif(c.plain, orientationTIFF(bo, 3, uint16(o)))
				img, info, err := imaging.Decode(data, imaging.Limits{})
				if err != nil {
					t.Fatalf("%s, %v, orientation %d: Decode() = %v", c.name, bo, o, err)
				}
				ww, wh := w, h
				if o >= 5 {
					ww, wh = h, w
				}
				if b := img.Bounds(); b.Dx() != ww || b.Dy() != wh || info.Width != ww || info.Height != wh {
					t.Fatalf("%s, %v, orientation %d: Decode() = %v image, info %dx%d; want %dx%d", c.name, bo, o, b, info.Width, info.Height, ww, wh)
				}
				// Sample each quadrant's centre.
				for _, p := range []image.Point{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}} {
					ux, uy := upright(o, p.X, p.Y, w, h)
					gr, gg, gb, _ := img.At(ux, uy).RGBA()
					wr, wg, wb, _ := c.want.At(p.X, p.Y).RGBA()
					if d := max(diff(gr, wr), diff(gg, wg), diff(gb, wb)); d > 8 {
						t.Errorf("%s, %v, orientation %d: upright (%d,%d) = %d,%d,%d; want source (%d,%d) = %d,%d,%d",
							c.name, bo, o, ux, uy, gr>>8, gg>>8, gb>>8, p.X, p.Y, wr>>8, wg>>8, wb>>8)
					}
				}
				thumb, err := imaging.Thumbnail(data, 8, imaging.Limits{})
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
				if err != nil || (o >= 5) != (cfg.Height > cfg.Width) {
					t.Errorf("%s, orientation %d: thumbnail %dx%d (%v); want it upright", c.name, o, cfg.Width, cfg.Height, err)
				}
			}
		}
	}
}

func diff(a, b uint32) uint32 {
	a, b = a>>8, b>>8
	if a > b {
		return a - b
	}
	return b - a
}

// An EXIF segment that cannot be read, or says something else, leaves the
// image as it is stored.
func TestEXIFOrientationUnreadable(t *testing.T) {
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, quadrants(32, 16), nil); err != nil {
		t.Fatal(err)
	}
	good := orientationTIFF(binary.BigEndian, 3, 6)
	for name, tiff := range map[string][]byte{
		"orientation 9":          orientationTIFF(binary.BigEndian, 3, 9),
		"orientation 0":          orientationTIFF(binary.BigEndian, 3, 0),
		"a LONG, not a SHORT":    orientationTIFF(binary.BigEndian, 4, 6),
		"truncated IFD":          good[:14],
		"IFD past the end":       append(append([]byte{}, good[:4]...), 0xff, 0xff, 0xff, 0x00),
		"no byte order":          append([]byte("XX"), good[2:]...),
		"an empty TIFF":          nil,
		"IFD offset inside head": append(append([]byte{}, good[:4]...), 0, 0, 0, 2),
	} {
		img, info, err := imaging.Decode(withExif(plain.Bytes(), tiff), imaging.Limits{})
		if err != nil || img.Bounds().Dx() != 32 || info.Width != 32 {
			t.Errorf("%s: Decode() = %v image, %+v, %v; want the 32x16 image as stored", name, img.Bounds(), info, err)
		}
	}
}
