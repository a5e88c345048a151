package inference

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	oippb "github.com/shoalml/shoal/gen/inference"
	"github.com/shoalml/shoal/internal/fuzztest"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// fuzzMaxImages is the fuzzed server's --inference.queue-size.
const fuzzMaxImages = 8

// fuzzModel is a model as oipImages sees it: input "input", 3×4×5 (or
// 1×4×5) pixels per image in either layout. No session is needed.
func fuzzModel(gray, nhwc bool) *model {
	spec := imaging.Spec{Channels: 3, Height: 4, Width: 5, NHWC: nhwc}
	if gray {
		spec.Channels = 1
	}
	return &model{name: "fish", version: 1, spec: spec, cls: onnxrt.Classifier{
		Input: "input", Output: "output", Classes: 2,
		Image: onnxrt.Image{Channels: spec.Channels, Height: spec.Height, Width: spec.Width, NHWC: nhwc},
	}}
}

// FuzzOIPInput checks the Open Inference Protocol's input tensor parsing
// (typed and raw contents, any datatype, shape and size) on any
// ModelInferRequest that unmarshals: no panic, InvalidArgument for every
// refusal, and for what is accepted, FP32 images of the model's size that
// hold exactly the values sent, with memory bounded by the request rather
// than by the shape it claims.
func FuzzOIPInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, wire []byte, gray, nhwc bool) {
		defer fuzztest.Watchdog(5 * time.Second)()
		var req oippb.ModelInferRequest
		if err := proto.Unmarshal(wire, &req); err != nil || len(req.GetInputs()) != 1 {
			return // refused by gRPC, or before oipImages, by ModelInfer
		}
		m := fuzzModel(gray, nhwc)
		before := fuzztest.Allocated()
		images, raw, err := m.oipImages(&req, fuzzMaxImages)
		if used, limit := fuzztest.Allocated()-before, 2*uint64(len(wire))+64<<10; used > limit {
			t.Fatalf("oipImages(%d-byte request) allocated %d bytes; want at most %d", len(wire), used, limit)
		}
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("oipImages() = %v; want InvalidArgument", err)
			}
			return
		}
		in := req.GetInputs()[0]
		size := m.spec.Size()
		switch {
		case in.GetName() != "input" || in.GetDatatype() != "FP32":
			t.Fatalf("oipImages() accepted input %q of %s; want only %q of FP32", in.GetName(), in.GetDatatype(), "input")
		case len(images) < 1 || len(images) > fuzzMaxImages || int64(len(images)) != in.GetShape()[0]:
			t.Fatalf("oipImages() = %d images for shape %v; want shape[0], 1 to %d", len(images), in.GetShape(), fuzzMaxImages)
		case raw != (len(req.GetRawInputContents()) > 0):
			t.Fatalf("oipImages() raw = %v with %d raw contents", raw, len(req.GetRawInputContents()))
		}
		want := in.GetContents().GetFp32Contents()
		if raw {
			b := req.GetRawInputContents()[0]
			want = make([]float32, len(b)/4)
			for i := range want {
				want[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
		if len(want) != len(images)*size {
			t.Fatalf("oipImages() = %d images of %d from %d values", len(images), size, len(want))
		}
		for i, img := range images {
			if len(img) != size || cap(img) != size {
				t.Fatalf("image %d has %d values (capacity %d); want %d", i, len(img), cap(img), size)
			}
			for j, v := range img {
				if w := want[i*size+j]; math.Float32bits(v) != math.Float32bits(w) {
					t.Fatalf("image %d value %d = %v; want %v as sent", i, j, v, w)
				}
			}
		}
	})
}

