package imaging

import (
	"fmt"
	"image"
	"image/color"

	"golang.org/x/image/draw"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

// ResizeMode is how Preprocess fits an image to the spec's size.
type ResizeMode int

const (
	// ResizeStretch scales the image to the size, ignoring its aspect
	// ratio. The zero ResizeMode is no mode: Validate refuses it.
	ResizeStretch ResizeMode = iota + 1
	// ResizeCenterCrop scales the largest centred part of the image with
	// the size's aspect ratio.
	ResizeCenterCrop
	// ResizeLetterbox scales the whole image into the size and pads the
	// rest with black.
	ResizeLetterbox
)

func (m ResizeMode) String() string {
	switch m {
	case ResizeStretch:
		return "stretch"
	case ResizeCenterCrop:
		return "center-crop"
	case ResizeLetterbox:
		return "letterbox"
	}
	return fmt.Sprintf("ResizeMode(%d)", int(m))
}

// Spec is how a model version wants its images: the preprocessing half of
// the Registry's InputSpec. The Trainer and Inference both turn images into
// tensors with Preprocess and a Spec, so a model is served exactly as it was
// trained.
type Spec struct {
	// Channels is 1 (grayscale, BT.601 luma) or 3 (RGB).
	Channels int
	Height   int
	Width    int
	Resize   ResizeMode
	// Mean and Std are per channel (or one value for all channels), applied
	// after scaling pixels to [0, 1]: v = (p/255 - mean) * (1/std). Empty means
	// mean 0 and std 1 (the Trainer normalises inside the graph).
	Mean, Std []float32
	// NHWC selects [H, W, C] per image instead of [C, H, W].
	NHWC bool
	// JPEGDecode is how DecodeFor decodes a JPEG; the zero value is a full
	// decode.
	JPEGDecode JPEGDecode
}

// SpecFromProto validates a Registry InputSpec and returns its Spec.
// Unspecified resize mode means STRETCH and unspecified layout NCHW.
func SpecFromProto(in *registrypb.InputSpec) (Spec, error) {
	if in == nil {
		return Spec{}, fmt.Errorf("imaging: no input spec")
	}
	s := Spec{
		Channels: int(in.GetChannels()), Height: int(in.GetHeight()), Width: int(in.GetWidth()),
		Mean: in.GetMean(), Std: in.GetStd(),
		NHWC: in.GetLayout() == registrypb.TensorLayout_TENSOR_LAYOUT_NHWC,
	}
	switch in.GetResizeMode() {
	case registrypb.ResizeMode_RESIZE_MODE_UNSPECIFIED, registrypb.ResizeMode_RESIZE_MODE_STRETCH:
		s.Resize = ResizeStretch
	case registrypb.ResizeMode_RESIZE_MODE_CENTER_CROP:
		s.Resize = ResizeCenterCrop
	case registrypb.ResizeMode_RESIZE_MODE_LETTERBOX:
		s.Resize = ResizeLetterbox
	default:
		return Spec{}, fmt.Errorf("imaging: unknown resize mode %v", in.GetResizeMode())
	}
	switch in.GetJpegDecode() {
	case registrypb.JpegDecode_JPEG_DECODE_UNSPECIFIED, registrypb.JpegDecode_JPEG_DECODE_FULL:
		s.JPEGDecode = JPEGFull
	case registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED:
		s.JPEGDecode = JPEGDCTScaled
	default:
		return Spec{}, fmt.Errorf("imaging: unknown JPEG decode mode %v", in.GetJpegDecode())
	}
	return s, s.Validate()
}

// Proto is m as the Registry's InputSpec records it.
func (m JPEGDecode) Proto() registrypb.JpegDecode {
	if m == JPEGDCTScaled {
		return registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED
	}
	return registrypb.JpegDecode_JPEG_DECODE_FULL
}

// maxSpecPixels bounds a model's input size: 4096×4096, far past what
// image classifiers take, and a batch tensor that still fits in memory.
const maxSpecPixels = 1 << 24

// Validate reports a spec Preprocess cannot follow.
func (s Spec) Validate() error {
	switch {
	case s.Channels != 1 && s.Channels != 3:
		return fmt.Errorf("imaging: input spec has %d channels, want 1 or 3", s.Channels)
	case s.Height <= 0 || s.Width <= 0:
		return fmt.Errorf("imaging: input spec size %dx%d must be positive", s.Width, s.Height)
	case s.Height*s.Width > maxSpecPixels:
		return fmt.Errorf("imaging: input spec size %dx%d is too large: at most %d pixels", s.Width, s.Height, maxSpecPixels)
	}
	for _, v := range []struct {
		name string
		vals []float32
	}{{"mean", s.Mean}, {"std", s.Std}} {
		if n := len(v.vals); n != 0 && n != 1 && n != s.Channels {
			return fmt.Errorf("imaging: input spec has %d %s values for %d channels", n, v.name, s.Channels)
		}
	}
	for _, sd := range s.Std {
		if !(sd > 0) {
			return fmt.Errorf("imaging: input spec std %v must be positive", sd)
		}
	}
	switch s.Resize {
	case ResizeStretch, ResizeCenterCrop, ResizeLetterbox:
	default:
		return fmt.Errorf("imaging: unknown resize mode %v", s.Resize)
	}
	switch s.JPEGDecode {
	case JPEGFull, JPEGDCTScaled:
	default:
		return fmt.Errorf("imaging: unknown JPEG decode mode %v", s.JPEGDecode)
	}
	return nil
}

// Size is the number of float32 values of one preprocessed image.
func (s Spec) Size() int { return s.Channels * s.Height * s.Width }

// Preprocess resizes img to the spec's size and writes its normalised
// values into dst, which must hold exactly s.Size() values: callers pass a
// slice of the batch tensor, so a batch is assembled without copies.
//
// Resizing uses x/image's draw.BiLinear kernel (a tent filter whose support
// widens when downscaling, so it anti-aliases like PIL's bilinear resize),
// sampling at pixel centres. Transparent pixels are composited over white;
// LETTERBOX pads with black (pixel value 0) before normalisation.
func Preprocess(img image.Image, s Spec, dst []float32) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if len(dst) != s.Size() {
		return fmt.Errorf("imaging: destination holds %d values, want %d", len(dst), s.Size())
	}
	sb := img.Bounds()
	if sb.Empty() {
		return fmt.Errorf("%w: image has no pixels", ErrInvalid)
	}
	srcRect, dstRect := geometry(sb, s)
	if !fastPreprocess(img, s, srcRect, dstRect, dst) {
		preprocessXImage(img, s, srcRect, dstRect, dst)
	}
	return nil
}

