package inference_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/oip"
	"github.com/shoalml/shoal/internal/oip/oiptest"
	"github.com/shoalml/shoal/services/inference"
)

// nested writes vals as a JSON array nested by shape.
func nested(vals []float32, shape []int64) string {
	if len(shape) == 0 {
		return pyFloatRepr(float64(vals[0]))
	}
	step := len(vals) / int(shape[0])
	parts := make([]string, shape[0])
	for i := range parts {
		parts[i] = nested(vals[i*step:(i+1)*step], shape[1:])
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func postJSON(t *testing.T, url, body string) *http.Response {
	t.Helper()
	return tritonPost(t, url, []byte(body), -1, http.Header{"Content-Type": {"application/json"}})
}

// probabilities turns an output's values into one row per image.
func rows(vals []float32, classes int) [][]float32 {
	out := make([][]float32, len(vals)/classes)
	for i := range out {
		out[i] = vals[i*classes : (i+1)*classes]
	}
	return out
}

// TestOIPEveryFormAnswersAsPredict: the same two images (a JPEG and a PNG)
// through every form the Open Inference Protocol takes here — REST with
// JSON data (flat and nested), REST with binary data as Triton's client
// sends it, encoded images over REST (JSON {"b64"} and binary) and over
// gRPC (typed and raw), preprocessed tensors over gRPC (typed and raw) —
// answer what Predict and /predict answer: within 1e-5 for tensors the
// test preprocessed, bit for bit for encoded images, which the server
// preprocesses as Predict does.
func TestOIPEveryFormAnswersAsPredict(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newTestModel(0)
	e.addVersion(t, "pets", 1, m)
	e.reg.setAlias("pets", "production", 1)
	srv := restServer(t, e.conn)
	imgs := [][]byte{imagingtest.JPEG(20, 20, 1), imagingtest.PNG(9, 4, 2)}

	pred, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "pets", Images: imgs, TopK: 3})
	if err != nil {
		t.Fatalf("Predict() = %v", err)
	}
	want := make([][]float32, len(imgs))
	for i, r := range pred.GetResults() {
		want[i] = make([]float32, 3)
		for _, l := range r.GetLabels() {
			want[i][l.GetIndex()] = l.GetProbability()
		}
	}
	meta, err := e.oip.ModelMetadata(t.Context(), &oippb.ModelMetadataRequest{Name: "pets"})
	if err != nil {
		t.Fatal(err)
	}
	in, out := meta.GetInputs()[0].GetName(), meta.GetOutputs()[0].GetName()
	px := pixels(t, m, imgs...)
	shape := []int64{2, 3, 4, 4}
	infer := srv.URL + "/v2/models/pets/infer"

	// restProbs reads a REST answer as Triton's client does.
	restProbs := func(resp *http.Response) [][]float32 {
		t.Helper()
		outs, head := tritonResult(t, resp)
		if !strings.Contains(string(head), `"model_name":"pets","model_version":"1"`) {
			t.Errorf("response %s: want model pets version 1", head)
		}
		o := outs[out]
		if o.datatype != "FP32" || len(o.shape) != 2 || o.shape[0] != 2 || o.shape[1] != 3 {
			t.Fatalf("output %s = %+v; want FP32 [2 3]", out, o)
		}
		return rows(o.fp32, 3)
	}
	grpcProbs := func(req *oippb.ModelInferRequest) [][]float32 {
		t.Helper()
		req.ModelName = "pets"
		resp, err := e.oip.ModelInfer(t.Context(), req)
		if err != nil {
			t.Fatalf("ModelInfer() = %v", err)
		}
		o := resp.GetOutputs()[0]
		vals := o.GetContents().GetFp32Contents()
		if len(resp.GetRawOutputContents()) == 1 {
			b := resp.GetRawOutputContents()[0]
			vals = make([]float32, len(b)/4)
			for i := range vals {
				vals[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
			}
		}
		return rows(vals, 3)
	}
	encoded := oip.JoinBytes(imgs)

	forms := []struct {
		name  string
		exact bool
		probs func() [][]float32
	}{
		{"REST JSON, flat data", false, func() [][]float32 {
			body := fmt.Sprintf(`{"inputs":[{"name":%q,"shape":[2,3,4,4],"datatype":"FP32","data":%s}]}`, in, nested(px, []int64{int64(len(px))}))
			oiptest.Require(t, []byte(body), "inference_request")
			return restProbs(postJSON(t, infer, body))
		}},
		{"REST JSON, nested data, id and outputs", false, func() [][]float32 {
			body := fmt.Sprintf(`{"id":"n1","inputs":[{"name":%q,"shape":[2,3,4,4],"datatype":"FP32","data":%s}],"outputs":[{"name":%q}]}`,
				in, nested(px, shape), out)
			oiptest.Require(t, []byte(body), "inference_request")
			resp := postJSON(t, infer, body)
			b, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			oiptest.Require(t, b, "inference_response")
			if !strings.Contains(string(b), `"id":"n1"`) {
				t.Errorf("response %s: want the id n1 echoed", b)
			}
			return restProbs(resp)
		}},
		{"REST JSON as Triton's client sends it (binary_data=False)", false, func() [][]float32 {
			body, size := tritonRequest("7", []tritonInput{{name: in, shape: shape, datatype: "FP32", data: px}}, []tritonOutput{{name: out, binary: false}})
			return restProbs(tritonPost(t, infer, body, size, nil))
		}},
		{"REST binary as Triton's client sends it by default", false, func() [][]float32 {
			body, size := tritonRequest("", []tritonInput{{name: in, shape: shape, datatype: "FP32", raw: rawBytes(px)}}, nil)
			resp := tritonPost(t, infer, body, size, nil)
			if resp.Header.Get("Inference-Header-Content-Length") == "" {
				t.Errorf("binary_data_output answer without Inference-Header-Content-Length")
			}
			return restProbs(resp)
		}},
		{"gRPC typed FP32", false, func() [][]float32 {
			return grpcProbs(&oippb.ModelInferRequest{Inputs: []*oippb.ModelInferRequest_InferInputTensor{
				{Name: in, Datatype: "FP32", Shape: shape, Contents: &oippb.InferTensorContents{Fp32Contents: px}}}})
		}},
		{"gRPC raw FP32", false, func() [][]float32 {
			return grpcProbs(&oippb.ModelInferRequest{Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: in, Datatype: "FP32", Shape: shape}},
				RawInputContents: [][]byte{rawBytes(px)}})
		}},
		{"/predict", false, func() [][]float32 {
			var got [][]float32
			for _, img := range imgs {
				body, ct := multipartBody(t, "file", img, map[string]string{"model": "pets"})
				resp, err := http.Post(srv.URL+"/predict", ct, body)
				if err != nil {
					t.Fatal(err)
				}
				var p restPrediction
				err = json.NewDecoder(resp.Body).Decode(&p)
				resp.Body.Close()
				if err != nil || len(p.TopK) != 3 {
					t.Fatalf("/predict = %+v, %v", p, err)
				}
				row := make([]float32, 3)
				for _, l := range p.TopK {
					row[slicesIndex(m.labels, l.Label)] = l.Probability
				}
				got = append(got, row)
			}
			return got
		}},
		{"gRPC encoded images, bytes_contents", true, func() [][]float32 {
			return grpcProbs(&oippb.ModelInferRequest{Inputs: []*oippb.ModelInferRequest_InferInputTensor{
				{Name: in, Datatype: "BYTES", Shape: []int64{2}, Contents: &oippb.InferTensorContents{BytesContents: imgs}}}})
		}},
		{"gRPC encoded images, raw", true, func() [][]float32 {
			return grpcProbs(&oippb.ModelInferRequest{Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: in, Datatype: "BYTES", Shape: []int64{2, 1}}},
				RawInputContents: [][]byte{encoded}})
		}},
		{"REST encoded images, JSON {b64}", true, func() [][]float32 {
			body := fmt.Sprintf(`{"inputs":[{"name":%q,"shape":[2],"datatype":"BYTES","data":[{"b64":%q},{"b64":%q}]}]}`,
				in, base64.StdEncoding.EncodeToString(imgs[0]), base64.StdEncoding.EncodeToString(imgs[1]))
			return restProbs(postJSON(t, infer, body))
		}},
		{"REST encoded images, binary as Triton's client sends BYTES", true, func() [][]float32 {
			body, size := tritonRequest("", []tritonInput{{name: in, shape: []int64{2}, datatype: "BYTES", raw: encoded}}, []tritonOutput{{name: out, binary: true}})
			return restProbs(tritonPost(t, infer, body, size, nil))
		}},
	}
	for _, f := range forms {
		got := f.probs()
		if len(got) != 2 {
			t.Errorf("%s: %d rows; want 2", f.name, len(got))
			continue
		}
		for i := range want {
			for k := range want[i] {
				d := math.Abs(float64(got[i][k] - want[i][k]))
				if f.exact && got[i][k] != want[i][k] || d > 1e-5 {
					t.Errorf("%s: image %d class %d = %.9g; Predict %.9g (exact: %t)", f.name, i, k, got[i][k], want[i][k], f.exact)
				}
			}
		}
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestOIPClassification: Triton's classification extension, as its
// image_client example asks for it (class_count on the requested output),
// answers Predict's top labels as "<value>:<index>:<label>".
func TestOIPClassification(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(3))
	e.reg.setAlias("pets", "production", 1)
	srv := restServer(t, e.conn)
	img := imagingtest.JPEG(16, 12, 5)
	pred, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "pets", Images: [][]byte{img}, TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range pred.GetResults()[0].GetLabels() {
		want = append(want, fmt.Sprintf("%f:%d:%s", l.GetProbability(), l.GetIndex(), l.GetLabel()))
	}
	for _, binaryOut := range []bool{true, false} {
		body, size := tritonRequest("", []tritonInput{{name: "input", shape: []int64{1}, datatype: "BYTES", raw: oip.JoinBytes([][]byte{img})}},
			[]tritonOutput{{name: "output", binary: binaryOut, classCount: 2}})
		outs, _ := tritonResult(t, tritonPost(t, srv.URL+"/v2/models/pets/infer", body, size, nil))
		o := outs["output"]
		var got []string
		for _, b := range o.bytes {
			got = append(got, string(b))
		}
		if o.datatype != "BYTES" || len(o.shape) != 2 || o.shape[0] != 1 || o.shape[1] != 2 || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("classification 2 (binary %t) = %s %v %q; want BYTES [1 2] %q", binaryOut, o.datatype, o.shape, got, want)
		}
	}
	_, err = e.oip.ModelInfer(t.Context(), &oippb.ModelInferRequest{ModelName: "pets",
		Inputs:  []*oippb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "BYTES", Shape: []int64{1}, Contents: &oippb.InferTensorContents{BytesContents: [][]byte{img}}}},
		Outputs: []*oippb.ModelInferRequest_InferRequestedOutputTensor{{Name: "output", Parameters: map[string]*oippb.InferParameter{"classification": {ParameterChoice: &oippb.InferParameter_StringParam{StringParam: "2"}}}}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "positive integer") {
		t.Errorf("ModelInfer(classification \"2\") = %v; want InvalidArgument asking for a positive integer", err)
	}
}

