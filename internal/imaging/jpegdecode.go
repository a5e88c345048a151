package imaging

import (
	"bytes"
	"fmt"
	"image"

	"github.com/shoalml/shoal/internal/imaging/jpegscale"
)

// JPEGDecode is how DecodeFor decodes a JPEG before Preprocess resizes it.
type JPEGDecode int

const (
	// JPEGFull decodes every pixel, as Decode does. It is the zero value:
	// every model version registered before the mode existed has it.
	JPEGFull JPEGDecode = iota
	// JPEGDCTScaled decodes at 1/2, 1/4 or 1/8 scale in the DCT: the
	// largest reduction that still leaves at least the pixels the spec's
	// resize samples, in both dimensions (JPEGScale). A one-channel spec
	// gets the JPEG's luma alone, its chroma never transformed. Preprocess
	// then resizes as usual, from far fewer pixels.
	JPEGDCTScaled
)

func (m JPEGDecode) String() string {
	switch m {
	case JPEGFull:
		return "full"
	case JPEGDCTScaled:
		return "dct-scaled"
	}
	return fmt.Sprintf("JPEGDecode(%d)", int(m))
}

// DecodeFor decodes data for a model whose input spec is s: exactly as
// Decode does (the same validation, limits, errors and EXIF orientation),
// except that a JPEG is decoded as s.JPEGDecode says. The Trainer and
// Inference both decode with it, so a model is served the pixels it was
// trained on.
func DecodeFor(data []byte, s Spec, lim Limits) (image.Image, Info, error) {
	return decode(data, lim, &s)
}

// JPEGScale is the DCT scale (1, 2, 4 or 8) JPEGDCTScaled decodes a w×h
// JPEG (as stored, before its EXIF orientation o) at for s: the largest
// whose image, turned upright, still has at least as many pixels as the
// resize fills in each dimension, over the part of it the resize samples
// (all of it but for CENTER_CROP).
func JPEGScale(w, h, o int, s Spec) int {
	if s.Width <= 0 || s.Height <= 0 {
		return 1
	}
	for _, k := range [...]int{8, 4, 2} {
		sw, sh := jpegscale.ScaledSize(w, h, k)
		if o >= 5 {
			sw, sh = sh, sw
		}
		src, dst := geometry(image.Rect(0, 0, sw, sh), s)
		if src.Dx() >= dst.Dx() && src.Dy() >= dst.Dy() {
			return k
		}
	}
	return 1
}

// decodeJPEGScaled decodes a JPEG whose header said cfg as JPEGDCTScaled
// does for s. Every JPEG the standard library decodes is decoded here:
// grayscale, YCbCr at any subsampling, RGB, CMYK and YCCK, baseline or
// progressive (luma-only applies to YCbCr alone; the others keep their
// colours and Preprocess converts them as for a full decode).
func decodeJPEGScaled(data []byte, cfg image.Config, orientation int, s Spec) (image.Image, error) {
	return jpegscale.Decode(bytes.NewReader(data), jpegscale.Options{
		Scale:    JPEGScale(cfg.Width, cfg.Height, orientation, s),
		LumaOnly: s.Channels == 1,
	})
}
