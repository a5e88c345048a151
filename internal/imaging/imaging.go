// Package imaging sniffs, validates and decodes the image formats Shoal
// accepts (JPEG, PNG, GIF's first frame, WebP, BMP) and makes thumbnails. The
// Dataset service validates every imported file with it; training and serving
// decode with it, so all three agree on what an image is. A JPEG is turned
// upright as its EXIF orientation says, as every viewer shows it.
package imaging

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"strings"

	"golang.org/x/image/bmp"
	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// Format is a decoded image format.
type Format string

// The formats Shoal accepts.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	WebP Format = "webp"
	BMP  Format = "bmp"
)

// ContentType returns the format's MIME type.
func (f Format) ContentType() string {
	switch f {
	case JPEG:
		return "image/jpeg"
	case PNG:
		return "image/png"
	case GIF:
		return "image/gif"
	case WebP:
		return "image/webp"
	case BMP:
		return "image/bmp"
	}
	return "application/octet-stream"
}

// ErrInvalid is wrapped by every error that is about the bytes rather than
// the machine: the message says what is wrong with the image.
var ErrInvalid = errors.New("invalid image")

// Limits bound what Validate accepts. Zero means no limit.
type Limits struct {
	// MaxBytes is the largest encoded size.
	MaxBytes int64
	// MaxPixels is the largest width×height, checked on the header before
	// any pixel is decoded, so a small file claiming a huge canvas (a
	// decompression bomb) costs nothing.
	MaxPixels int64
}

// Info describes a valid image; Width and Height are as it is shown, after
// its EXIF orientation.
type Info struct {
	Format Format
	Width  int
	Height int
}

// codec is one format: how to recognise it and decode it. A fixed table
// rather than image.RegisterFormat keeps the accepted set explicit and free
// of whatever other packages register globally.
type codec struct {
	format Format
	sniff  func([]byte) bool
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var codecs = [...]codec{
	{JPEG, func(b []byte) bool { return bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}) }, jpeg.DecodeConfig, jpeg.Decode},
	{PNG, func(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }, png.DecodeConfig, png.Decode},
	{GIF, func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a"))
	}, gif.DecodeConfig, gif.Decode},
	{WebP, func(b []byte) bool {
		return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
	}, webp.DecodeConfig, webp.Decode},
	{BMP, func(b []byte) bool { return bytes.HasPrefix(b, []byte("BM")) }, bmp.DecodeConfig, bmp.Decode},
}

// Sniff returns the format the leading bytes announce.
func Sniff(b []byte) (Format, bool) {
	if c := sniff(b); c != nil {
		return c.format, true
	}
	return "", false
}

func sniff(b []byte) *codec {
	for i := range codecs {
		if codecs[i].sniff(b) {
			return &codecs[i]
		}
	}
	return nil
}

// Validate checks that data is one whole image within limits, decoding it
// fully (a truncated file fails here), and describes it.
func Validate(data []byte, lim Limits) (Info, error) {
	_, info, err := decode(data, lim, nil)
	return info, err
}

// Decode validates data as Validate does and returns the decoded image (a
// GIF's first frame), turned upright as its EXIF orientation says (JPEG).
func Decode(data []byte, lim Limits) (image.Image, Info, error) {
	return decode(data, lim, nil)
}

// decode is Decode; a JPEG is decoded as for s when s is not nil (see
// DecodeFor).
func decode(data []byte, lim Limits, s *Spec) (image.Image, Info, error) {
	switch {
	case len(data) == 0:
		return nil, Info{}, fmt.Errorf("%w: empty file (0 bytes)", ErrInvalid)
	case lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes:
		return nil, Info{}, fmt.Errorf("%w: %d bytes, more than the limit of %d", ErrInvalid, len(data), lim.MaxBytes)
	}
	c := sniff(data)
	if c == nil {
		return nil, Info{}, fmt.Errorf("%w: not an image: unknown format (JPEG, PNG, GIF, WebP and BMP are accepted)", ErrInvalid)
	}
	cfg, err := c.config(bytes.NewReader(data))
	if err != nil {
		return nil, Info{}, fmt.Errorf("%w: %s header: %s", ErrInvalid, c.format, reason(err))
	}
	info := Info{Format: c.format, Width: cfg.Width, Height: cfg.Height}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, info, fmt.Errorf("%w: %s header claims %dx%d pixels", ErrInvalid, c.format, cfg.Width, cfg.Height)
	}
	orientation := 1
	if c.format == JPEG {
		if orientation = jpegOrientation(data); orientation >= 5 {
			info.Width, info.Height = cfg.Height, cfg.Width // upright, as a viewer shows it
		}
	}
	if px := int64(cfg.Width) * int64(cfg.Height); lim.MaxPixels > 0 && px > lim.MaxPixels {
		return nil, info, fmt.Errorf("%w: %dx%d is %d pixels, more than the limit of %d", ErrInvalid, cfg.Width, cfg.Height, px, lim.MaxPixels)
	}
	var img image.Image
	if c.format == JPEG && s != nil && s.JPEGDecode == JPEGDCTScaled {
		img, err = decodeJPEGScaled(data, cfg, orientation, *s)
	} else {
		img, err = c.decode(bytes.NewReader(data))
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w: %s data: %s", ErrInvalid, c.format, reason(err))
	}
	// A GIF's first frame may cover any part of its canvas, none included
	// (found by fuzzing): there is then no picture to classify.
	if b := img.Bounds(); b.Empty() {
		return nil, info, fmt.Errorf("%w: %s data: the image (a GIF's first frame) has no pixels: %dx%d of a %dx%d canvas",
			ErrInvalid, c.format, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return orient(img, orientation), info, nil
}

// reason turns a decoder error into words a user can act on.
func reason(err error) string {
	var corrupt flate.CorruptInputError
	switch {
	// png reports a short IDAT stream as a format error rather than EOF.
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "not enough pixel data"):
		return "truncated (the file ends before the image does)"
	case errors.As(err, &corrupt), errors.Is(err, zlib.ErrChecksum), errors.Is(err, zlib.ErrHeader), strings.Contains(err.Error(), "invalid checksum"):
		return "corrupt: the file was damaged, in storage or on the way (" + err.Error() + ")"
	}
	return err.Error()
}

// Thumbnail decodes data and returns a JPEG whose longer side is at most
// maxSide pixels (the image itself, re-encoded, if it is already smaller).
func Thumbnail(data []byte, maxSide int, lim Limits) ([]byte, error) {
	if maxSide <= 0 {
		return nil, fmt.Errorf("imaging: thumbnail size %d must be positive", maxSide)
	}
	src, info, err := decode(data, lim, nil)
	if err != nil {
		return nil, err
	}
	w, h := info.Width, info.Height
	if w > maxSide || h > maxSide {
		if w >= h {
			w, h = maxSide, max(1, h*maxSide/info.Width)
		} else {
			w, h = max(1, w*maxSide/info.Height), maxSide
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	// Transparent areas become white, as a browser shows them on a page.
	draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	// CatmullRom is the sharpest of x/image's scalers; thumbnails are small,
	// so its cost does not matter.
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Over, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85}); err != nil {
		return nil, fmt.Errorf("imaging: encode thumbnail: %w", err)
	}
	return buf.Bytes(), nil
}
