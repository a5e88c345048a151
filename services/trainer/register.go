package trainer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
)

const (
	// uploadChunk is the size of CreateVersion's chunks.
	uploadChunk     = 1 << 20
	productionAlias = "production"
)

// versionSpec describes the trained model to the Registry. A model
// fine-tuned from an imported base keeps the base's input spec, so that it
// is served exactly as the base is, and its architecture name when it has
// one. Either way it records how training decoded JPEGs.
func (r *jobRun) versionSpec() *registrypb.VersionSpec {
	spec, id := r.spec, r.id
	sum := sha256.Sum256(r.onnx)
	in := &registrypb.InputSpec{
		Channels: spec.Channels, Height: spec.ImageSize, Width: spec.ImageSize,
		ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW,
		InputName: ml.ONNXInput, OutputName: ml.ONNXOutput, OutputIsProbabilities: true,
	}
	arch := spec.Architecture
	if imp, head := r.cfg.Import, r.head; imp != nil || head != nil {
		in = proto.Clone(r.base.GetInputSpec()).(*registrypb.InputSpec)
		if imp != nil {
			in.OutputIsProbabilities = imp.OutputIsProbabilities()
		} else {
			in.OutputIsProbabilities = head.bb.OutputIsProbabilities()
		}
		if a := r.base.GetArchitecture(); a != "" {
			arch = a
		}
	}
	in.JpegDecode = r.pre.JPEGDecode.Proto()
	return &registrypb.VersionSpec{
		Model:     spec.Model,
		Labels:    r.data.labels,
		InputSpec: in,
		Metrics:   r.metrics,
		HyperParameters: map[string]string{
			"architecture":            arch,
			"image_size":              strconv.Itoa(int(spec.ImageSize)),
			"channels":                strconv.Itoa(int(spec.Channels)),
			"epochs":                  strconv.Itoa(int(spec.Epochs)),
			"epochs_trained":          strconv.Itoa(len(r.res.Epochs)),
			"batch_size":              strconv.Itoa(int(spec.BatchSize)),
			"learning_rate":           strconv.FormatFloat(spec.LearningRate, 'g', -1, 64),
			"optimizer":               string(optimizerNames[spec.Optimizer]),
			"schedule":                string(scheduleNames[spec.Schedule]),
			"weight_decay":            strconv.FormatFloat(spec.WeightDecay, 'g', -1, 64),
			"augmentation":            augmentationText(spec.Augmentation),
			"early_stopping_patience": strconv.Itoa(int(spec.EarlyStoppingPatience)),
			"validation_fraction":     strconv.FormatFloat(spec.ValidationFraction, 'g', -1, 64),
			"seed":                    strconv.FormatInt(spec.Seed, 10),
			"backend":                 r.backend,
			"train_layers":            trainLayersText(spec),
			"backbone_lr_scale":       strconv.FormatFloat(spec.BackboneLearningRateScale, 'g', -1, 64),
			"warmup_epochs":           strconv.Itoa(int(spec.WarmupEpochs)),
			"batch_norm":              batchNormText(spec.BatchNorm),
			"best_epoch":              strconv.Itoa(r.res.BestEpoch),
		},

		Lineage:           lineage(id, spec),
		Architecture:      arch,
		Creator:           "trainer",
		Description:       fmt.Sprintf("trained by job %s on %s snapshot %d", id, spec.Dataset, spec.SnapshotVersion),
		ArtifactSizeBytes: int64(len(r.onnx)),
		ArtifactSha256:    hex.EncodeToString(sum[:]),
	}
}

// createVersion uploads a version, its spec and then its ONNX file in
// chunks, to the Registry.
func (s *Service) createVersion(ctx context.Context, vs *registrypb.VersionSpec, onnxModel []byte) (*registrypb.VersionRef, error) {
	stream, err := s.deps.Registry.CreateVersion(ctx)
	if err != nil {
		return nil, downstream("Registry.CreateVersion", err)
	}
	if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: vs}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, downstream("Registry.CreateVersion", err)
	}
	for off := 0; off < len(onnxModel); off += uploadChunk {
		chunk := onnxModel[off:min(off+uploadChunk, len(onnxModel))]
		if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: chunk}}); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server answered early; CloseAndRecv has its reason
			}
			return nil, downstream("Registry.CreateVersion", err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, downstream("Registry.CreateVersion", err)
	}
	v := resp.GetVersion()
	return &registrypb.VersionRef{Model: v.GetModel(), Version: v.GetVersion()}, nil
}

// promote applies the job's promotion policy to the new version.
func (s *Service) promote(ctx context.Context, id string, policy trainerpb.PromotionPolicy, ref *registrypb.VersionRef, accuracy float64) error {
	switch policy {
	case trainerpb.PromotionPolicy_PROMOTION_POLICY_ALWAYS:
	case trainerpb.PromotionPolicy_PROMOTION_POLICY_IF_BETTER:
		m, err := s.deps.Registry.GetModel(ctx, &registrypb.GetModelRequest{Name: ref.Model})
		if err != nil {
			return downstream("Registry.GetModel", err)
		}
		if cur, ok := m.GetModel().GetAliases()[productionAlias]; ok && cur != ref.Version {
			v, err := s.deps.Registry.GetVersion(ctx, &registrypb.GetVersionRequest{Model: ref.Model, Version: cur})
			if err != nil {
				return downstream("Registry.GetVersion", err)
			}
			if have := v.GetVersion().GetMetrics().GetTestAccuracy(); accuracy <= have {
				s.logf(ctx, id, "not promoting: test accuracy %.4f does not beat production (version %d) at %.4f", accuracy, cur, have)
				return nil
			}
		}
	default:
		return nil
	}
	if _, err := s.deps.Registry.SetAlias(ctx, &registrypb.SetAliasRequest{Model: ref.Model, Alias: productionAlias, Version: ref.Version}); err != nil {
		return downstream("Registry.SetAlias", err)
	}
	s.logf(ctx, id, "promoted %s version %d to %s", ref.Model, ref.Version, productionAlias)
	return nil
}

// lineage records what a version was made from, including the version a
// fine-tuning job started from.
func lineage(id string, spec *trainerpb.JobSpec) *registrypb.Lineage {
	return &registrypb.Lineage{Dataset: spec.Dataset, SnapshotVersion: spec.SnapshotVersion, JobId: id, Parent: spec.BaseVersion}
}

// trainLayersText names the layers a job trained.
func trainLayersText(spec *trainerpb.JobSpec) string {
	switch spec.TrainLayers {
	case trainerpb.TrainLayers_TRAIN_LAYERS_HEAD:
		return "head"
	case trainerpb.TrainLayers_TRAIN_LAYERS_LAST_STAGES:
		return fmt.Sprintf("last %d stage(s)", spec.UnfrozenStages)
	}
	return "all"
}

// batchNormText names a normalised spec's batch-norm choice.
func batchNormText(b trainerpb.BatchNorm) string {
	if b == trainerpb.BatchNorm_BATCH_NORM_FROZEN {
		return "frozen"
	}
	return "update"
}

// augmentationText describes an augmentation for the hyper-parameters.
func augmentationText(a *trainerpb.Augmentation) string {
	var parts []string
	if a.GetHorizontalFlip() {
		parts = append(parts, "hflip")
	}
	if a.GetVerticalFlip() {
		parts = append(parts, "vflip")
	}
	if v := a.GetCropMinScale(); v > 0 && v < 1 {
		parts = append(parts, "crop="+strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	if v := a.GetColorJitter(); v > 0 {
		parts = append(parts, "jitter="+strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}
