package badinput

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/bits"

	"golang.org/x/image/bmp"
)

// Picture returns a w×h picture whose left half is dark and right half
// bright, with a gradient down: rotating or mirroring it changes what a
// model sees, and seed varies its bytes.
func Picture(w, h, seed int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8(40 + 150*y/max(h, 1))
			if x >= w/2 {
				v = 255 - v/2
			}
			img.SetNRGBA(x, y, color.NRGBA{v, uint8(int(v) * 3 / 4), uint8((int(v) + seed*37) % 256), 255})
		}
	}
	return img
}

func encodePNG(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func encodeJPEG(img image.Image, quality int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func encodeBMP(img image.Image) []byte {
	var b bytes.Buffer
	if err := bmp.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// GoodPNG is a small valid PNG, different for every seed: the image a tree
// or an archive carries beside its bad entry, so that the import goes on
// past the bad one and says so.
func GoodPNG(seed int) []byte { return encodePNG(Picture(12, 10, 1000+seed)) }

// png16 is Picture as 16-bit RGBA (each 8-bit value v written as v*257, so
// it reads back as the 8-bit picture exactly).
func png16(w, h, seed int) ([]byte, image.Image) {
	src := Picture(w, h, seed)
	img := image.NewNRGBA64(src.Bounds())
	for y := range h {
		for x := range w {
			c := src.NRGBAAt(x, y)
			img.SetNRGBA64(x, y, color.NRGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, 0xffff})
		}
	}
	return encodePNG(img), src
}

// gray16 is a 16-bit grayscale picture and its 8-bit twin.
func gray16(w, h int) ([]byte, image.Image) {
	img := image.NewGray16(image.Rect(0, 0, w, h))
	like := image.NewGray(img.Rect)
	for y := range h {
		for x := range w {
			v := uint8(20 + 200*x/max(w, 1))
			img.SetGray16(x, y, color.Gray16{uint16(v) * 257})
			like.SetGray(x, y, color.Gray{v})
		}
	}
	return encodePNG(img), like
}

// paletted is a picture of four colours, the last half transparent when
// transparent is set (PNG writes a tRNS chunk then).
func paletted(w, h int, transparent bool) ([]byte, image.Image) {
	pal := color.Palette{color.NRGBA{0, 0, 0, 255}, color.NRGBA{255, 255, 255, 255}, color.NRGBA{200, 30, 30, 255}, color.NRGBA{0, 60, 255, 255}}
	if transparent {
		pal[3] = color.NRGBA{0, 60, 255, 128}
	}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for y := range h {
		for x := range w {
			img.SetColorIndex(x, y, uint8((x/3+y/2)%len(pal)))
		}
	}
	return encodePNG(img), img
}

// animatedGIF is a three-frame GIF whose frames differ; only the first is
// an image Shoal reads.
func animatedGIF(w, h int) ([]byte, image.Image) {
	pal := color.Palette{color.Black, color.White, color.RGBA{220, 40, 40, 255}}
	var frames []*image.Paletted
	for f := range 3 {
		img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		for y := range h {
			for x := range w {
				img.SetColorIndex(x, y, uint8((x+f*w/3)/(w/3+1)%len(pal)))
			}
		}
		frames = append(frames, img)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: frames, Delay: []int{10, 10, 10}, LoopCount: 0}); err != nil {
		panic(err)
	}
	return b.Bytes(), frames[0]
}

// Orient returns img as a viewer shows it when its EXIF orientation tag
// is o (1 to 8, as TIFF defines them).
func Orient(img image.Image, o int) *image.NRGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if o >= 5 {
		w, h = h, w
	}
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range b.Dy() {
		for x := range b.Dx() {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			W, H := b.Dx(), b.Dy()
			var dx, dy int
			switch o {
			case 2:
				dx, dy = W-1-x, y
			case 3:
				dx, dy = W-1-x, H-1-y
			case 4:
				dx, dy = x, H-1-y
			case 5:
				dx, dy = y, x
			case 6:
				dx, dy = H-1-y, x
			case 7:
				dx, dy = H-1-y, W-1-x
			case 8:
				dx, dy = y, W-1-x
			default:
				dx, dy = x, y
			}
			out.SetNRGBA(dx, dy, c)
		}
	}
	return out
}

// exifJPEG encodes img as a JPEG with an EXIF APP1 segment whose
// orientation tag is o: what a phone writes for a photo taken upright
// while its sensor lay sideways.
func exifJPEG(img image.Image, o uint16) []byte {
	plain := encodeJPEG(img, 95)
	// TIFF header (big-endian), IFD0 with one entry: Orientation (0x0112),
	// SHORT, count 1, the value left-aligned in the 4-byte field.
	tiff := []byte{'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, byte(o >> 8), byte(o), 0, 0, 0, 0, 0, 0}
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(2+len(payload)))
	seg = append(seg, payload...)
	out := append([]byte{}, plain[:2]...) // SOI
	out = append(out, seg...)
	return append(out, plain[2:]...)
}

