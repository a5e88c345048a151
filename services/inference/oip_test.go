package inference_test

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// pixels preprocesses encoded images as the server does.
func pixels(t *testing.T, m testModel, imgs ...[]byte) []float32 {
	t.Helper()
	spec, err := imaging.SpecFromProto(m.spec)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(imgs)*spec.Size())
	for i, b := range imgs {
		img, _, err := imaging.Decode(b, imaging.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if err := imaging.Preprocess(img, spec, out[i*spec.Size():(i+1)*spec.Size()]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func rawBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func TestModelInferMatchesPredict(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newTestModel(0)
	e.addVersion(t, "pets", 1, m)
	e.reg.setAlias("pets", "production", 1)
	imgs := [][]byte{imagingtest.JPEG(20, 20, 1), imagingtest.PNG(9, 4, 2)}
	pred, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Images: imgs, TopK: 3})
	if err != nil {
		t.Fatalf("Predict() = %v", err)
	}
	px := pixels(t, m, imgs...)
	input := func() *oippb.ModelInferRequest_InferInputTensor {
		return &oippb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: "FP32", Shape: []int64{2, 3, 4, 4}}
	}
	typed := input()
	typed.Contents = &oippb.InferTensorContents{Fp32Contents: px}
	for _, tt := range []struct {
		name string
		req  *oippb.ModelInferRequest
	}{
		{"typed contents", &oippb.ModelInferRequest{ModelName: "pets", Id: "a", Inputs: []*oippb.ModelInferRequest_InferInputTensor{typed}}},
		{"raw contents, version named", &oippb.ModelInferRequest{ModelName: "pets", ModelVersion: "1",
			Inputs: []*oippb.ModelInferRequest_InferInputTensor{input()}, RawInputContents: [][]byte{rawBytes(px)}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.oip.ModelInfer(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("ModelInfer() = %v", err)
			}
			if resp.GetModelVersion() != "1" || resp.GetId() != tt.req.GetId() || len(resp.GetOutputs()) != 1 {
				t.Fatalf("ModelInfer() = %v; want version 1, id echoed, one output", resp)
			}
			out := resp.GetOutputs()[0]
			probs := out.GetContents().GetFp32Contents()
			if len(resp.GetRawOutputContents()) == 1 {
				b := resp.GetRawOutputContents()[0]
				probs = make([]float32, len(b)/4)
				for i := range probs {
					probs[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
				}
			}
			if len(probs) != 6 || out.GetDatatype() != "FP32" || out.GetShape()[0] != 2 || out.GetShape()[1] != 3 {
				t.Fatalf("output = %v (%d values); want FP32 [2 3]", out, len(probs))
			}
			for i, r := range pred.GetResults() {
				for _, l := range r.GetLabels() {
					if got := probs[i*3+int(l.GetIndex())]; math.Abs(float64(got-l.GetProbability())) > 1e-6 {
						t.Fatalf("image %d class %d: ModelInfer %v, Predict %v", i, l.GetIndex(), got, l.GetProbability())
					}
				}
			}
		})
	}

	meta, err := e.oip.ModelMetadata(t.Context(), &oippb.ModelMetadataRequest{Name: "pets"})
	if err != nil || meta.GetInputs()[0].GetName() != "input" || len(meta.GetInputs()[0].GetShape()) != 4 ||
		meta.GetOutputs()[0].GetShape()[1] != 3 || meta.GetVersions()[0] != "1" {
		t.Fatalf("ModelMetadata() = %v, %v; want input [-1 3 4 4], output [-1 3], version 1", meta, err)
	}
}

func TestModelInferErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.reg.setAlias("pets", "production", 1)
	in := func(name, dtype string, shape []int64, n int) *oippb.ModelInferRequest_InferInputTensor {
		return &oippb.ModelInferRequest_InferInputTensor{Name: name, Datatype: dtype, Shape: shape,
			Contents: &oippb.InferTensorContents{Fp32Contents: make([]float32, n)}}
	}
	good := []int64{1, 3, 4, 4}
	tests := []struct {
		name string
		req  *oippb.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"no model", &oippb.ModelInferRequest{Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "FP32", good, 48)}}, codes.InvalidArgument, "model name"},
		{"unknown model", &oippb.ModelInferRequest{ModelName: "nope", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "FP32", good, 48)}}, codes.NotFound, "nope"},
		{"bad version", &oippb.ModelInferRequest{ModelName: "pets", ModelVersion: "x", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "FP32", good, 48)}}, codes.InvalidArgument, "version"},
		{"no inputs", &oippb.ModelInferRequest{ModelName: "pets"}, codes.InvalidArgument, "0 input tensors"},
		{"wrong name", &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("x", "FP32", good, 48)}}, codes.InvalidArgument, `input "x"`},
		{"wrong dtype", &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "INT8", good, 48)}}, codes.InvalidArgument, "datatype"},
		{"wrong shape", &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "FP32", []int64{1, 4, 4, 3}, 48)}}, codes.InvalidArgument, "shape"},
		{"zero batch", &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "FP32", []int64{0, 3, 4, 4}, 0)}}, codes.InvalidArgument, "shape"},
		{"short contents", &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "FP32", good, 47)}}, codes.InvalidArgument, "47 fp32_contents"},
		{"raw byte length", &oippb.ModelInferRequest{ModelName: "pets", RawInputContents: [][]byte{make([]byte, 191)},
			Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "FP32", Shape: good}}}, codes.InvalidArgument, "191 bytes"},
		{"raw and typed", &oippb.ModelInferRequest{ModelName: "pets", RawInputContents: [][]byte{make([]byte, 192)},
			Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "FP32", good, 48)}}, codes.InvalidArgument, "not both"},
		{"unknown output", &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in("input", "FP32", good, 48)},
			Outputs: []*oippb.ModelInferRequest_InferRequestedOutputTensor{{Name: "logits"}}}, codes.InvalidArgument, `output "logits"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.oip.ModelInfer(t.Context(), tt.req)
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Fatalf("ModelInfer() = %v; want %v containing %q", err, tt.code, tt.msg)
			}
		})
	}
}