// TestWriteFuzzSeeds rebuilds the seed corpus of FuzzOIPInput (see package
// fuzztest).
func TestWriteFuzzSeeds(t *testing.T) {
	input := func(datatype string, shape ...int64) *oippb.ModelInferRequest_InferInputTensor {
		return &oippb.ModelInferRequest_InferInputTensor{Name: "input", Datatype: datatype, Shape: shape}
	}
	request := func(in *oippb.ModelInferRequest_InferInputTensor, raw ...[]byte) []byte {
		b, err := proto.Marshal(&oippb.ModelInferRequest{ModelName: "fish", Inputs: []*oippb.ModelInferRequest_InferInputTensor{in}, RawInputContents: raw})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const size = 3 * 4 * 5
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i) / 7
		}
		return v
	}
	rawOf := func(v []float32) []byte {
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b
	}
	typed := func(in *oippb.ModelInferRequest_InferInputTensor, c *oippb.InferTensorContents) *oippb.ModelInferRequest_InferInputTensor {
		in.Contents = c
		return in
	}
	seeds := []fuzztest.Seed{
		{Name: "fp32-typed", Args: []any{request(typed(input("FP32", 2, 3, 4, 5), &oippb.InferTensorContents{Fp32Contents: vals(2 * size)})), false, false}},
		{Name: "fp32-raw", Args: []any{request(input("FP32", 1, 3, 4, 5), rawOf(vals(size))), false, false}},
		{Name: "fp32-raw-nhwc", Args: []any{request(input("FP32", 1, 4, 5, 3), rawOf(vals(size))), false, true}},
		{Name: "fp32-gray", Args: []any{request(typed(input("FP32", 1, 1, 4, 5), &oippb.InferTensorContents{Fp32Contents: vals(20)})), true, false}},
		{Name: "both-contents", Args: []any{request(typed(input("FP32", 1, 3, 4, 5), &oippb.InferTensorContents{Fp32Contents: vals(size)}), rawOf(vals(size))), false, false}},
		{Name: "two-raw", Args: []any{request(input("FP32", 1, 3, 4, 5), rawOf(vals(size)), rawOf(vals(size))), false, false}},
		{Name: "size-mismatch", Args: []any{request(input("FP32", 2, 3, 4, 5), rawOf(vals(size))), false, false}},
		{Name: "raw-not-multiple-of-4", Args: []any{request(input("FP32", 1, 3, 4, 5), rawOf(vals(size))[1:]), false, false}},
		{Name: "huge-batch", Args: []any{request(input("FP32", 1<<62, 3, 4, 5), rawOf(vals(size))), false, false}},
		{Name: "negative-dims", Args: []any{request(input("FP32", -1, -3, 4, 5)), false, false}},
		{Name: "overflowing-shape", Args: []any{request(input("FP32", 4, 1<<61, 1<<61, 5)), false, false}},
		{Name: "rank-2", Args: []any{request(input("FP32", 1, size)), false, false}},
		{Name: "wrong-name", Args: []any{request(&oippb.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "FP32", Shape: []int64{1, 3, 4, 5}}), false, false}},
	}
	// Every datatype of the protocol, typed in its own field.
	for _, d := range []struct {
		name string
		c    *oippb.InferTensorContents
	}{
		{"BOOL", &oippb.InferTensorContents{BoolContents: make([]bool, size)}},
		{"UINT8", &oippb.InferTensorContents{UintContents: make([]uint32, size)}},
		{"UINT16", &oippb.InferTensorContents{UintContents: make([]uint32, size)}},
		{"UINT32", &oippb.InferTensorContents{UintContents: make([]uint32, size)}},
		{"UINT64", &oippb.InferTensorContents{Uint64Contents: make([]uint64, size)}},
		{"INT8", &oippb.InferTensorContents{IntContents: make([]int32, size)}},
		{"INT16", &oippb.InferTensorContents{IntContents: make([]int32, size)}},
		{"INT32", &oippb.InferTensorContents{IntContents: make([]int32, size)}},
		{"INT64", &oippb.InferTensorContents{Int64Contents: make([]int64, size)}},
		{"FP16", nil},
		{"FP64", &oippb.InferTensorContents{Fp64Contents: make([]float64, size)}},
		{"BYTES", &oippb.InferTensorContents{BytesContents: [][]byte{[]byte("fish")}}},
	} {
		var wire []byte
		if d.c == nil { // no typed field: raw only
			wire = request(input(d.name, 1, 3, 4, 5), make([]byte, 2*size))
		} else {
			wire = request(typed(input(d.name, 1, 3, 4, 5), d.c))
		}
		seeds = append(seeds, fuzztest.Seed{Name: "datatype-" + strings.ToLower(d.name), Args: []any{wire, false, false}})
	}
	fuzztest.WriteSeeds(t, "FuzzOIPInput", seeds)
}
