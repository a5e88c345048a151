package inference

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	"github.com/shoalml/shoal/internal/oip"
)

// The Open Inference Protocol extensions this server supports, as its
// ServerMetadata lists them. binary_tensor_data (Triton's) is the REST
// form's binary framing; classification (Triton's) returns the top
// classes of an output; shoal_encoded_images takes a BYTES input of
// encoded JPEG/PNG images and preprocesses them as Predict does.
var oipExtensions = []string{"binary_tensor_data", "classification", "shoal_encoded_images"}

// oipEncodedDatatype is the input datatype of encoded images.
const oipEncodedDatatype = "BYTES"

// classificationParam is the requested-output parameter of Triton's
// classification extension: how many top classes to return.
const classificationParam = "classification"

// oipEncoded reads the request's BYTES input: one encoded image per
// element, the batch first in the shape ([N] or [N, 1, ...]), given as
// bytes_contents or as one raw_input_contents entry in the protocol's
// BYTES serialization (each element a 4-byte little-endian length, then
// its bytes).
func (m *model) oipEncoded(req *oippb.ModelInferRequest, maxImages int) (images [][]byte, raw bool, err error) {
	in := req.GetInputs()[0]
	if in.GetName() != m.cls.Input {
		return nil, false, status.Errorf(codes.InvalidArgument, "input %q: the model's input is %q", in.GetName(), m.cls.Input)
	}
	shape := in.GetShape()
	ok := len(shape) >= 1 && shape[0] >= 1
	for _, d := range shape[min(1, len(shape)):] {
		ok = ok && d == 1
	}
	if !ok {
		return nil, false, status.Errorf(codes.InvalidArgument,
			"input %q has shape %v; a BYTES input of encoded images has the shape [N] (or [N, 1]), one image per element", in.GetName(), shape)
	}
	n := shape[0]
	if n > int64(maxImages) {
		return nil, false, status.Errorf(codes.InvalidArgument, "batch of %d; at most %d (--inference.queue-size)", n, maxImages)
	}
	switch {
	case len(req.GetRawInputContents()) > 0 && in.GetContents() != nil:
		return nil, false, status.Error(codes.InvalidArgument, "give the input as contents or as raw_input_contents, not both")
	case len(req.GetRawInputContents()) > 0:
		if len(req.GetRawInputContents()) != 1 {
			return nil, false, status.Errorf(codes.InvalidArgument, "%d raw_input_contents for 1 input", len(req.GetRawInputContents()))
		}
		images, err = oip.SplitBytes(req.GetRawInputContents()[0], n)
		if err != nil {
			return nil, false, status.Errorf(codes.InvalidArgument, "input %q: raw_input_contents: %v", in.GetName(), err)
		}
		return images, true, nil
	default:
		images = in.GetContents().GetBytesContents()
		if int64(len(images)) != n {
			return nil, false, status.Errorf(codes.InvalidArgument, "input %q has %d bytes_contents; shape %v needs %d", in.GetName(), len(images), shape, n)
		}
		return images, false, nil
	}
}

// oipOutput is one output a request asked for: the model's output as
// probabilities, or (classes > 0) its top classes.
type oipOutput struct {
	classes int
}

// oipOutputs checks the requested outputs; none asks for the model's one
// output as probabilities.
func (m *model) oipOutputs(req *oippb.ModelInferRequest) ([]oipOutput, error) {
	if len(req.GetOutputs()) == 0 {
		return []oipOutput{{}}, nil
	}
	out := make([]oipOutput, 0, len(req.GetOutputs()))
	for _, o := range req.GetOutputs() {
		if o.GetName() != m.cls.Output {
			return nil, status.Errorf(codes.InvalidArgument, "output %q: the model's only output is %q", o.GetName(), m.cls.Output)
		}
		var want oipOutput
		if p, ok := o.GetParameters()[classificationParam]; ok {
			k, ok := intParam(p)
			if !ok || k < 1 {
				return nil, status.Errorf(codes.InvalidArgument, "output %q: parameter %q must be a positive integer (the number of top classes)", o.GetName(), classificationParam)
			}
			want.classes = int(min(k, int64(m.cls.Classes)))
		}
		out = append(out, want)
	}
	return out, nil
}

// intParam reads an integer parameter, whichever integer field holds it.
func intParam(p *oippb.InferParameter) (int64, bool) {
	switch v := p.GetParameterChoice().(type) {
	case *oippb.InferParameter_Int64Param:
		return v.Int64Param, true
	case *oippb.InferParameter_Uint64Param:
		if v.Uint64Param > math.MaxInt64 {
			return 0, false
		}
		return int64(v.Uint64Param), true
	}
	return 0, false
}

// tensorContents is an output's elements, written typed or raw.
type tensorContents struct {
	fp32  []float32
	bytes [][]byte
}

func (c tensorContents) typed() *oippb.InferTensorContents {
	if c.bytes != nil {
		return &oippb.InferTensorContents{BytesContents: c.bytes}
	}
	return &oippb.InferTensorContents{Fp32Contents: c.fp32}
}

// raw is the protocol's raw form: little-endian FP32, or BYTES elements
// each after its 4-byte little-endian length.
func (c tensorContents) raw() []byte {
	if c.bytes != nil {
		return oip.JoinBytes(c.bytes)
	}
	b := make([]byte, 4*len(c.fp32))
	for i, v := range c.fp32 {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// oipOutput builds one output tensor from each image's probabilities.
func (m *model) oipOutput(o oipOutput, probs [][]float32) (*oippb.ModelInferResponse_InferOutputTensor, tensorContents) {
	n := int64(len(probs))
	if o.classes == 0 {
		vals := make([]float32, 0, len(probs)*m.cls.Classes)
		for _, p := range probs {
			vals = append(vals, p...)
		}
		return &oippb.ModelInferResponse_InferOutputTensor{Name: m.cls.Output, Datatype: "FP32", Shape: []int64{n, int64(m.cls.Classes)}},
			tensorContents{fp32: vals}
	}
	elems := make([][]byte, 0, len(probs)*o.classes)
	for _, p := range probs {
		elems = append(elems, m.classify(p, o.classes)...)
	}
	return &oippb.ModelInferResponse_InferOutputTensor{Name: m.cls.Output, Datatype: oipEncodedDatatype, Shape: []int64{n, int64(o.classes)}},
		tensorContents{bytes: elems}
}

// classify returns the k most probable classes of one image as Triton's
// classification extension writes them: "<value>:<index>:<label>", the
// value as C++'s std::to_string prints a float (six decimals), highest
// first, equal values in index order.
func (m *model) classify(probs []float32, k int) [][]byte {
	out := make([][]byte, k)
	for i, j := range ranked(probs)[:k] {
		s := fmt.Sprintf("%f:%d", probs[j], j)
		if j < len(m.labels) {
			s += ":" + m.labels[j]
		}
		out[i] = []byte(s)
	}
	return out
}
