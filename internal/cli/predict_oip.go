package cli

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/imaging"
)

// predictOIP answers req as Predict would, through the Open Inference
// Protocol: the version (and its input spec and labels) comes from the
// Registry, the images are decoded and preprocessed here with the same
// package the server uses, and ModelInfer gets one FP32 tensor of them.
func predictOIP(ctx context.Context, oip oippb.GRPCInferenceServiceClient, reg registrypb.RegistryServiceClient,
	req *inferencepb.PredictRequest) (*inferencepb.PredictResponse, error) {
	model := req.GetModel()
	if model == "" {
		return nil, usagef("--protocol=oip needs --model (the server's default model is not known here)")
	}
	ref := &registrypb.GetVersionRequest{Model: model, Version: req.GetVersion(), Alias: req.GetAlias()}
	if ref.Version == 0 && ref.Alias == "" {
		ref.Alias = "production"
	}
	vr, err := reg.GetVersion(ctx, ref)
	if err != nil {
		return nil, err
	}
	v := vr.GetVersion()
	spec, err := imaging.SpecFromProto(v.GetInputSpec())
	if err != nil {
		return nil, fmt.Errorf("predict: version %d of %q: %w", v.GetVersion(), model, err)
	}
	meta, err := oip.ModelMetadata(ctx, &oippb.ModelMetadataRequest{Name: model, Version: strconv.FormatInt(v.GetVersion(), 10)})
	if err != nil {
		return nil, err
	}
	if len(meta.GetInputs()) != 1 {
		return nil, fmt.Errorf("predict: model %q has %d inputs; want 1", model, len(meta.GetInputs()))
	}
	start := time.Now()
	n := len(req.GetImages())
	pixels := make([]float32, n*spec.Size())
	for i, data := range req.GetImages() {
		img, _, err := imaging.DecodeFor(data, spec, imaging.Limits{})
		if err != nil {
			return nil, fmt.Errorf("predict: image %d: %w", i+1, err)
		}
		if err := imaging.Preprocess(img, spec, pixels[i*spec.Size():(i+1)*spec.Size()]); err != nil {
			return nil, fmt.Errorf("predict: image %d: %w", i+1, err)
		}
	}
	preprocess := time.Since(start)
	shape := []int64{int64(n), int64(spec.Channels), int64(spec.Height), int64(spec.Width)}
	if spec.NHWC {
		shape = []int64{int64(n), int64(spec.Height), int64(spec.Width), int64(spec.Channels)}
	}
	raw := make([]byte, 4*len(pixels))
	for i, p := range pixels {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(p))
	}
	in := meta.GetInputs()[0]
	out, err := oip.ModelInfer(ctx, &oippb.ModelInferRequest{
		ModelName: model, ModelVersion: strconv.FormatInt(v.GetVersion(), 10),
		Inputs:           []*oippb.ModelInferRequest_InferInputTensor{{Name: in.GetName(), Datatype: "FP32", Shape: shape}},
		RawInputContents: [][]byte{raw},
	})
	if err != nil {
		return nil, err
	}
	probs, err := oipProbabilities(out)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	labels := v.GetLabels()
	if len(probs) != n*len(labels) {
		return nil, fmt.Errorf("predict: ModelInfer returned %d values for %d images of %d labels", len(probs), n, len(labels))
	}
	resp := &inferencepb.PredictResponse{Model: model, Version: v.GetVersion(),
		Timings: &inferencepb.Timings{BatchSize: int32(n), Preprocess: durationpb.New(preprocess), Total: durationpb.New(time.Since(start))}}
	k := min(int(req.GetTopK()), len(labels))
	for i := range n {
		p := probs[i*len(labels) : (i+1)*len(labels)]
		order := make([]int, len(p))
		for j := range order {
			order[j] = j
		}
		slices.SortStableFunc(order, func(a, b int) int { return -cmpFloat(p[a], p[b]) })
		r := &inferencepb.Classification{}
		for _, j := range order[:k] {
			r.Labels = append(r.Labels, &inferencepb.LabelScore{Label: labels[j], Index: int32(j), Probability: p[j]})
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// oipProbabilities reads ModelInfer's one FP32 output, raw or typed.
func oipProbabilities(out *oippb.ModelInferResponse) ([]float32, error) {
	if len(out.GetOutputs()) != 1 || out.GetOutputs()[0].GetDatatype() != "FP32" {
		return nil, fmt.Errorf("ModelInfer returned %d outputs; want one FP32 output", len(out.GetOutputs()))
	}
	if len(out.GetRawOutputContents()) == 0 {
		return out.GetOutputs()[0].GetContents().GetFp32Contents(), nil
	}
	b := out.GetRawOutputContents()[0]
	probs := make([]float32, len(b)/4)
	for i := range probs {
		probs[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return probs, nil
}

func cmpFloat(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