// preprocessXImage is Preprocess for any image: x/image/draw resizes into
// an RGBA image, which is then normalised. fastPreprocess computes the same
// values without the intermediate image for the common source types.
func preprocessXImage(img image.Image, s Spec, srcRect, dstRect image.Rectangle, dst []float32) {
	rgba := image.NewRGBA(image.Rect(0, 0, s.Width, s.Height))
	op := draw.Src
	if o, ok := img.(interface{ Opaque() bool }); !ok || !o.Opaque() {
		// Over white, as a browser shows it; Src would keep premultiplied
		// transparent pixels as black.
		draw.Draw(rgba, dstRect, image.White, image.Point{}, draw.Src)
		op = draw.Over
	}
	draw.BiLinear.Scale(rgba, dstRect, img, srcRect, op, nil)
	if s.Resize == ResizeLetterbox {
		// Outside dstRect stays zero; make the padding opaque black.
		fillOutside(rgba, dstRect, color.RGBA{A: 255})
	}
	write(rgba, s, dst)
}

// geometry returns the source rectangle to sample and the destination
// rectangle to fill for the spec's resize mode.
func geometry(sb image.Rectangle, s Spec) (src, dst image.Rectangle) {
	sw, sh := sb.Dx(), sb.Dy()
	full := image.Rect(0, 0, s.Width, s.Height)
	switch s.Resize {
	case ResizeCenterCrop:
		// The largest centred source rectangle with the target's aspect
		// ratio, compared in integers to avoid rounding drift.
		cw, ch := sw, sh
		if sw*s.Height > sh*s.Width { // source is wider: crop the sides
			cw = max(1, sh*s.Width/s.Height)
		} else {
			ch = max(1, sw*s.Height/s.Width)
		}
		x0, y0 := sb.Min.X+(sw-cw)/2, sb.Min.Y+(sh-ch)/2
		return image.Rect(x0, y0, x0+cw, y0+ch), full
	case ResizeLetterbox:
		dw, dh := s.Width, s.Height
		if sw*s.Height > sh*s.Width { // source is wider: bars above and below
			dh = max(1, sh*s.Width/sw)
		} else {
			dw = max(1, sw*s.Height/sh)
		}
		x0, y0 := (s.Width-dw)/2, (s.Height-dh)/2
		return sb, image.Rect(x0, y0, x0+dw, y0+dh)
	}
	return sb, full
}

func fillOutside(img *image.RGBA, in image.Rectangle, c color.RGBA) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if !(image.Point{X: x, Y: y}).In(in) {
				img.SetRGBA(x, y, c)
			}
		}
	}
}

// write normalises the resized pixels into dst in the spec's layout.
func write(img *image.RGBA, s Spec, dst []float32) {
	n := newNormaliser(s)
	for y := range s.Height {
		row := img.Pix[y*img.Stride : y*img.Stride+4*s.Width]
		for x := range s.Width {
			p := row[4*x : 4*x+3 : 4*x+3]
			n.put(dst, y*s.Width+x, p[0], p[1], p[2])
		}
	}
}
