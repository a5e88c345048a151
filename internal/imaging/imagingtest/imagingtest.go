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
