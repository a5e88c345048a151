package imaging

import (
	"image"
	"math"
	"sync"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

// This file is the fast path of Preprocess for the images decoders return
// most (JPEG's *image.YCbCr and *image.Gray, opaque PNG's *image.RGBA): it
// resizes straight from the decoded planes into the float32 tensor, with
// no intermediate RGBA image, each source pixel converted to RGB once
// rather than once per filter tap, and the tent filter's weights shared
// by all channels.
//
// It computes exactly what x/image/draw's BiLinear.Scale followed by the
// generic path's normalisation computes: the same weights (newDistrib
// mirrors x/image's), the same float64 sums in the same order with the
// same explicit conversions (which also keep the compiler from fusing
// multiply-adds), the same 16-bit colour conversion and the same rounding
// to 8 bits. TestFastPathMatchesXImage holds it to that, bit for bit.

// contrib is one source column's (or row's) weight in a destination pixel.
type contrib struct {
	coord  int
	weight float64
}

// source is a destination column's (or row's) slice of contribs and the
// inverse of their total weight.
type source struct {
	i, j                                int
	invTotalWeight, invTotalWeight65535 float64
}

// newDistrib distributes sw source columns over dw destination columns
// with the tent kernel (support 1, widened by the scale when shrinking),
// as x/image/draw's newDistrib does for BiLinear.
func newDistrib(dw, sw int) ([]source, []contrib) {
	scale := float64(sw) / float64(dw)
	halfWidth, kernelArgScale := 1.0, 1.0
	if scale > 1 {
		halfWidth *= scale
		kernelArgScale = 1 / scale
	}
	sources := make([]source, dw)
	contribs := make([]contrib, 0, dw*(int(2*halfWidth)+2))
	for x := range sources {
		center := float64((float64(x)+0.5)*scale) - 0.5
		i := max(int(math.Floor(center-halfWidth)), 0)
		j := int(math.Ceil(center + halfWidth))
		if j > sw {
			j = max(sw, i)
		}
		total := 0.0
		l := len(contribs)
		for coord := i; coord < j; coord++ {
			t := (center - float64(coord)) * kernelArgScale
			if t < 0 {
				t = -t
			}
			if t >= 1 {
				continue
			}
			w := 1 - t
			if w == 0 {
				continue
			}
			total += w
			contribs = append(contribs, contrib{coord, w})
		}
		total = 1 / total
		sources[x] = source{i: l, j: len(contribs), invTotalWeight: total, invTotalWeight65535: total / 0xffff}
	}
	return sources, contribs
}

// ftou converts [0, 1] to [0, 0xffff] as x/image/draw does.
func ftou(f float64) uint16 {
	i := int32(float64(0xffff*f) + 0.5)
	if i > 0xffff {
		return 0xffff
	}
	if i > 0 {
		return uint16(i)
	}
	return 0
}

// planes are the horizontally resized rows: one float64 plane per colour
// channel (one for gray sources) plus alpha for RGBA sources. Pooled: a
// 300-row source resized to 224 columns needs 1.6 MB.
type planes struct{ c [4][]float64 }

var planePool = sync.Pool{New: func() any { return new(planes) }}

func (p *planes) get(ch, n int) []float64 {
	if cap(p.c[ch]) < n {
		p.c[ch] = make([]float64, n)
	}
	return p.c[ch][:n]
}

// fastPreprocess is Preprocess for the source types above; it reports
// false, having written nothing, for any other image.
func fastPreprocess(img image.Image, s Spec, sr, dr image.Rectangle, dst []float32) bool {
	var (
		gray  bool
		alpha bool
		row   func(y int, r, g, b, a []float64) // fills one source row of sr, in 0..0xffff
	)
	switch src := img.(type) {
	case *image.YCbCr:
		switch src.SubsampleRatio {
		case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440:
		default:
			return false
		}
		row = func(y int, r, g, b, _ []float64) {
			yi := (y - src.Rect.Min.Y) * src.YStride
			for x := sr.Min.X; x < sr.Max.X; x++ {
				// image/color's YCbCr.RGBA, as x/image inlines it.
				yy1 := int(src.Y[yi+x-src.Rect.Min.X]) * 0x10101
				ci := src.COffset(x, y)
				cb1 := int(src.Cb[ci]) - 128
				cr1 := int(src.Cr[ci]) - 128
				k := x - sr.Min.X
				r[k] = float64(clamp16((yy1 + 91881*cr1) >> 8))
				g[k] = float64(clamp16((yy1 - 22554*cb1 - 46802*cr1) >> 8))
				b[k] = float64(clamp16((yy1 + 116130*cb1) >> 8))
			}
		}
	case *image.Gray:
		gray = true
		row = func(y int, r, _, _, _ []float64) {
			base := (y-src.Rect.Min.Y)*src.Stride - src.Rect.Min.X
			for x := sr.Min.X; x < sr.Max.X; x++ {
				r[x-sr.Min.X] = float64(uint32(src.Pix[base+x]) * 0x101)
			}
		}
	case *image.RGBA:
		if !src.Opaque() {
			return false
		}
		alpha = true
		row = func(y int, r, g, b, a []float64) {
			base := (y-src.Rect.Min.Y)*src.Stride - 4*src.Rect.Min.X
			for x := sr.Min.X; x < sr.Max.X; x++ {
				p, k := src.Pix[base+4*x:base+4*x+4:base+4*x+4], x-sr.Min.X
				r[k], g[k], b[k], a[k] = float64(uint32(p[0])*0x101), float64(uint32(p[1])*0x101), float64(uint32(p[2])*0x101), float64(uint32(p[3])*0x101)
			}
		}
	default:
		return false
	}
	if !sr.In(img.Bounds()) {
		return false
	}
	dw, dh, sw, sh := dr.Dx(), dr.Dy(), sr.Dx(), sr.Dy()
	hs, hc := newDistrib(dw, sw)
	vs, vc := newDistrib(dh, sh)
	channels := 3
	if gray {
		channels = 1
	}
	if alpha {
		channels = 4
	}
	buf := planePool.Get().(*planes)
	defer planePool.Put(buf)
	// Horizontal pass: tmp[ch][y*dw+x] for every source row y.
	var tmp, in [4][]float64
	for ch := range channels {
		tmp[ch] = buf.get(ch, sh*dw)
		in[ch] = make([]float64, sw)
	}
	for y := range sh {
		row(sr.Min.Y+y, in[0], in[1], in[2], in[3])
		for ch := range channels {
			src, out := in[ch], tmp[ch][y*dw:(y+1)*dw]
			for x, s := range hs {
				var sum float64
				for _, c := range hc[s.i:s.j] {
					sum += float64(src[c.coord] * c.weight)
				}
				out[x] = sum * s.invTotalWeight65535
			}
		}
	}
	// Vertical pass, straight into the tensor.
	n := newNormaliser(s)
	n.fillBlack(dst, dr)
	var px [3]uint8
	for y, v := range vs {
		cs := vc[v.i:v.j]
		for x := range dw {
			pa := 0.0
			for _, c := range cs {
				if alpha {
					pa += float64(tmp[3][c.coord*dw+x] * c.weight)
				} else {
					pa += float64(1 * c.weight)
				}
			}
			for ch := range min(channels, 3) {
				var sum float64
				for _, c := range cs {
					sum += float64(tmp[ch][c.coord*dw+x] * c.weight)
				}
				sum = min(sum, pa)
				px[ch] = uint8(ftou(sum*v.invTotalWeight) >> 8)
			}
			if gray {
				px[1], px[2] = px[0], px[0]
			}
			n.put(dst, (dr.Min.Y+y)*s.Width+dr.Min.X+x, px[0], px[1], px[2])
		}
	}
	return true
}

func clamp16(v int) int {
	return max(0, min(v, 0xffff))
}

// normaliser writes 8-bit RGB pixels as normalised values in the spec's
// layout.
type normaliser struct {
	spec        Spec
	mean, scale [3]float32
	plane       int
}

func newNormaliser(s Spec) normaliser {
	n := normaliser{spec: s, plane: s.Height * s.Width}
	for c := range s.Channels {
		n.mean[c], n.scale[c] = 0, 1
		if len(s.Mean) > 0 {
			n.mean[c] = s.Mean[min(c, len(s.Mean)-1)]
		}
		if len(s.Std) > 0 {
			n.scale[c] = 1 / s.Std[min(c, len(s.Std)-1)]
		}
	}
	return n
}

// put writes pixel i (y*Width+x) of the resized image.
func (n *normaliser) put(dst []float32, i int, r, g, b uint8) {
	if n.spec.Channels == 1 {
		// ITU-R BT.601 luma, as PIL's "L" conversion.
		l := (0.299*float32(r) + 0.587*float32(g) + 0.114*float32(b)) / 255
		dst[i] = (l - n.mean[0]) * n.scale[0]
		return
	}
	for c, p := range [3]uint8{r, g, b} {
		v := (float32(p)/255 - n.mean[c]) * n.scale[c]
		if n.spec.NHWC {
			dst[3*i+c] = v
		} else {
			dst[c*n.plane+i] = v
		}
	}
}

// fillBlack writes black (pixel value 0) outside in: LETTERBOX's bars.
func (n *normaliser) fillBlack(dst []float32, in image.Rectangle) {
	if n.spec.Resize != registrypb.ResizeMode_RESIZE_MODE_LETTERBOX {
		return
	}
	for y := range n.spec.Height {
		for x := range n.spec.Width {
			if !(image.Point{X: x, Y: y}).In(in) {
				n.put(dst, y*n.spec.Width+x, 0, 0, 0)
			}
		}
	}
}
