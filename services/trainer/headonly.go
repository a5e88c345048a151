package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// Head-only training (spec.trainLayers = TRAIN_LAYERS_HEAD): the base
// version's ONNX graph up to its classification layer is a frozen backbone
// that ONNX Runtime runs once per image, at inference speed; the features
// are cached in the blob store (featurecache.go) and a linear head trains
// on them in GoMLX. The registered model is the base graph with the new
// head written in place of the old one.
const (
	// backboneBatch is how many images one ONNX Runtime run of the
	// backbone takes: ResNet-18's images/s are flat from batch 1 to 16 on
	// 2 cores (BENCHMARKS.md), and larger batches only hold more memory.
	backboneBatch = 8
	// headVerifyImages is how many test images check the export: each
	// costs a pass of the whole network, as much as its features did.
	headVerifyImages = 32
)

// headRun is what a head-only job holds besides its features.
type headRun struct {
	bb *ml.Backbone
	ex *ml.FeatureExtractor // opened when the backbone must run
	// verifyImages are the first test images and verifyFeatures their
	// features, for checking the export.
	verifyImages, verifyFeatures *ml.Data
	// trainImages are the training images, kept when augmentation is on.
	trainImages *ml.Data
}

func (h *headRun) close() {
	if h != nil && h.ex != nil {
		h.ex.Close()
	}
}

func headOnly(spec *trainerpb.JobSpec) bool {
	return spec.GetTrainLayers() == trainerpb.TrainLayers_TRAIN_LAYERS_HEAD
}

// backbone downloads a base version's ONNX file and cuts it before its
// classification layer. What cannot be cut is FAILED_PRECONDITION.
func (s *Service) backbone(ctx context.Context, v *registrypb.Version) (*ml.Backbone, error) {
	spec, _, err := importSpec(v)
	if err != nil {
		return nil, err
	}
	data, err := s.downloadArtifact(ctx, v)
	if err != nil {
		return nil, err
	}
	bb, err := ml.NewBackbone(data, spec)
	if errors.Is(err, ml.ErrImport) {
		return nil, status.Errorf(codes.FailedPrecondition, "spec.trainLayers = TRAIN_LAYERS_HEAD needs the classification layer of the base version %s version %d: %v",
			v.GetModel(), v.GetVersion(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("cutting the base version's backbone: %w", err)
	}
	return bb, nil
}

// resolveHeadBase checks a head-only spec against its base version before
// the job is queued: the base's graph must have a classification layer to
// cut at, and ONNX Runtime must load what is left.
func (s *Service) resolveHeadBase(ctx context.Context, spec *trainerpb.JobSpec, v *registrypb.Version) error {
	name := fmt.Sprintf("%s version %d", v.GetModel(), v.GetVersion())
	switch spec.Architecture {
	case "", ml.ImportedArchitecture, v.GetArchitecture():
	default:
		return status.Errorf(codes.InvalidArgument, "spec.architecture = %q, but head-only training keeps the graph of the base version %s (%q) and trains a new head on it: leave spec.architecture empty",
			spec.Architecture, name, v.GetArchitecture())
	}
	spec.Architecture = ml.ImportedArchitecture
	in := v.GetInputSpec()
	if in.GetHeight() != in.GetWidth() {
		return status.Errorf(codes.FailedPrecondition, "spec.baseVersion: %s takes %dx%d images; training takes square images only", name, in.GetWidth(), in.GetHeight())
	}
	bb, err := s.backbone(ctx, v)
	if err != nil {
		return err
	}
	rt, err := onnxrt.Load(s.deps.ONNXRuntime)
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "spec.trainLayers = TRAIN_LAYERS_HEAD runs the base's backbone in ONNX Runtime, which this trainer cannot load: %v", err)
	}
	if _, err := rt.Inspect(bb.Graph()); err != nil {
		return status.Errorf(codes.FailedPrecondition, "spec.baseVersion: ONNX Runtime cannot run %s cut before its classification layer %s: %v", name, bb.Head, err)
	}
	return nil
}

// rawImage is one snapshot image as read, before decoding.
type rawImage struct {
	id, file string
	label    int32
	content  []byte
}

// readSplit reads one split of the job's snapshot, contents included.
func (s *Service) readSplit(ctx context.Context, spec *trainerpb.JobSpec, split datasetpb.Split, index map[string]int32) ([]rawImage, error) {
	stream, err := s.deps.Datasets.ReadSnapshot(ctx, &datasetpb.ReadSnapshotRequest{
		Dataset: spec.Dataset, Version: spec.SnapshotVersion, Split: split, IncludeContent: true,
	})
	if err != nil {
		return nil, downstream("Dataset.ReadSnapshot", err)
	}
	var out []rawImage
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, downstream("Dataset.ReadSnapshot", err)
		}
		img := msg.GetImage()
		label, ok := index[img.GetLabel()]
		if !ok {
			return nil, fmt.Errorf("image %s has label %q, which the snapshot's counts do not list", img.GetId(), img.GetLabel())
		}
		out = append(out, rawImage{id: img.GetId(), file: img.GetFileName(), label: label, content: msg.GetContent()})
	}
}