// TestOIPRESTConformance: every request and response form of the
// specification's inference_rest.md against the real service, with its
// examples (which do not fit an image classifier: two inputs, a BOOL
// tensor of 3 with one element, a request without inputs) refused
// clearly, and Triton's client's health, metadata and error handling.
func TestOIPRESTConformance(t *testing.T) {
	e := newEnv(t, envOptions{})
	srv := restServer(t, e.conn)
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// Before any model is loaded: live, not ready (tritonclient's
	// is_server_ready checks status_code == 200).
	if code, b := get("/v2/health/live"); code != 200 || string(b) != `{"live":true}` {
		t.Errorf("GET /v2/health/live = %d %s", code, b)
	}
	if code, b := get("/v2/health/ready"); code != 503 || string(b) != `{"ready":false}` {
		t.Errorf("GET /v2/health/ready without a model = %d %s; want 503 {\"ready\":false}", code, b)
	}
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.reg.setAlias("pets", "production", 1)
	if _, err := e.client.Predict(t.Context(), &inferencepb.PredictRequest{Model: "pets", Images: [][]byte{imagingtest.PNG(4, 4, 1)}}); err != nil {
		t.Fatal(err) // waits for the load
	}

	for _, tt := range []struct {
		path   string
		code   int
		object string
		want   string
	}{
		{"/v2/health/live", 200, "live_server_response", `{"live":true}`},
		{"/v2/health/ready", 200, "ready_server_response", `{"ready":true}`},
		{"/v2", 200, "metadata_server_response", `{"name":"shoal","version":"test","extensions":["binary_tensor_data","classification","shoal_encoded_images"]}`},
		{"/v2/models/pets", 200, "metadata_model_response",
			`{"name":"pets","versions":["1"],"platform":"onnx_onnxv1","inputs":[{"name":"input","datatype":"FP32","shape":[-1,3,4,4]}],"outputs":[{"name":"output","datatype":"FP32","shape":[-1,3]}]}`},
		{"/v2/models/pets/versions/1", 200, "metadata_model_response", `"versions":["1"]`},
		{"/v2/models/pets/ready", 200, "ready_model_response", `{"name":"pets","ready":true}`},
		{"/v2/models/pets/versions/1/ready", 200, "ready_model_response", `{"name":"pets","ready":true}`},
		{"/v2/models/pets/versions/2/ready", 404, "error_response", `{"error":"model \"pets\" version 2 is not loaded"}`},
		{"/v2/models/nope", 404, "error_response", `{"error":"model \"nope\" not found"}`},
		{"/v2/models/pets/versions/x", 400, "error_response", `{"error":"version \"x\": must be a positive integer"}`},
		{"/v2/models/pets/config", 404, "error_response", `not part of the Open Inference Protocol`},
	} {
		code, b := get(tt.path)
		if code != tt.code || !strings.Contains(string(b), tt.want) {
			t.Errorf("GET %s = %d %s; want %d with %s", tt.path, code, b, tt.code, tt.want)
		}
		oiptest.Require(t, b, tt.object)
	}

	infer := srv.URL + "/v2/models/pets/infer"
	errorOf := func(resp *http.Response) (int, string) {
		t.Helper()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		oiptest.Require(t, b, "error_response")
		var e struct{ Error string }
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Error
	}
	specExample1 := `{"id":"42","inputs":[{"name":"input0","shape":[2,2],"datatype":"UINT32","data":[1,2,3,4]},` +
		`{"name":"input1","shape":[3],"datatype":"BOOL","data":[true]}],"outputs":[{"name":"output0"}]}`
	for _, tt := range []struct {
		name, url, body string
		code            int
		msg             string
	}{
		{"the specification's request example (BOOL [3] with one element)", infer, specExample1, 400, `input "input1": data holds 1 elements; the shape holds 3`},
		{"that example made consistent", infer, strings.Replace(specExample1, `"data":[true]`, `"data":[true,false,true]`, 1), 400, "2 input tensors; the model takes exactly 1"},
		{"the OpenAPI document's second example (outputs, no inputs)", infer,
			`{"id":"42","outputs":[{"name":"output0","shape":[3,2],"datatype":"FP32","data":[1,1.1,2,2.1,3,3.1]}]}`, 400, `"inputs" is required`},
		{"a KServe v2 request of the wrong shape", infer, `{"inputs":[{"name":"input","shape":[1,1,4,4],"datatype":"FP32","data":[` + strings.Repeat("0,", 15) + `0]}]}`,
			400, `input "input" has shape [1 1 4 4]; want [-1 3 4 4]`},
		{"a tensor of the wrong datatype", infer, `{"inputs":[{"name":"input","shape":[1,3,4,4],"datatype":"UINT8","data":[` + strings.Repeat("0,", 47) + `0]}]}`,
			400, `datatype "UINT8"; want FP32 (preprocessed pixels) or BYTES (encoded JPEG/PNG images)`},
		{"an unknown output", infer, `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["x"]}],"outputs":[{"name":"output0"}]}`,
			400, `output "output0": the model's only output is "output"`},
		{"a string that is not an image", infer, `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["not an image"]}]}`, 400, "image 0"},
		{"an unknown model", srv.URL + "/v2/models/nope/infer", `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["x"]}]}`, 404, `model "nope" not found`},
		{"a version that is not a number", srv.URL + "/v2/models/pets/versions/v10/infer", `{"inputs":[]}`, 400, `version "v10"`},
	} {
		code, msg := errorOf(postJSON(t, tt.url, tt.body))
		if code != tt.code || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: = %d %q; want %d containing %q", tt.name, code, msg, tt.code, tt.msg)
		}
	}

	// The answer to a version named in the path, as the specification's
	// response example has it: model_version, id, outputs with integer
	// shape and data.
	body := `{"id":"42","inputs":[{"name":"input","shape":[1,3,4,4],"datatype":"FP32","data":[` + strings.Repeat("0.5,", 47) + `0.5]}],"outputs":[{"name":"output"}]}`
	resp := postJSON(t, srv.URL+"/v2/models/pets/versions/1/infer", body)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	oiptest.Require(t, b, "inference_response")
	var r struct {
		ModelVersion string `json:"model_version"`
		ID           string `json:"id"`
		Outputs      []struct {
			Name, Datatype string
			Shape          []int64
			Data           []float64
		}
	}
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != 200 || r.ID != "42" || r.ModelVersion != "1" ||
		len(r.Outputs) != 1 || r.Outputs[0].Name != "output" || len(r.Outputs[0].Data) != 3 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST versions/1/infer = %d %s (%v); want 200 JSON with id 42, version 1, output [1 3]", resp.StatusCode, b, err)
	}
}

