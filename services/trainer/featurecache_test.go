package trainer

import (
	"errors"
	"slices"
	"testing"

	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/ml"
)

// TestFeatureKeyHasJPEGDecode: the same backbone, preprocessing and images
// under another JPEG decode mode are other features.
func TestFeatureKeyHasJPEGDecode(t *testing.T) {
	images := []rawImage{{id: "a", content: []byte("jpeg bytes")}}
	key := func(m imaging.JPEGDecode) string {
		k := featureKeyOf([]byte("graph"), imaging.Spec{Channels: 3, Height: 8, Width: 8, Resize: imaging.ResizeStretch, JPEGDecode: m})
		k.split(images)
		return k.blobKey()
	}
	if full, scaled := key(imaging.JPEGFull), key(imaging.JPEGDCTScaled); full == scaled {
		t.Errorf("feature key %s is the same for full and DCT-scaled JPEG decoding", full)
	}
	if first, again := key(imaging.JPEGDCTScaled), key(imaging.JPEGDCTScaled); first != again {
		t.Error("feature key differs between two computations of the same job")
	}
}

func featureSplits(f int, counts ...int) []*ml.Data {
	var out []*ml.Data
	for i, n := range counts {
		d := &ml.Data{Shape: ml.InputShape{Channels: f, Height: 1, Width: 1}, Labels: make([]int32, n)}
		for j := range n * f {
			d.Images = append(d.Images, float32(i*1000+j)/7)
		}
		out = append(out, d)
	}
	return out
}

func TestFeatureFileRoundTripAndStaleness(t *testing.T) {
	stored := encodeFeatures(featureSplits(4, 5, 0, 3))
	got := featureSplits(4, 5, 0, 3)
	for _, d := range got {
		d.Images = nil
	}
	if err := decodeFeatures(stored, got); err != nil {
		t.Fatalf("decodeFeatures(encodeFeatures(splits)) = %v", err)
	}
	for i, want := range featureSplits(4, 5, 0, 3) {
		if !slices.Equal(got[i].Images, want.Images) {
			t.Errorf("split %d = %v; want %v", i, got[i].Images, want.Images)
		}
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		splits []*ml.Data
	}{
		{"other feature count", stored, featureSplits(8, 5, 0, 3)},
		{"other image counts", stored, featureSplits(4, 5, 1, 3)},
		{"other split count", stored, featureSplits(4, 5, 0)},
		{"truncated", stored[:len(stored)-1], featureSplits(4, 5, 0, 3)},
		{"trailing bytes", append(slices.Clone(stored), 0), featureSplits(4, 5, 0, 3)},
		{"not a feature file", []byte("{}"), featureSplits(4, 5, 0, 3)},
	} {
		if err := decodeFeatures(tc.data, tc.splits); !errors.Is(err, errStaleFeatures) {
			t.Errorf("decodeFeatures(%s) = %v; want errStaleFeatures", tc.name, err)
		}
	}
}

// FuzzDecodeFeatures: a stored feature file is read back by every later
// head-only job; whatever bytes the blob store hands back, reading them
// fails cleanly or fills the splits exactly.
func FuzzDecodeFeatures(f *testing.F) {
	f.Add(encodeFeatures(featureSplits(2, 3, 1, 2)))
	f.Add([]byte(featureCacheFormat + "\n\x02\x00\x00\x00\x03\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		splits := featureSplits(2, 3, 1, 2)
		if err := decodeFeatures(data, splits); err != nil {
			if !errors.Is(err, errStaleFeatures) {
				t.Fatalf("decodeFeatures() = %v; want errStaleFeatures", err)
			}
			return
		}
		for _, d := range splits {
			if len(d.Images) != d.Len()*2 {
				t.Fatalf("a split of %d images got %d values", d.Len(), len(d.Images))
			}
		}
	})
}