// decode decodes and preprocesses images (all, or the first n) into a Data
// of NCHW images in [0, 1].
func decode(images []rawImage, n int, shape ml.InputShape, pre imaging.Spec) (*ml.Data, error) {
	n = min(n, len(images))
	d := &ml.Data{Shape: shape, Images: make([]float32, n*shape.Size()), Labels: make([]int32, n)}
	for i, im := range images[:n] {
		decoded, _, err := imaging.DecodeFor(im.content, pre, imaging.Limits{})
		if err != nil {
			return nil, fmt.Errorf("image %s (%s): %w", im.id, im.file, err)
		}
		if err := imaging.Preprocess(decoded, pre, d.Image(i)); err != nil {
			return nil, fmt.Errorf("image %s (%s): %w", im.id, im.file, err)
		}
		d.Labels[i] = im.label
	}
	return d, nil
}

// loadFeatures reads the snapshot and gives the job its features (a
// partial job's frozen part's outputs): from the cache, or by decoding
// every image and running the backbone on it. Without a validation split,
// a stratified, seeded share of the train split validates, as in load. It
// keeps the images the job still needs: the first test images, and every
// training image when augmenting.
func (r *jobRun) loadFeatures(ctx context.Context) error {
	s, spec := r.s, r.spec
	snap, err := s.deps.Datasets.GetSnapshot(ctx, &datasetpb.GetSnapshotRequest{Dataset: spec.Dataset, Version: spec.SnapshotVersion})
	if err != nil {
		return downstream("Dataset.GetSnapshot", err)
	}
	labels, err := snapshotLabels(snap.GetSnapshot())
	if err != nil {
		return err
	}
	index := make(map[string]int32, len(labels))
	for i, l := range labels {
		index[l] = int32(i)
	}
	bb, err := r.frozenPart(ctx, labels)
	if err != nil {
		return err
	}
	r.head = &headRun{bb: bb}
	key := newFeatureKey(bb, r.pre)
	var raw [3][]rawImage
	for i, split := range []datasetpb.Split{datasetpb.Split_SPLIT_TRAIN, datasetpb.Split_SPLIT_VALIDATION, datasetpb.Split_SPLIT_TEST} {
		if raw[i], err = s.readSplit(ctx, spec, split, index); err != nil {
			return err
		}
		key.split(raw[i])
	}
	augment := augmentation(spec.Augmentation).Active()
	feats := make([]*ml.Data, 3)
	for i := range feats {
		feats[i] = &ml.Data{Shape: bb.FeatureShape(), Labels: make([]int32, len(raw[i]))}
		for j, im := range raw[i] {
			feats[i].Labels[j] = im.label
		}
	}
	hit, err := s.cachedFeatures(ctx, r.id, key.blobKey(), feats)
	if err != nil {
		return err
	}
	total := len(raw[0]) + len(raw[1]) + len(raw[2])
	if hit {
		r.logf(ctx, "the backbone's features of the %d images are cached: the backbone does not run", total)
		if r.head.verifyImages, err = decode(raw[2], headVerifyImages, r.shape, r.pre); err != nil {
			return err
		}
		if augment {
			if r.head.trainImages, err = decode(raw[0], len(raw[0]), r.shape, r.pre); err != nil {
				return err
			}
		}
	} else {
		if err := r.computeFeatures(ctx, raw, feats, augment); err != nil {
			return err
		}
		s.cacheFeatures(ctx, r.id, key.blobKey(), feats)
	}
	r.head.verifyFeatures = feats[2].Subset(seq(r.head.verifyImages.Len()))
	train, val, test := feats[0], feats[1], feats[2]
	if val.Len() == 0 {
		trainIdx, valIdx, err := ml.StratifiedSplit(train.Labels, spec.ValidationFraction, spec.Seed)
		if err != nil {
			return status.Errorf(codes.FailedPrecondition, "splitting the train split for validation: %v", err)
		}
		train, val = train.Subset(trainIdx), train.Subset(valIdx)
		if augment {
			r.head.trainImages = r.head.trainImages.Subset(trainIdx)
		}
	}
	if train.Len() < int(spec.BatchSize) {
		return status.Errorf(codes.FailedPrecondition, "%d training images are fewer than one batch of %d", train.Len(), spec.BatchSize)
	}
	if augment {
		r.logf(ctx, "augmentation %s: the backbone runs again on the %d augmented training images every epoch (%d passes); validation and test use the cached features",
			augmentationText(spec.Augmentation), train.Len(), spec.Epochs)
		if err := r.openExtractor(); err != nil {
			return err
		}
	}
	r.data = &jobData{labels: labels, train: train, val: val, test: test}
	return nil
}

// openExtractor opens the backbone in ONNX Runtime, once.
func (r *jobRun) openExtractor() error {
	if r.head.ex != nil {
		return nil
	}
	ex, err := r.head.bb.Extractor(r.s.deps.ONNXRuntime, backboneBatch, onnxrt.SessionOptions{})
	if err != nil {
		return err
	}
	r.head.ex = ex
	return nil
}