// TestModelInferEncodedImageErrors: a bad BYTES input is InvalidArgument
// with its reason, on gRPC as on REST.
func TestModelInferEncodedImageErrors(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *inference.Config) { c.QueueSize, c.MaxBatchSize = 4, 4 }})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.reg.setAlias("pets", "production", 1)
	img := imagingtest.PNG(5, 5, 1)
	bytesIn := func(shape []int64, elems ...[]byte) *oippb.ModelInferRequest {
		return &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{
			{Name: "input", Datatype: "BYTES", Shape: shape, Contents: &oippb.InferTensorContents{BytesContents: elems}}}}
	}
	rawIn := func(shape []int64, raw []byte) *oippb.ModelInferRequest {
		return &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{
			{Name: "input", Datatype: "BYTES", Shape: shape}}, RawInputContents: [][]byte{raw}}
	}
	for _, tt := range []struct {
		name string
		req  *oippb.ModelInferRequest
		msg  string
	}{
		{"not an image", bytesIn([]int64{2}, img, []byte("plain text")), "image 1"},
		{"shape of pixels", bytesIn([]int64{1, 3}, img), "shape [1 3]; a BYTES input of encoded images has the shape [N]"},
		{"scalar shape", bytesIn(nil, img), "shape []"},
		{"count off the shape", bytesIn([]int64{2}, img), "1 bytes_contents; shape [2] needs 2"},
		{"batch over the queue", bytesIn([]int64{5}, img, img, img, img, img), "batch of 5; at most 4"},
		{"raw elements short", rawIn([]int64{2}, oip.JoinBytes([][]byte{img})), "raw_input_contents"},
		{"raw length past the end", rawIn([]int64{1}, append([]byte{255, 255, 255, 127}, img...)), "but only"},
		{"wrong input name", &oippb.ModelInferRequest{ModelName: "pets", Inputs: []*oippb.ModelInferRequest_InferInputTensor{
			{Name: "pixels", Datatype: "BYTES", Shape: []int64{1}, Contents: &oippb.InferTensorContents{BytesContents: [][]byte{img}}}}}, `input "pixels"`},
	} {
		_, err := e.oip.ModelInfer(t.Context(), tt.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.msg) {
			t.Errorf("%s: ModelInfer() = %v; want InvalidArgument containing %q", tt.name, err, tt.msg)
		}
	}
	// And the service keeps answering.
	if _, err := e.oip.ModelInfer(t.Context(), bytesIn([]int64{1}, img)); err != nil {
		t.Errorf("ModelInfer(one PNG) after the bad requests = %v", err)
	}
}
