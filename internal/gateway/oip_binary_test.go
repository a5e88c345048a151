package gateway_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/gateway"
	"github.com/shoalml/shoal/internal/oip/oiptest"
)

func f32bytes(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func f64bytes(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// binaryBody frames head and data as the binary tensor data extension does.
func binaryBody(head string, data ...[]byte) (http.Header, []byte) {
	body := append([]byte(head), bytes.Join(data, nil)...)
	return http.Header{gateway.InferHeaderContentLength: {strconv.Itoa(len(head))}}, body
}

// splitBinary reads a response as tritonclient's InferResult does: the
// JSON's length from the header, each output's binary_data_size in order.
func splitBinary(t *testing.T, r reply) (head map[string]any, data map[string][]byte) {
	t.Helper()
	n, err := strconv.Atoi(r.header.Get(gateway.InferHeaderContentLength))
	if err != nil || n > len(r.body) {
		t.Fatalf("response %s header = %q; want the JSON's length", gateway.InferHeaderContentLength, r.header.Get(gateway.InferHeaderContentLength))
	}
	if err := json.Unmarshal(r.body[:n], &head); err != nil {
		t.Fatalf("response JSON %q: %v", r.body[:n], err)
	}
	data = map[string][]byte{}
	rest := r.body[n:]
	for _, o := range head["outputs"].([]any) {
		o := o.(map[string]any)
		if p, ok := o["parameters"].(map[string]any); ok {
			if size, ok := p["binary_data_size"].(float64); ok {
				data[o["name"].(string)], rest = rest[:int(size)], rest[int(size):]
			}
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the outputs' binary data", len(rest))
	}
	return head, data
}

func TestOIPInferBinary(t *testing.T) {
	fake, srv := oipGateway(t)
	pixels := f32bytes(0.25, -1, 3.5, 8)

	// Binary in, every output binary by binary_data_output, but "b" asks
	// for JSON: the per-output parameter wins.
	h, body := binaryBody(`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","parameters":{"binary_data_size":16}}],`+
		`"outputs":[{"name":"a"},{"name":"b","parameters":{"binary_data":false}},{"name":"c","parameters":{"binary_data":true,"classification":2}}],`+
		`"parameters":{"binary_data_output":true}}`, pixels)
	got := do(t, http.MethodPost, srv.URL+"/v2/models/echo/infer", h, body)
	if got.code != 200 || got.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("POST binary = %d %s %s", got.code, got.header.Get("Content-Type"), got.body)
	}
	head, data := splitBinary(t, got)
	if !bytes.Equal(data["a"], pixels) || !bytes.Equal(data["c"], pixels) || data["b"] != nil {
		t.Errorf("binary outputs = %x; want a and c binary, b in JSON", data)
	}
	hb, _ := json.Marshal(head)
	oiptest.Require(t, hb, "inference_response")
	if !strings.Contains(string(hb), `"data":[0.25,-1,3.5,8]`) {
		t.Errorf("response head %s: want output b's data in JSON", hb)
	}
	req, _ := fake.lastRequest()
	if !bytes.Equal(req.GetRawInputContents()[0], pixels) {
		t.Errorf("raw_input_contents = %x; want the binary section %x", req.GetRawInputContents()[0], pixels)
	}
	if _, ok := req.GetParameters()["binary_data_output"]; ok || req.GetInputs()[0].GetParameters()["binary_data_size"] != nil ||
		req.GetOutputs()[1].GetParameters()["binary_data"] != nil {
		t.Errorf("the binary extension's parameters reached the service: %v", req)
	}
	if k := req.GetOutputs()[2].GetParameters()["classification"]; k.GetInt64Param() != 2 {
		t.Errorf("classification parameter = %v; want int64 2 passed on", k)
	}

	// Two inputs, one binary and one JSON, and a zero-size binary input.
	h, body = binaryBody(`{"inputs":[{"name":"x","shape":[3],"datatype":"UINT8","parameters":{"binary_data_size":3}},`+
		`{"name":"y","shape":[1],"datatype":"BOOL","data":[true]},{"name":"z","shape":[0],"datatype":"FP32","parameters":{"binary_data_size":0}}]}`, []byte{7, 8, 9})
	got = do(t, http.MethodPost, srv.URL+"/v2/models/echo/infer", h, body)
	if got.code != 200 || got.header.Get(gateway.InferHeaderContentLength) != "" || !strings.Contains(string(got.body), `"data":[7,8,9]`) {
		t.Errorf("POST mixed = %d %s (header %q); want JSON data [7,8,9] and no binary framing", got.code, got.body, got.header.Get(gateway.InferHeaderContentLength))
	}
	req, _ = fake.lastRequest()
	if len(req.GetRawInputContents()) != 3 || !bytes.Equal(req.GetRawInputContents()[1], []byte{1}) || len(req.GetRawInputContents()[2]) != 0 {
		t.Errorf("raw_input_contents = %x; want [070809 01 '']", req.GetRawInputContents())
	}

	// Request parameters of every JSON kind reach the service typed.
	got = do(t, http.MethodPost, srv.URL+"/v2/models/echo/infer", nil, []byte(
		`{"parameters":{"i":-3,"u":18446744073709551615,"d":0.5,"s":"x","b":true},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"p":"q"}}]}`))
	if got.code != 200 {
		t.Fatalf("POST with parameters = %d %s", got.code, got.body)
	}
	req, _ = fake.lastRequest()
	ps := req.GetParameters()
	if ps["i"].GetInt64Param() != -3 || ps["u"].GetUint64Param() != math.MaxUint64 || ps["d"].GetDoubleParam() != 0.5 ||
		ps["s"].GetStringParam() != "x" || !ps["b"].GetBoolParam() || req.GetInputs()[0].GetParameters()["p"].GetStringParam() != "q" {
		t.Errorf("parameters = %v, input's %v; want each JSON value in its typed field", ps, req.GetInputs()[0].GetParameters())
	}
}

// TestOIPInferBadRequests: malformed requests, in JSON and in the binary
// framing, get a clear 400 without reaching the service, and the gateway
// keeps serving.
