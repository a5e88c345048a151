package ml

import (
	"context"
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/shoalml/shoal/internal/onnxrt"
)

// HeadArchitecture names the network of head-only training: one linear
// layer on a backbone's features (standardised per feature with the
// training features' mean and deviation, which ExportHead folds into the
// layer's weights).
const HeadArchitecture = "linear-head"

func headArch() Architecture {
	return Architecture{Name: HeadArchitecture, Description: "a linear classification layer on a frozen backbone's features",
		Build: func(scope *model.Scope, x *Node, numClasses int) *Node {
			n := x.Shape().Dimensions[0]
			return layers.Dense(scope.In("head"), Reshape(x, n, -1), true, numClasses)
		}}
}

// HeadAugmentation is what head-only training with augmentation needs:
// every epoch the training images, augmented, go through the backbone
// again, so the head never sees the same features twice.
type HeadAugmentation struct {
	// Images are the training images, in the order of the training
	// features, as the extractor takes them.
	Images    *Data
	Extractor *FeatureExtractor
	// OnEpochFeatures, if set, is told how many images of an epoch's
	// augmented pass are done, after every batch.
	OnEpochFeatures func(epoch, done, total int)
}

// TrainHead trains a new classification layer on backbone features: train
// and val hold one feature vector per image (shape Backbone.FeatureShape),
// cfg the usual hyper-parameters (Architecture, Base, NewHead and Import
// are ignored). With cfg.Augment active, aug supplies the images whose
// augmented features each epoch trains on instead of train's (train's
// labels and order still apply). The result's model is a head model for
// Backbone.ExportHead.
func TrainHead(ctx context.Context, cfg Config, train, val *Data, aug *HeadAugmentation) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := train.Validate(cfg.NumClasses); err != nil {
		return nil, fmt.Errorf("training features: %w", err)
	}
	if train.Shape.Height != 1 || train.Shape.Width != 1 {
		return nil, fmt.Errorf("training features have shape %s, want Fx1x1", train.Shape)
	}
	if val != nil {
		if err := val.Validate(cfg.NumClasses); err != nil {
			return nil, fmt.Errorf("validation features: %w", err)
		}
		if val.Shape != train.Shape {
			return nil, fmt.Errorf("validation features are %s, training features %s", val.Shape, train.Shape)
		}
	}
	if train.Len() < cfg.BatchSize {
		return nil, fmt.Errorf("%d training images is fewer than one batch of %d", train.Len(), cfg.BatchSize)
	}
	epochData, err := augmentedFeatures(&cfg, train, aug)
	if err != nil {
		return nil, err
	}
	backend, err := NewBackend(cfg.Backend)
	if err != nil {
		return nil, err
	}
	store := model.NewStore()
	store.SetParam(model.ParamInitialSeed, cfg.Seed)
	mean, std := ChannelStats(train)
	m := &Model{Arch: headArch(), Shape: train.Shape, NumClasses: cfg.NumClasses, backend: backend, store: store,
		mean: mean, std: std, ownsBackend: true}
	res, err := fitEpochs(ctx, cfg, m, train, val, epochData)
	if err != nil {
		m.Close()
		return nil, err
	}
	return res, nil
}

// augmentedFeatures is what training on a frozen part's outputs needs with
// cfg.Augment active: each epoch, aug's training images (train's, in
// order), augmented, go through the frozen part again. It turns
// cfg.Augment off, since the images, not the features, are augmented.
// Without augmentation it returns nil: the cached features serve.
func augmentedFeatures(cfg *Config, train *Data, aug *HeadAugmentation) (func(ctx context.Context, epoch int) (*Data, error), error) {
	if !cfg.Augment.Active() {
		return nil, nil
	}
	if aug == nil || aug.Images == nil || aug.Extractor == nil || aug.Images.Len() != train.Len() {
		return nil, fmt.Errorf("augmentation needs the %d training images and a feature extractor", train.Len())
	}
	a, shape, seed := cfg.Augment, aug.Images.Shape, cfg.Seed
	scratch := make([]float32, shape.Size())
	cfg.Augment = Augmentation{}
	return func(ctx context.Context, epoch int) (*Data, error) {
		var done func(int)
		if aug.OnEpochFeatures != nil {
			done = func(n int) { aug.OnEpochFeatures(epoch, n, aug.Images.Len()) }
		}
		d, err := aug.Extractor.Extract(ctx, aug.Images, func(batch []float32, first int) {
			a.apply(batch, shape, augmentRNG(seed, epoch, first), scratch)
		}, done)
		if err != nil {
			return nil, fmt.Errorf("features of epoch %d's augmented images: %w", epoch, err)
		}
		d.Labels = train.Labels
		return d, nil
	}, nil
}

// headWeights returns a head model's layer with its feature normalisation
// folded in: logits = f·w + b for raw features f, w [features, classes]
// row-major. With z = (f - mean) / std, z·W + c = f·(W / std) + (c -
// (mean / std)·W).
func (m *Model) headWeights() (w, b []float32, err error) {
	if m.Arch.Name != HeadArchitecture {
		return nil, nil, fmt.Errorf("a %s model is not a head", m.Arch.Name)
	}
	read := func(path string) ([]float32, error) {
		v := m.store.GetVariable(path)
		if v == nil {
			return nil, fmt.Errorf("the head has no variable %s", path)
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		return tensors.CopyFlatData[float32](t)
	}
	if w, err = read(headScope + "dense/weights"); err != nil {
		return nil, nil, err
	}
	if b, err = read(headScope + "dense/biases"); err != nil {
		return nil, nil, err
	}
	f, k := m.Shape.Channels, m.NumClasses
	if len(w) != f*k || len(b) != k || len(m.mean) != f || len(m.std) != f {
		return nil, nil, fmt.Errorf("the head has %d weights, %d biases and %d/%d normalisation constants for %d features and %d classes",
			len(w), len(b), len(m.mean), len(m.std), f, k)
	}
	folded := make([]float32, f*k)
	bias := make([]float64, k)
	for j := range k {
		bias[j] = float64(b[j])
	}
	for i := range f {
		for j := range k {
			wij := float64(w[i*k+j]) / float64(m.std[i])
			folded[i*k+j] = float32(wij)
			bias[j] -= float64(m.mean[i]) * wij
		}
	}
	for j := range k {
		b[j] = float32(bias[j])
	}
	return folded, b, nil
}

// RunONNX runs a model ExportHead wrote with ONNX Runtime on NCHW images in
// [0, 1], as serving does (the base's normalisation and layout, softmax
// applied to an output of logits), and returns [n*k] probabilities for its
// k classes.
func (b *Backbone) RunONNX(rt onnxrt.Config, onnxModel []byte, k, batch int, images []float32) ([]float32, error) {
	imp := &Imported{Spec: b.Spec, NumClasses: k, probabilities: b.probabilities}
	return imp.RunONNX(rt, onnxModel, batch, images)
}