// cmykJPEG writes a baseline JPEG with four components marked as Adobe
// CMYK (APP14 transform 0), which Go's encoder cannot write. Its 8×8
// blocks are flat (only the DC coefficient is set), so the encoder is a
// page long: quantisation 1, the standard DC table and an AC table with the
// end-of-block code only. px gives each block's C, M, Y, K; w and h are
// multiples of 8. It returns the file and the RGB image a viewer shows.
func cmykJPEG(w, h int, px func(bx, by int) [4]uint8) ([]byte, image.Image) {
	var out bytes.Buffer
	seg := func(marker byte, data []byte) {
		out.Write([]byte{0xff, marker, byte((len(data) + 2) >> 8), byte(len(data) + 2)})
		out.Write(data)
	}
	out.Write([]byte{0xff, 0xd8})
	// APP14 "Adobe": version 100, flags 0, 0, transform 0 (CMYK).
	seg(0xee, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0})
	q := make([]byte, 65)
	for i := 1; i < 65; i++ {
		q[i] = 1
	}
	seg(0xdb, q) // DQT: table 0, 8-bit, all ones
	seg(0xc0, []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 4,
		1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0})
	dcCounts := [16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1}
	dht := append([]byte{0x00}, dcCounts[:]...)
	dht = append(dht, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	acCounts := [16]byte{1}
	dht = append(dht, 0x10)
	dht = append(dht, acCounts[:]...)
	dht = append(dht, 0x00) // the one symbol: end of block
	seg(0xc4, dht)
	seg(0xda, []byte{4, 1, 0x00, 2, 0x00, 3, 0x00, 4, 0x00, 0, 63, 0})

	dcCodes := canonical(dcCounts)
	var acc uint32
	var nacc uint
	put := func(code uint32, n uint) {
		for i := int(n) - 1; i >= 0; i-- {
			acc = acc<<1 | (code>>uint(i))&1
			nacc++
			if nacc == 8 {
				out.WriteByte(byte(acc))
				if byte(acc) == 0xff {
					out.WriteByte(0)
				}
				acc, nacc = 0, 0
			}
		}
	}
	var pred [4]int
	for by := range h / 8 {
		for bx := range w / 8 {
			v := px(bx, by)
			for c := range 4 {
				stored := 255 - int(v[c]) // Adobe writes CMYK inverted
				dc := 8 * (stored - 128)
				diff := dc - pred[c]
				pred[c] = dc
				cat := uint(0)
				if diff != 0 {
					cat = uint(bits.Len(uint(abs(diff))))
				}
				put(dcCodes[cat].code, dcCodes[cat].n)
				if cat > 0 {
					extra := diff
					if diff < 0 {
						extra = diff + (1 << cat) - 1
					}
					put(uint32(extra), cat)
				}
				put(0, 1) // AC: end of block
			}
		}
	}
	if nacc > 0 { // pad with ones
		put(1<<(8-nacc)-1, 8-nacc)
	}
	out.Write([]byte{0xff, 0xd9})

	like := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := px(x/8, y/8)
			r, g, b := color.CMYKToRGB(v[0], v[1], v[2], v[3])
			like.SetRGBA(x, y, color.RGBA{r, g, b, 255})
		}
	}
	return out.Bytes(), like
}

type huffCode struct {
	code uint32
	n    uint
}

// canonical gives the codes of a JPEG Huffman table's symbols 0, 1, ...
// from its counts of codes per length.
func canonical(counts [16]byte) []huffCode {
	var out []huffCode
	code := uint32(0)
	for l := range 16 {
		for range counts[l] {
			out = append(out, huffCode{code, uint(l + 1)})
			code++
		}
		code <<= 1
	}
	return out
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// pngChunks builds a PNG from its IHDR fields and IDAT payload.
func pngFile(w, h uint32, depth, colorType byte, idat []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = depth, colorType
	pngChunk(&b, "IHDR", ihdr)
	if idat != nil {
		pngChunk(&b, "IDAT", idat)
	}
	pngChunk(&b, "IEND", nil)
	return b.Bytes()
}

func pngChunk(b *bytes.Buffer, typ string, data []byte) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(data)))
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	_ = binary.Write(b, binary.BigEndian, crc.Sum32())
}

// pngBomb is a real decompression bomb: a grayscale w×h PNG whose IDAT
// holds every row's zero bytes, compressed, so a decoder that trusted the
// header would inflate and allocate w×h bytes. The stream is made of one
// compressed megabyte of zeros repeated (see zeroDeflate), so making it
// costs little.
func pngBomb(w, h uint32) []byte {
	n := int64(h) * int64(w+1) // a filter byte per row
	var z bytes.Buffer
	z.Write([]byte{0x78, 0x9c}) // zlib header: deflate, 32K window
	z.Write(zeroDeflate(n))
	// Adler-32 of n zero bytes: a stays 1, b adds a once per byte.
	_ = binary.Write(&z, binary.BigEndian, uint32(n%65521)<<16|1)
	return pngFile(w, h, 8, 0, z.Bytes())
}