// computeFeatures decodes the splits' images a batch at a time (see
// decodeAhead) and runs the backbone on them, filling feats; it keeps the
// images loadFeatures keeps.
func (r *jobRun) computeFeatures(ctx context.Context, raw [3][]rawImage, feats []*ml.Data, augment bool) error {
	if err := r.openExtractor(); err != nil {
		return err
	}
	total := len(raw[0]) + len(raw[1]) + len(raw[2])
	r.logf(ctx, "running the backbone in ONNX Runtime on %d images (%d train, %d validation, %d test)", total, len(raw[0]), len(raw[1]), len(raw[2]))
	start, done, reported := time.Now(), 0, 0
	keep := [3]int{0, 0, headVerifyImages}
	if augment {
		keep[0] = len(raw[0])
	}
	kept := make([]*ml.Data, 3)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the decoding goroutine on an early return
	for i := range raw {
		f := feats[i]
		f.Images = make([]float32, 0, len(raw[i])*f.Shape.Size())
		kept[i] = &ml.Data{Shape: r.shape}
		b := 0
		for d := range r.decodeAhead(dctx, raw[i]) {
			if d.err != nil {
				return d.err
			}
			images := d.images
			out, err := r.head.ex.Extract(ctx, images, nil, nil)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return err
			}
			f.Images = append(f.Images, out.Images...)
			if n := min(images.Len(), keep[i]-b); n > 0 {
				kept[i].Images = append(kept[i].Images, images.Images[:n*r.shape.Size()]...)
				kept[i].Labels = append(kept[i].Labels, images.Labels[:n]...)
			}
			done += images.Len()
			// A line at each quarter: the pass can take a while.
			if q := 4 * done / total; q > reported && done < total {
				reported = q
				r.logf(ctx, "backbone: %d of %d images (%.1f images/s)", done, total, float64(done)/time.Since(start).Seconds())
			}
			b += images.Len()
		}
		if b != len(raw[i]) { // decoding stopped with ctx
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("decoded %d of %d images", b, len(raw[i]))
		}
	}
	took := time.Since(start)
	r.logf(ctx, "backbone features of %d images in %.1f s (%.1f images/s)", total, took.Seconds(), float64(total)/took.Seconds())
	r.head.verifyImages = kept[2]
	if augment {
		r.head.trainImages = kept[0]
	}
	return nil
}

// decoded is one batch of decodeAhead's.
type decoded struct {
	images *ml.Data
	err    error
}

// decodeAhead decodes images a batch at a time in a goroutine of its own,
// one batch ahead of the backbone, so that decoding (a few milliseconds an
// image, on one core) overlaps ONNX Runtime's runs rather than adding to
// them. The channel ends after the last batch or an error; the goroutine
// ends with ctx.
func (r *jobRun) decodeAhead(ctx context.Context, images []rawImage) <-chan decoded {
	out := make(chan decoded, 1)
	go func() {
		defer close(out)
		err := r.s.deps.Panics.Call("trainer image decoding", func() error {
			for b := 0; b < len(images); b += backboneBatch {
				d, err := decode(images[b:], backboneBatch, r.shape, r.pre)
				if err != nil {
					return err
				}
				select {
				case out <- decoded{images: d}:
				case <-ctx.Done():
					return nil
				}
			}
			return nil
		})
		if err != nil {
			select {
			case out <- decoded{err: err}:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// trainHead trains the new head on the features; r.res holds the best
// epoch's head.
func (r *jobRun) trainHead(ctx context.Context) error {
	var aug *ml.HeadAugmentation
	if r.head.trainImages != nil {
		aug = &ml.HeadAugmentation{Images: r.head.trainImages, Extractor: r.head.ex}
	}
	res, err := ml.TrainHead(ctx, r.cfg, r.data.train, r.data.val, aug)
	return r.trained(ctx, "training the head", res, err)
}

// exportHead writes the trained head into the base graph and checks the
// result in ONNX Runtime: on the first test images its predictions must
// equal the head's on their cached backbone features.
func (r *jobRun) exportHead(ctx context.Context) ([]byte, error) {
	bb, k := r.head.bb, len(r.data.labels)
	onnxModel, err := bb.ExportHead(r.res.Model)
	if err != nil {
		return nil, fmt.Errorf("exporting ONNX: %w", err)
	}
	want, err := r.res.Model.Probabilities(r.head.verifyFeatures.Images)
	if err != nil {
		return nil, fmt.Errorf("the head's probabilities for verification: %w", err)
	}
	got, err := bb.RunONNX(r.s.deps.ONNXRuntime, onnxModel, k, verifyBatch, r.head.verifyImages.Images)
	if err != nil {
		return nil, fmt.Errorf("running the exported model: %w", err)
	}
	d, err := verifyExport(want, got, k, "the backbone's features × the new head")
	if err != nil {
		return nil, err
	}
	r.logf(ctx, "exported ONNX (%d bytes): the base graph with the new head; on %d test images ONNX Runtime's predictions equal the cached features × the head (max |Δp| = %.2g)",
		len(onnxModel), d.Images, d.MaxAbsDiff)
	return onnxModel, nil
}
