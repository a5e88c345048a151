package imaging

import (
	"encoding/binary"
	"image"
	"image/draw"
)

// A camera stores a photo as its sensor saw it and says in the EXIF
// orientation tag how to turn it upright; every viewer, browser and phone
// follows the tag. Shoal reads the tag of JPEG files and turns the decoded
// image as the viewer would, so a photo is classified, trained on and
// shown as the person who took it sees it.

// jpegOrientation returns the EXIF orientation (1 to 8, as TIFF defines
// them) of a JPEG file, or 1 when it has none or the tag cannot be read. It
// reads only the segments before the first scan.
func jpegOrientation(b []byte) int {
	if len(b) < 2 || b[0] != 0xff || b[1] != 0xd8 {
		return 1
	}
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xff {
			return 1
		}
		marker := b[i+1]
		switch {
		case marker == 0xff: // fill byte
			i++
			continue
		case marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7): // no length
			i += 2
			continue
		case marker == 0xda || marker == 0xd9: // start of scan, end of image
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return tiffOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

// tiffOrientation reads tag 0x0112 of a TIFF structure's first IFD.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	count := int64(bo.Uint16(t[ifd:]))
	for e := ifd + 2; e+12 <= int64(len(t)) && e < ifd+2+12*count; e += 12 {
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if bo.Uint16(t[e+2:]) != 3 || bo.Uint32(t[e+4:]) != 1 { // one SHORT
			return 1
		}
		if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
			return o
		}
		return 1
	}
	return 1
}

// orient turns img as EXIF orientation o says a viewer shows it.
// Orientations 5 to 8 swap width and height.
func orient(img image.Image, o int) image.Image {
	if o <= 1 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	// where maps a source pixel (x, y) to its place upright.
	where := func(x, y int) (int, int) {
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
		}
		return y, w - 1 - x // 8
	}
	if g, ok := img.(*image.Gray); ok {
		out := image.NewGray(image.Rect(0, 0, dw, dh))
		for y := range h {
			off := g.PixOffset(b.Min.X, b.Min.Y+y)
			row := g.Pix[off : off+w]
			for x, v := range row {
				dx, dy := where(x, y)
				out.Pix[dy*out.Stride+dx] = v
			}
		}
		return out
	}
	// Everything else (YCbCr, CMYK) is made RGBA first, by draw's fast
	// paths, and then moved pixel by pixel.
	src := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(src, src.Rect, img, b.Min, draw.Src)
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		for x := range w {
			dx, dy := where(x, y)
			copy(out.Pix[dy*out.Stride+4*dx:dy*out.Stride+4*dx+4], src.Pix[y*src.Stride+4*x:])
		}
	}
	return out
}
