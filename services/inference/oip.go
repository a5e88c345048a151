package inference

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
)

// oipPlatform names what runs the models, as the Open Inference Protocol
// lists platforms ("onnx_onnxv1 : A ONNX model encoded for ONNX Runtime").
const oipPlatform = "onnx_onnxv1"

// oipVersion parses an OIP version string: a version number, or empty (0)
// for the production alias.
func oipVersion(version string) (int64, error) {
	if version == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(version, 10, 64)
	if err != nil || n <= 0 {
		return 0, status.Errorf(codes.InvalidArgument, "version %q: must be a positive integer", version)
	}
	return n, nil
}

// oipRef checks an OIP model name and version string and returns the
// version number (0: the production alias).
func oipRef(name, version string) (int64, error) {
	if name == "" {
		return 0, status.Error(codes.InvalidArgument, "model name is required")
	}
	return oipVersion(version)
}

// ModelMetadata describes the served version's input and output tensors.
func (h *oipHandler) ModelMetadata(ctx context.Context, req *oippb.ModelMetadataRequest) (*oippb.ModelMetadataResponse, error) {
	v, err := oipRef(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	m, err := h.svc.resolve(ctx, req.GetName(), "", v)
	if err != nil {
		return nil, err
	}
	return &oippb.ModelMetadataResponse{
		Name: m.name, Versions: []string{m.verName}, Platform: oipPlatform,
		Inputs:  []*oippb.ModelMetadataResponse_TensorMetadata{{Name: m.cls.Input, Datatype: "FP32", Shape: m.cls.Image.Shape(-1)}},
		Outputs: []*oippb.ModelMetadataResponse_TensorMetadata{{Name: m.cls.Output, Datatype: "FP32", Shape: []int64{-1, int64(m.cls.Classes)}}},
	}, nil
}

// ModelInfer runs a batch through the same batcher as Predict. The input
// is either a preprocessed FP32 tensor or, by Shoal's encoded-images
// extension, a BYTES tensor of JPEG/PNG files, which is decoded and
// preprocessed exactly as Predict does it; either may come as typed
// contents or as raw bytes. The output holds probabilities (softmax
// applied when the graph outputs logits), so it equals Predict's on the
// same images; an output requested with the classification parameter
// holds the top classes instead, as Triton's classification extension
// writes them. The outputs come back raw when the input came raw.
func (h *oipHandler) ModelInfer(ctx context.Context, req *oippb.ModelInferRequest) (resp *oippb.ModelInferResponse, err error) {
	s := h.svc
	defer func() {
		v, _ := strconv.ParseInt(resp.GetModelVersion(), 10, 64)
		s.met.request(req.GetModelName(), v, err)
	}()
	v, err := oipRef(req.GetModelName(), req.GetModelVersion())
	if err != nil {
		return nil, err
	}
	if len(req.GetInputs()) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "%d input tensors; the model takes exactly 1", len(req.GetInputs()))
	}
	var (
		raw     bool
		outputs []oipOutput
	)
	r, err := s.infer(ctx, req.GetModelName(), "", v, oipBatch(req), func(m *model) (images [][]float32, err error) {
		if outputs, err = m.oipOutputs(req); err != nil {
			return nil, err
		}
		if req.GetInputs()[0].GetDatatype() != oipEncodedDatatype {
			images, raw, err = m.oipImages(req, s.cfg.QueueSize)
			return images, err
		}
		var encoded [][]byte
		if encoded, raw, err = m.oipEncoded(req, s.cfg.QueueSize); err != nil {
			return nil, err
		}
		pre := time.Now()
		if images, err = s.preprocess(encoded, m.spec); err == nil {
			s.met.preprocess.WithLabelValues(m.name, m.verName).Observe(time.Since(pre).Seconds())
		}
		return images, err
	})
	if err != nil {
		return nil, err
	}
	m := r.m
	probs := make([][]float32, len(r.scores))
	for i, sc := range r.scores {
		if !m.probs {
			sc = softmax(sc)
		}
		probs[i] = sc
	}
	resp = &oippb.ModelInferResponse{ModelName: m.name, ModelVersion: m.verName, Id: req.GetId()}
	for _, o := range outputs {
		t, contents := m.oipOutput(o, probs)
		if raw {
			resp.RawOutputContents = append(resp.RawOutputContents, contents.raw())
		} else {
			t.Contents = contents.typed()
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	return resp, nil
}

// oipBatch is the number of images a request's shape declares, for
// admission (at least 1; the shape itself is checked later).
func oipBatch(req *oippb.ModelInferRequest) int {
	if shape := req.GetInputs()[0].GetShape(); len(shape) > 0 && shape[0] > 1 {
		return int(min(shape[0], math.MaxInt32))
	}
	return 1
}

// oipImages checks the input tensor against the model and splits it into
// images; raw says it came as raw_input_contents.
func (m *model) oipImages(req *oippb.ModelInferRequest, maxImages int) (images [][]float32, raw bool, err error) {
	in := req.GetInputs()[0]
	if in.GetName() != m.cls.Input {
		return nil, false, status.Errorf(codes.InvalidArgument, "input %q: the model's input is %q", in.GetName(), m.cls.Input)
	}
	if in.GetDatatype() != "FP32" {
		return nil, false, status.Errorf(codes.InvalidArgument,
			"input %q has datatype %q; want FP32 (preprocessed pixels) or BYTES (encoded JPEG/PNG images)", in.GetName(), in.GetDatatype())
	}
	shape := in.GetShape()
	want := m.cls.Image.Shape(-1)
	ok := len(shape) == len(want) && shape[0] >= 1
	for i := 1; ok && i < len(want); i++ {
		ok = shape[i] == want[i]
	}
	if !ok {
		return nil, false, status.Errorf(codes.InvalidArgument, "input %q has shape %v; want %v with a batch of at least 1", in.GetName(), shape, want)
	}
	n := shape[0]
	if n > int64(maxImages) {
		return nil, false, status.Errorf(codes.InvalidArgument, "batch of %d; at most %d (--inference.queue-size)", n, maxImages)
	}
	size := m.cls.Image.Size()
	total := int(n) * size
	var vals []float32
	typed := in.GetContents().GetFp32Contents()
	switch {
	case len(req.GetRawInputContents()) > 0 && in.GetContents() != nil:
		return nil, false, status.Error(codes.InvalidArgument, "give the input as contents or as raw_input_contents, not both")
	case len(req.GetRawInputContents()) > 0:
		if len(req.GetRawInputContents()) != 1 {
			return nil, false, status.Errorf(codes.InvalidArgument, "%d raw_input_contents for 1 input", len(req.GetRawInputContents()))
		}
		b := req.GetRawInputContents()[0]
		if len(b) != 4*total {
			return nil, false, status.Errorf(codes.InvalidArgument, "raw_input_contents holds %d bytes; shape %v of FP32 needs %d", len(b), shape, 4*total)
		}
		vals = make([]float32, total)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		raw = true
	default:
		if len(typed) != total {
			return nil, false, status.Errorf(codes.InvalidArgument, "input %q has %d fp32_contents; shape %v needs %d", in.GetName(), len(typed), shape, total)
		}
		vals = typed
	}
	images = make([][]float32, n)
	for i := range images {
		images[i] = vals[i*size : (i+1)*size : (i+1)*size]
	}
	return images, raw, nil
}
