package trainer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"

	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// Head-only jobs keep the backbone's features of a snapshot's images in the
// blob store, where every Trainer process finds them: the next head-only
// job on the same images and base (another seed, rate or epoch count, or a
// job resumed after a restart) skips the backbone. The key is the SHA-256
// of everything the features depend on: the backbone's graph (the base's
// ONNX file cut before its head), the preprocessing, and each split's
// images (their contents, in the snapshot's order). Two snapshots holding
// the same images share their features; nothing in a key can go stale.
const featureCacheFormat = "shoal-features-v1"

// featureKey hashes what a snapshot's features depend on, split by split.
type featureKey struct{ h hash.Hash }

func newFeatureKey(bb *ml.Backbone, pre imaging.Spec) *featureKey {
	return featureKeyOf(bb.Graph(), pre)
}

// featureKeyOf is newFeatureKey for a backbone's ONNX graph. The spec's
// every field counts, the JPEG decode mode included: a DCT-scaled decode
// gives other pixels, so other features.
func featureKeyOf(graph []byte, pre imaging.Spec) *featureKey {
	k := &featureKey{h: sha256.New()}
	sum := sha256.Sum256(graph)
	fmt.Fprintf(k.h, "%s\x00%x\x00%+v\x00", featureCacheFormat, sum, pre)
	return k
}

// split adds the next split's images, in order.
func (k *featureKey) split(images []rawImage) {
	fmt.Fprintf(k.h, "split %d\x00", len(images))
	for _, im := range images {
		sum := sha256.Sum256(im.content)
		k.h.Write(sum[:])
	}
}

// blobKey is where the features are stored.
func (k *featureKey) blobKey() string {
	return "trainer/features/" + hex.EncodeToString(k.h.Sum(nil)) + ".f32"
}

// errStaleFeatures means a stored feature file does not fit the job.
var errStaleFeatures = errors.New("stored features do not fit")

// encodeFeatures writes the splits' features: a header (format, feature
// count, image count of each split), then the float32 values,
// little-endian.
func encodeFeatures(splits []*ml.Data) []byte {
	out := []byte(featureCacheFormat + "\n")
	out = binary.LittleEndian.AppendUint32(out, uint32(splits[0].Shape.Size()))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(splits)))
	for _, d := range splits {
		out = binary.LittleEndian.AppendUint32(out, uint32(d.Len()))
	}
	for _, d := range splits {
		for _, v := range d.Images {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out
}

// decodeFeatures reads what encodeFeatures wrote into the splits, whose
// labels are set and whose images have f values each (a head-only job's
// f×1×1 features, a partial job's frozen outputs). A file of another size
// is errStaleFeatures.
func decodeFeatures(data []byte, splits []*ml.Data) error {
	header := featureCacheFormat + "\n"
	if !bytes.HasPrefix(data, []byte(header)) {
		return fmt.Errorf("%w: not a feature file", errStaleFeatures)
	}
	r := bytes.NewReader(data[len(header):])
	var f, n uint32
	if err := binary.Read(r, binary.LittleEndian, &f); err != nil {
		return fmt.Errorf("%w: %v", errStaleFeatures, err)
	}
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return fmt.Errorf("%w: %v", errStaleFeatures, err)
	}
	if int(f) != splits[0].Shape.Size() || int(n) != len(splits) {
		return fmt.Errorf("%w: %d features in %d splits, want %d in %d", errStaleFeatures, f, n, splits[0].Shape.Size(), len(splits))
	}
	for _, d := range splits {
		var count uint32
		if err := binary.Read(r, binary.LittleEndian, &count); err != nil || int(count) != d.Len() {
			return fmt.Errorf("%w: a split of %d images, want %d (%v)", errStaleFeatures, count, d.Len(), err)
		}
	}
	raw := make([]byte, 4*int(f))
	for _, d := range splits {
		d.Images = make([]float32, d.Len()*int(f))
		for i := range d.Len() {
			if _, err := io.ReadFull(r, raw); err != nil {
				return fmt.Errorf("%w: %v", errStaleFeatures, err)
			}
			row := d.Images[i*int(f):]
			for j := range int(f) {
				row[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
		}
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: %d bytes too many", errStaleFeatures, r.Len())
	}
	return nil
}

// cachedFeatures fills the splits from the blob store; false when the key
// holds nothing (or nothing that fits, which the job then overwrites).
func (s *Service) cachedFeatures(ctx context.Context, id, key string, splits []*ml.Data) (bool, error) {
	rc, err := s.deps.Blobs.Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading cached features: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return false, fmt.Errorf("reading cached features: %w", err)
	}
	if err := decodeFeatures(data, splits); err != nil {
		s.logf(ctx, id, "ignoring the cached features %s: %v", key, err)
		return false, nil
	}
	return true, nil
}

// cacheFeatures stores the splits' features; a failure only costs the next
// job the backbone pass, so it is logged rather than failing this one.
func (s *Service) cacheFeatures(ctx context.Context, id, key string, splits []*ml.Data) {
	data := encodeFeatures(splits)
	if err := s.deps.Blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		s.deps.Log.Warn("caching backbone features failed", "job", id, "key", key, "err", err)
		s.emit(ctx, id, logEvent("warn", fmt.Sprintf("the features could not be cached (%v); the next head-only job on these images computes them again", reason(err))))
		return
	}
	s.logf(ctx, id, "cached the features (%.1f MiB) for later head-only jobs on these images and base", float64(len(data))/(1<<20))
}
