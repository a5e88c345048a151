package trainer_test

import (
	"context"
	"math"
	"os"
	"testing"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/ml"
)

// TestJPEGDecodeAccuracy trains the default model (small-cnn, 1x28x28) on
// the same photo-like JPEGs (fishPhotos: 400x300, quality 85) decoded in
// full and DCT-scaled, and reports both test accuracies, and for that and
// larger inputs the mean absolute difference between the two decodes'
// preprocessed pixels: BENCHMARKS.md's figures. It takes minutes, so it
// runs only when asked:
//
//	SHOAL_JPEG_ACCURACY=1 go test -p 1 -run TestJPEGDecodeAccuracy -v ./services/trainer/
//
// SHOAL_JPEG_ACCURACY=pixels reports the pixel differences alone, in
// seconds.
func TestJPEGDecodeAccuracy(t *testing.T) {
	if os.Getenv("SHOAL_JPEG_ACCURACY") == "" {
		t.Skip("set SHOAL_JPEG_ACCURACY=1 to train with both JPEG decodes (minutes)")
	}
	photos := fishPhotos(1)
	labels := map[string]int32{}
	for _, p := range photos {
		if _, ok := labels[p.label]; !ok {
			labels[p.label] = int32(len(labels))
		}
	}
	for _, shape := range []ml.InputShape{{Channels: 1, Height: 28, Width: 28}, {Channels: 3, Height: 64, Width: 64}, {Channels: 3, Height: 224, Width: 224}} {
		var tensors [2][2]*ml.Data // [mode][train, test]
		for m, mode := range []imaging.JPEGDecode{imaging.JPEGFull, imaging.JPEGDCTScaled} {
			spec := imaging.Spec{Channels: shape.Channels, Height: shape.Height, Width: shape.Width, Resize: imaging.ResizeStretch, JPEGDecode: mode}
			train, test := &ml.Data{Shape: shape}, &ml.Data{Shape: shape}
			for _, p := range photos {
				d := train
				if p.split == datasetpb.Split_SPLIT_TEST {
					d = test
				}
				img, _, err := imaging.DecodeFor(p.content, spec, imaging.Limits{})
				if err != nil {
					t.Fatal(err)
				}
				n := len(d.Images)
				d.Images = append(d.Images, make([]float32, shape.Size())...)
				if err := imaging.Preprocess(img, spec, d.Images[n:]); err != nil {
					t.Fatal(err)
				}
				d.Labels = append(d.Labels, labels[p.label])
			}
			tensors[m] = [2]*ml.Data{train, test}
			if shape.Channels != 1 || os.Getenv("SHOAL_JPEG_ACCURACY") == "pixels" {
				continue // the larger inputs: pixel differences only
			}

			cfg := ml.Defaults()
			cfg.NumClasses, cfg.Seed = len(labels), 1
			res, err := ml.Train(context.Background(), cfg, train, nil)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := ml.Evaluate(res.Model, test)
			res.Model.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %v: %d training, %d test images; test accuracy %.4f (loss %.4f)",
				shape, mode, train.Len(), test.Len(), ev.Accuracy, ev.Loss)
		}
		var sum float64
		full, scaled := tensors[0], tensors[1]
		n := 0
		for s := range 2 {
			for i, v := range full[s].Images {
				sum += math.Abs(float64(v - scaled[s].Images[i]))
				n++
			}
		}
		t.Logf("%s: mean |full - DCT-scaled| = %.3f of 255 per pixel value", shape, 255*sum/float64(n))
	}
}
