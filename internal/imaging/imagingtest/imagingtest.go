// Package imagingtest makes small, deterministic images for tests.
package imagingtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/bmp"
)

// Image returns a w×h picture whose pixels depend on seed, so that different
// seeds give different bytes.
func Image(w, h int, seed int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x*7 + seed), uint8(y*13 + seed*3), uint8(seed * 31), 255})
		}
	}
	// Seeds that wrap around in the pattern still differ here.
	img.Set(0, 0, color.NRGBA{uint8(seed), uint8(seed >> 8), uint8(seed >> 16), 255})
	return img
}

// PNG encodes Image(w, h, seed) as PNG.
func PNG(w, h, seed int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, Image(w, h, seed)); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// JPEG encodes Image(w, h, seed) as JPEG.
func JPEG(w, h, seed int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, Image(w, h, seed), &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// GIF encodes Image(w, h, seed) as a two-frame GIF.
func GIF(w, h, seed int) []byte {
	pal := color.Palette{color.Black, color.White, color.NRGBA{uint8(seed), 0, 0, 255}}
	f1 := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	f2 := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	f1.SetColorIndex(0, 0, 2)
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{f1, f2}, Delay: []int{10, 10}}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// BMP encodes Image(w, h, seed) as BMP.
func BMP(w, h, seed int) []byte {
	var b bytes.Buffer
	if err := bmp.Encode(&b, Image(w, h, seed)); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// PNGBomb is a tiny, well-formed PNG header claiming a w×h canvas, followed
// by no pixel data: what a decompression bomb looks like to DecodeConfig.
func PNGBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk(&b, "IHDR", ihdr)
	chunk(&b, "IEND", nil)
	return b.Bytes()
}

func chunk(b *bytes.Buffer, typ string, data []byte) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(data)))
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	_ = binary.Write(b, binary.BigEndian, crc.Sum32())
}

// Photo returns a w×h picture with the statistics of a photograph rather
// than of a test pattern: smooth colour gradients and shapes under mild
// pixel noise, so that JPEG encoding and decoding cost what they cost on
// real photos. It is deterministic.
func Photo(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	state := uint32(2463534242)
	noise := func() int { // xorshift32
		state ^= state << 13
		state ^= state >> 17
		state ^= state << 5
		return int(state%17) - 8
	}
	clamp := func(v int) uint8 { return uint8(max(0, min(255, v))) }
	cx, cy, r := w/2, h/2, min(w, h)/3
	for y := range h {
		for x := range w {
			red, green, blue := 40+160*x/max(w, 1), 60+120*y/max(h, 1), 180-100*(x+y)/max(w+h, 1)
			if dx, dy := x-cx, y-cy; dx*dx+dy*dy < r*r { // a bright disc
				red, green, blue = 230-dx/4, 200-dy/3, 90
			}
			if (x/23+y/31)%5 == 0 { // darker stripes
				red, green, blue = red*3/4, green*3/4, blue*3/4
			}
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = clamp(red+noise()), clamp(green+noise()), clamp(blue+noise()), 255
		}
	}
	return img
}

// PhotoJPEG encodes Photo(w, h) as a quality-90 JPEG (4:2:0 chroma, as
// cameras and most encoders write).
func PhotoJPEG(w, h int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, Photo(w, h), &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return b.Bytes()
}
