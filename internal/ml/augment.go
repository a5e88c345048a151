package ml

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Augmentation configures random transformations of training images, done
// on the host per batch. Each batch's randomness is derived from the seed,
// the epoch and the step, so a run (and a resumed run) sees the same
// batches every time.
type Augmentation struct {
	HorizontalFlip bool // left-right, with probability 0.5.
	VerticalFlip   bool // top-bottom, with probability 0.5.
	// CropMinScale is the smallest area fraction of a random resized crop
	// (aspect ratio 3/4..4/3, resized back bilinearly), in (0, 1]; 0 or 1
	// disables cropping.
	CropMinScale float64
	// ColorJitter is the largest relative change of brightness, contrast
	// and (RGB only) saturation, in [0, 1); 0 disables it.
	ColorJitter float64
}

// Active reports whether a transformation is enabled.
func (a Augmentation) Active() bool {
	return a.HorizontalFlip || a.VerticalFlip || a.crops() || a.ColorJitter > 0
}

func (a Augmentation) crops() bool { return a.CropMinScale > 0 && a.CropMinScale < 1 }

// Validate reports settings outside their ranges.
func (a Augmentation) Validate() error {
	if !(a.CropMinScale >= 0 && a.CropMinScale <= 1) {
		return fmt.Errorf("crop min scale must be in (0, 1] (0 disables cropping), got %g", a.CropMinScale)
	}
	if !(a.ColorJitter >= 0 && a.ColorJitter < 1) {
		return fmt.Errorf("colour jitter must be in [0, 1), got %g", a.ColorJitter)
	}
	return nil
}

// augmentRNG is the random source of one batch.
func augmentRNG(seed int64, epoch, step int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed)^0x5eed_a06_0e47, uint64(epoch)<<32|uint64(step)))
}

// apply transforms the NCHW images of one batch in place; scratch is a
// buffer of one image's size.
func (a Augmentation) apply(images []float32, s InputShape, rng *rand.Rand, scratch []float32) {
	size := s.Size()
	for off := 0; off+size <= len(images); off += size {
		img := images[off : off+size]
		if a.crops() {
			a.crop(img, s, rng, scratch)
		}
		if a.HorizontalFlip && rng.IntN(2) == 1 {
			flip(img, s, true)
		}
		if a.VerticalFlip && rng.IntN(2) == 1 {
			flip(img, s, false)
		}
		if a.ColorJitter > 0 {
			jitter(img, s, a.ColorJitter, rng)
		}
	}
}

func flip(img []float32, s InputShape, horizontal bool) {
	h, w := s.Height, s.Width
	for c := range s.Channels {
		p := img[c*h*w : (c+1)*h*w]
		if horizontal {
			for y := range h {
				row := p[y*w : (y+1)*w]
				for i, j := 0, w-1; i < j; i, j = i+1, j-1 {
					row[i], row[j] = row[j], row[i]
				}
			}
			continue
		}
		for i, j := 0, h-1; i < j; i, j = i+1, j-1 {
			for x := range w {
				p[i*w+x], p[j*w+x] = p[j*w+x], p[i*w+x]
			}
		}
	}
}

// crop replaces img with a random crop of it resized to the full size, as
// torchvision's RandomResizedCrop does.
func (a Augmentation) crop(img []float32, s InputShape, rng *rand.Rand, scratch []float32) {
	h, w := float64(s.Height), float64(s.Width)
	scale := a.CropMinScale + rng.Float64()*(1-a.CropMinScale)
	logRatio := math.Log(3.0/4) + rng.Float64()*(math.Log(4.0/3)-math.Log(3.0/4))
	ratio := math.Exp(logRatio)
	cw := math.Min(w, math.Sqrt(scale*ratio)*w)
	ch := math.Min(h, math.Sqrt(scale/ratio)*h)
	x0 := rng.Float64() * (w - cw)
	y0 := rng.Float64() * (h - ch)
	copy(scratch, img)
	hh, ww := s.Height, s.Width
	for c := range s.Channels {
		src := scratch[c*hh*ww : (c+1)*hh*ww]
		dst := img[c*hh*ww : (c+1)*hh*ww]
		for y := range hh {
			sy := clamp(y0+(float64(y)+0.5)*ch/h-0.5, 0, h-1)
			y1 := int(sy)
			y2 := min(y1+1, hh-1)
			fy := float32(sy - float64(y1))
			for x := range ww {
				sx := clamp(x0+(float64(x)+0.5)*cw/w-0.5, 0, w-1)
				x1 := int(sx)
				x2 := min(x1+1, ww-1)
				fx := float32(sx - float64(x1))
				top := src[y1*ww+x1]*(1-fx) + src[y1*ww+x2]*fx
				bottom := src[y2*ww+x1]*(1-fx) + src[y2*ww+x2]*fx
				dst[y*ww+x] = top*(1-fy) + bottom*fy
			}
		}
	}
}

// jitter scales brightness, contrast and (with 3 channels) saturation by
// random factors in [1-j, 1+j], in that order, and clamps to [0, 1].
func jitter(img []float32, s InputShape, j float64, rng *rand.Rand) {
	factor := func() float32 { return float32(1 - j + 2*j*rng.Float64()) }
	brightness, contrast, saturation := factor(), factor(), factor()
	hw := s.Height * s.Width
	for i := range img {
		img[i] *= brightness
	}
	// Contrast blends with the mean grey level, saturation with each
	// pixel's grey (ITU-R 601 luma), as torchvision's ColorJitter does.
	gray := func(i int) float32 {
		if s.Channels == 3 {
			return 0.299*img[i] + 0.587*img[hw+i] + 0.114*img[2*hw+i]
		}
		return img[i]
	}
	var mean float32
	for i := range hw {
		mean += gray(i)
	}
	mean /= float32(hw)
	for i := range img {
		img[i] = (img[i]-mean)*contrast + mean
	}
	if s.Channels == 3 {
		for i := range hw {
			g := gray(i)
			for c := range 3 {
				img[c*hw+i] = (img[c*hw+i]-g)*saturation + g
			}
		}
	}
	for i, v := range img {
		img[i] = min(max(v, 0), 1)
	}
}

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

// ParseAugmentation reads "none" or a comma-separated list of hflip, vflip,
// crop=S and jitter=J (the form of the CLI's --augment and the benchmarks'
// settings). It checks the syntax only; Validate checks the ranges, which
// the CLI leaves to the server so that the server's message is the one shown.
func ParseAugmentation(s string) (Augmentation, error) {
	var a Augmentation
	if s == "none" {
		return a, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		var err error
		switch name {
		case "hflip":
			a.HorizontalFlip = true
		case "vflip":
			a.VerticalFlip = true
		case "crop":
			a.CropMinScale, err = strconv.ParseFloat(value, 64)
		case "jitter":
			a.ColorJitter, err = strconv.ParseFloat(value, 64)
		default:
			err = fmt.Errorf("unknown augmentation %q (want hflip, vflip, crop=S, jitter=J or none)", name)
		}
		if err != nil {
			return a, err
		}
	}
	return a, nil
}