// zlibBytes compresses b with zlib.
func zlibBytes(b []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, err := zw.Write(b)
	must(err)
	must(zw.Close())
	return z.Bytes()
}

// jpegBomb is a JPEG whose frame header claims w×h pixels, with no scan.
func jpegBomb(w, h uint16) []byte {
	plain := encodeJPEG(Picture(8, 8, 3), 90)
	i := bytes.Index(plain, []byte{0xff, 0xc0})
	out := append([]byte{}, plain...)
	binary.BigEndian.PutUint16(out[i+5:], h)
	binary.BigEndian.PutUint16(out[i+7:], w)
	return out
}

// gifBomb is a GIF whose logical screen claims w×h pixels around a 1×1
// frame.
func gifBomb(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	b = append(b, 0x80, 0, 0)             // a global table of 2 colours
	b = append(b, 0, 0, 0, 255, 255, 255) // black, white
	b = append(b, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0)
	b = append(b, 2, 2, 0x4c, 0x01, 0) // LZW: min code size 2, one pixel
	return append(b, 0x3b)
}

// bmpBomb is a BMP header claiming w×h 24-bit pixels, with none after it.
func bmpBomb(w, h int32) []byte {
	b := make([]byte, 54)
	copy(b, "BM")
	binary.LittleEndian.PutUint32(b[2:], 54)
	binary.LittleEndian.PutUint32(b[10:], 54)
	binary.LittleEndian.PutUint32(b[14:], 40)
	binary.LittleEndian.PutUint32(b[18:], uint32(w))
	binary.LittleEndian.PutUint32(b[22:], uint32(h))
	binary.LittleEndian.PutUint16(b[26:], 1)
	binary.LittleEndian.PutUint16(b[28:], 24)
	return b
}

// webpLossless is a w×h lossless WebP of one colour (a VP8L stream with
// one-symbol prefix codes, so the pixels take no bits).
func webpLossless(width, height int, a, r, g, bl uint8) ([]byte, image.Image) {
	bw := &bitWriter{buf: []byte{0x2f}, nbits: 8}
	bw.write(uint32(width-1), 14)
	bw.write(uint32(height-1), 14)
	bw.write(1, 1) // alpha used
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	for _, sym := range []uint8{g, r, bl, a, 0} {
		bw.write(1, 1) // simple code
		bw.write(0, 1) // one symbol
		bw.write(1, 1) // of 8 bits
		bw.write(uint32(sym), 8)
	}
	chunk := append([]byte("VP8L"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(chunk[4:], uint32(len(bw.buf)))
	chunk = append(chunk, bw.buf...)
	if len(bw.buf)%2 == 1 {
		chunk = append(chunk, 0)
	}
	out := append([]byte("RIFF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[4:], uint32(4+len(chunk)))
	out = append(out, "WEBP"...)
	out = append(out, chunk...)
	like := image.NewNRGBA(image.Rect(0, 0, width, height))
	for i := 0; i < len(like.Pix); i += 4 {
		like.Pix[i], like.Pix[i+1], like.Pix[i+2], like.Pix[i+3] = r, g, bl, a
	}
	return out, like
}

// bitWriter writes a VP8L bit stream, least significant bit first.
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

// MeanDiff is the mean absolute difference of a's and b's 8-bit
// non-premultiplied channels, alpha included; a and b have the same size.
func MeanDiff(a, b image.Image) float64 {
	ab, bb := a.Bounds(), b.Bounds()
	var sum, n float64
	for y := range min(ab.Dy(), bb.Dy()) {
		for x := range min(ab.Dx(), bb.Dx()) {
			ca := color.NRGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.NRGBA)
			cb := color.NRGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.NRGBA)
			for _, d := range []int{int(ca.R) - int(cb.R), int(ca.G) - int(cb.G), int(ca.B) - int(cb.B), int(ca.A) - int(cb.A)} {
				sum += float64(abs(d))
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// LargePNG is a valid PNG of about n bytes: a small picture with a text
// chunk that makes up the size, so that its bytes are the load and
// decoding it costs little.
func LargePNG(n int) []byte {
	small := encodePNG(Picture(24, 16, 11))
	var b bytes.Buffer
	b.Write(small[:33]) // signature and IHDR
	pngChunk(&b, "tEXt", append([]byte("Comment\x00"), bytes.Repeat([]byte("z"), max(0, n-len(small)-20))...))
	b.Write(small[33:])
	return b.Bytes()
}
