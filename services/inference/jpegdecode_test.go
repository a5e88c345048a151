package inference_test

import (
	"bytes"
	"image"
	"math"
	"testing"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/imaging/jpegscale"
)

// TestPredictJPEGDecode serves one model as two versions that differ only
// in their JPEG decode mode: each answers from its own pixels, the FULL one
// (and one registered before the mode existed) from a full decode, the
// DCT_SCALED one from a 1/8-scale decode.
func TestPredictJPEGDecode(t *testing.T) {
	e := newEnv(t, envOptions{})
	models := map[int64]testModel{}
	for n, mode := range map[int64]registrypb.JpegDecode{
		1: registrypb.JpegDecode_JPEG_DECODE_UNSPECIFIED,
		2: registrypb.JpegDecode_JPEG_DECODE_FULL,
		3: registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED,
	} {
		m := newTestModel(0)
		m.spec.JpegDecode = mode
		e.addVersion(t, "pets", n, m)
		models[n] = m
	}
	e.reg.setAlias("pets", "production", 1)
	photo := imagingtest.PhotoJPEG(64, 48) // 8x6 at 1/8 scale: still more than the 4x4 input

	// What each version must see, computed without DecodeFor.
	full, _, err := imaging.Decode(photo, imaging.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	small, err := jpegscale.Decode(bytes.NewReader(photo), jpegscale.Options{Scale: 8})
	if err != nil {
		t.Fatal(err)
	}
	if small.Bounds() != image.Rect(0, 0, 8, 6) {
		t.Fatalf("1/8-scale decode is %v; want 8x6", small.Bounds())
	}
	probs := map[int64][]float32{}
	for n := range models {
		resp, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "pets", Version: n, Images: [][]byte{photo}})
		if err != nil {
			t.Fatalf("Predict(v%d) = %v", n, err)
		}
		p := make([]float32, 3)
		for _, l := range resp.GetResults()[0].GetLabels() {
			p[l.GetIndex()] = l.GetProbability()
		}
		probs[n] = p
		img := full
		if n == 3 {
			img = small
		}
		want := models[n].probabilities(t, img)
		for k := range p {
			if math.Abs(float64(p[k])-want[k]) > 1e-5 {
				t.Errorf("v%d: P(%s) = %v; want %v from its own decode", n, models[n].labels[k], p[k], want[k])
			}
		}
	}
	if probs[1][0] != probs[2][0] || probs[1][1] != probs[2][1] {
		t.Errorf("a version without the mode answers %v, a FULL one %v; want the same", probs[1], probs[2])
	}
	if probs[3][0] == probs[2][0] && probs[3][1] == probs[2][1] {
		t.Errorf("the DCT_SCALED version answers exactly as the FULL one (%v): its decode was not used", probs[3])
	}
}
