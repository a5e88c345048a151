package imaging

import (
	"image"
	"math"
	"sync"
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

// scratch holds a call's intermediate buffers, pooled: a 300-row source
// resized to 224 columns needs 1.6 MB of float64s.
type scratch struct{ tmp, in, acc []float64 }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

// fastPreprocess is Preprocess for the source types above; it reports
// false, having written nothing, for any other image.
func fastPreprocess(img image.Image, s Spec, sr, dr image.Rectangle, dst []float32) bool {
	if !sr.In(img.Bounds()) {
		return false
	}
	// row fills one source row of sr into in, interleaved per pixel, in
	// x/image's 16-bit range; ch is the values per pixel.
	var (
		ch  int
		row func(y int, in []float64)
	)
	switch src := img.(type) {
	case *image.YCbCr:
		var cx func(x int) int // the chroma column, as YCbCr.COffset
		var cy func(y int) int
		switch src.SubsampleRatio {
		case image.YCbCrSubsampleRatio444:
			cx, cy = func(x int) int { return x - src.Rect.Min.X }, func(y int) int { return y - src.Rect.Min.Y }
		case image.YCbCrSubsampleRatio422:
			cx, cy = func(x int) int { return x/2 - src.Rect.Min.X/2 }, func(y int) int { return y - src.Rect.Min.Y }
		case image.YCbCrSubsampleRatio420:
			cx, cy = func(x int) int { return x/2 - src.Rect.Min.X/2 }, func(y int) int { return y/2 - src.Rect.Min.Y/2 }
		case image.YCbCrSubsampleRatio440:
			cx, cy = func(x int) int { return x - src.Rect.Min.X }, func(y int) int { return y/2 - src.Rect.Min.Y/2 }
		default:
			return false
		}
		ch = 3
		// Chroma columns of sr, computed once.
		cols := make([]int, sr.Dx())
		for x := sr.Min.X; x < sr.Max.X; x++ {
			cols[x-sr.Min.X] = cx(x)
		}
		row = func(y int, in []float64) {
			ys := src.Y[(y-src.Rect.Min.Y)*src.YStride+sr.Min.X-src.Rect.Min.X:]
			cbase := cy(y) * src.CStride
			cb, cr := src.Cb[cbase:], src.Cr[cbase:]
			for k, c := range cols {
				// image/color's YCbCr.RGBA, as x/image inlines it.
				yy1 := int(ys[k]) * 0x10101
				cb1 := int(cb[c]) - 128
				cr1 := int(cr[c]) - 128
				px := in[3*k : 3*k+3 : 3*k+3]
				px[0] = float64(clamp16((yy1 + 91881*cr1) >> 8))
				px[1] = float64(clamp16((yy1 - 22554*cb1 - 46802*cr1) >> 8))
				px[2] = float64(clamp16((yy1 + 116130*cb1) >> 8))
			}
		}
	case *image.Gray:
		ch = 1
		row = func(y int, in []float64) {
			pix := src.Pix[(y-src.Rect.Min.Y)*src.Stride+sr.Min.X-src.Rect.Min.X:]
			for k := range in {
				in[k] = float64(uint32(pix[k]) * 0x101)
			}
		}
	case *image.RGBA:
		if !src.Opaque() {
			return false
		}
		ch = 4
		row = func(y int, in []float64) {
			pix := src.Pix[(y-src.Rect.Min.Y)*src.Stride+4*(sr.Min.X-src.Rect.Min.X):]
			for k := range in {
				in[k] = float64(uint32(pix[k]) * 0x101)
			}
		}
	default:
		return false
	}
	dw, dh, sw, sh := dr.Dx(), dr.Dy(), sr.Dx(), sr.Dy()
	hs, hc := newDistrib(dw, sw)
	vs, vc := newDistrib(dh, sh)
	buf := scratchPool.Get().(*scratch)
	defer scratchPool.Put(buf)
	buf.tmp, buf.in, buf.acc = grow(buf.tmp, sh*dw*ch), grow(buf.in, sw*ch), grow(buf.acc, dw*ch)
	tmp, in, acc := buf.tmp, buf.in, buf.acc

	// Horizontal pass: every source row, resized to dw columns. Each
	// channel's sum runs over the taps in x/image's order.
	for y := range sh {
		row(sr.Min.Y+y, in)
		out := tmp[y*dw*ch : (y+1)*dw*ch]
		for x, s := range hs {
			taps := hc[s.i:s.j]
			switch ch {
			case 1:
				var p0 float64
				for _, c := range taps {
					p0 += float64(in[c.coord] * c.weight)
				}
				out[x] = p0 * s.invTotalWeight65535
			case 3:
				var p0, p1, p2 float64
				for _, c := range taps {
					px := in[3*c.coord : 3*c.coord+3 : 3*c.coord+3]
					p0 += float64(px[0] * c.weight)
					p1 += float64(px[1] * c.weight)
					p2 += float64(px[2] * c.weight)
				}
				o := out[3*x : 3*x+3 : 3*x+3]
				o[0], o[1], o[2] = p0*s.invTotalWeight65535, p1*s.invTotalWeight65535, p2*s.invTotalWeight65535
			case 4:
				var p0, p1, p2, p3 float64
				for _, c := range taps {
					px := in[4*c.coord : 4*c.coord+4 : 4*c.coord+4]
					p0 += float64(px[0] * c.weight)
					p1 += float64(px[1] * c.weight)
					p2 += float64(px[2] * c.weight)
					p3 += float64(px[3] * c.weight)
				}
				o := out[4*x : 4*x+4 : 4*x+4]
				o[0], o[1], o[2], o[3] = p0*s.invTotalWeight65535, p1*s.invTotalWeight65535, p2*s.invTotalWeight65535, p3*s.invTotalWeight65535
			}
		}
	}

	// Vertical pass, a destination row at a time: the rows' contributions
	// are added in x/image's order, so every pixel's sums are the same.
	n := newNormaliser(s)
	n.fillBlack(dst, dr)
	for y, v := range vs {
		clear(acc)
		pa := 0.0 // the alpha sum of YCbCr and gray sources, whose alpha is 1
		for _, c := range vc[v.i:v.j] {
			pa += float64(1 * c.weight)
			src := tmp[c.coord*dw*ch : (c.coord+1)*dw*ch]
			for i, t := range src {
				acc[i] += float64(t * c.weight)
			}
		}
		base := (dr.Min.Y+y)*s.Width + dr.Min.X
		for x := range dw {
			a := acc[x*ch : (x+1)*ch : (x+1)*ch]
			alpha := pa
			if ch == 4 {
				alpha = a[3]
			}
			r := uint8(ftou(min(a[0], alpha)*v.invTotalWeight) >> 8)
			if ch == 1 {
				n.put(dst, base+x, r, r, r)
				continue
			}
			g := uint8(ftou(min(a[1], alpha)*v.invTotalWeight) >> 8)
			b := uint8(ftou(min(a[2], alpha)*v.invTotalWeight) >> 8)
			n.put(dst, base+x, r, g, b)
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
	if n.spec.Resize != ResizeLetterbox {
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
