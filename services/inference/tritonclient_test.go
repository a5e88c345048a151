package inference_test

// What Triton's HTTP client (tritonclient.http, triton-inference-server/
// client at 58a44ca, src/python/library/tritonclient) puts on the wire,
// written byte for byte from its source, since the client itself cannot be
// installed here; and how its InferResult reads the answer.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// tritonInput is an http.InferInput after set_data_from_numpy
// (_infer_input.py).
type tritonInput struct {
	name     string
	shape    []int64
	datatype string
	// binary_data=True (the default): _raw_data is input_tensor.tobytes()
	// (little-endian, C order), or serialize_byte_tensor's output for BYTES
	// (utils/__init__.py: struct.pack("<I", len(s)) then s, per element),
	// and _parameters["binary_data_size"] = len(_raw_data).
	raw []byte
	// binary_data=False: _data = [val.item() for val in
	// input_tensor.flatten()], Python floats for FP32.
	data []float32
}

// tritonOutput is an http.InferRequestedOutput (_requested_output.py):
// _parameters gets "classification" first when class_count != 0, then
// "binary_data" always (default True).
type tritonOutput struct {
	name       string
	binary     bool
	classCount int
}

// tritonRequest is _utils._get_inference_request: the body and json_size,
// which InferenceServerClient.infer sends as the
// Inference-Header-Content-Length header when binary data follows (-1:
// no header, the JSON is the whole body). The JSON is rapidjson.dumps's:
// compact (write_mode=WM_COMPACT), keys in insertion order, floats as
// Python's repr() (rapidjson.cpp writes PyFloat_Type.tp_repr).
func tritonRequest(requestID string, inputs []tritonInput, outputs []tritonOutput) (body []byte, jsonSize int) {
	var js strings.Builder
	js.WriteString("{")
	if requestID != "" { // infer_request["id"] = request_id
		fmt.Fprintf(&js, `"id":%q,`, requestID)
	}
	js.WriteString(`"inputs":[`) // [this_input._get_tensor() for this_input in inputs]
	for i, in := range inputs {
		if i > 0 {
			js.WriteString(",")
		}
		// _get_tensor: name, shape, datatype; parameters if any; data
		// when there is no raw data.
		fmt.Fprintf(&js, `{"name":%q,"shape":%s,"datatype":%q`, in.name, pyInts(in.shape), in.datatype)
		if in.raw != nil {
			fmt.Fprintf(&js, `,"parameters":{"binary_data_size":%d}`, len(in.raw))
		} else {
			js.WriteString(`,"data":[`)
			for j, v := range in.data {
				if j > 0 {
					js.WriteString(",")
				}
				js.WriteString(pyFloatRepr(float64(v)))
			}
			js.WriteString("]")
		}
		js.WriteString("}")
	}
	js.WriteString("]")
	if len(outputs) > 0 { // infer_request["outputs"] = [o._get_tensor() ...]
		js.WriteString(`,"outputs":[`)
		for i, o := range outputs {
			if i > 0 {
				js.WriteString(",")
			}
			fmt.Fprintf(&js, `{"name":%q,"parameters":{`, o.name)
			if o.classCount != 0 {
				fmt.Fprintf(&js, `"classification":%d,`, o.classCount)
			}
			fmt.Fprintf(&js, `"binary_data":%t}}`, o.binary)
		}
		js.WriteString("]")
	} else {
		// "no outputs specified so set 'binary_data_output' True in the
		// request so that all outputs are returned in binary format"
		js.WriteString(`,"parameters":{"binary_data_output":true}`)
	}
	js.WriteString("}")
	body = []byte(js.String())
	jsonSize = len(body) // json_size = len(request_json)
	var raw [][]byte
	for _, in := range inputs {
		if in.raw != nil {
			raw = append(raw, in.raw)
		}
	}
	if len(raw) == 0 { // "The request body constitutes the whole request"
		return body, -1
	}
	return append(body, bytes.Join(raw, nil)...), jsonSize // b"".join(request_body)
}

func pyInts(v []int64) string {
	s := make([]string, len(v))
	for i, d := range v {
		s[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// pyFloatRepr is Python's repr() of a float: the shortest digits that
// round-trip, in fixed notation (with ".0" when integral) while the
// decimal point falls within -4 < decpt <= 16, else d.ddde±XX.
func pyFloatRepr(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX, shortest
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1
	switch {
	case decpt > -4 && decpt <= 16 && decpt <= 0:
		return sign + "0." + strings.Repeat("0", -decpt) + digits
	case decpt > -4 && decpt <= 16 && decpt >= len(digits):
		return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
	case decpt > -4 && decpt <= 16:
		return sign + digits[:decpt] + "." + digits[decpt:]
	}
	out := digits[:1]
	if len(digits) > 1 {
		out += "." + digits[1:]
	}
	esign := "+"
	if exp < 0 {
		esign, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", sign, out, esign, exp)
}

func TestPyFloatRepr(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", -2: "-2.0", 0.5: "0.5", 0.1: "0.1", 1e-5: "1e-05", 0.0001: "0.0001", 1e16: "1e+16",
		1e15: "1000000000000000.0", 123.456: "123.456", float64(float32(0.1)): "0.10000000149011612", -1.5e-7: "-1.5e-07",
	} {
		if got := pyFloatRepr(f); got != want {
			t.Errorf("pyFloatRepr(%v) = %s; want %s", f, got, want)
		}
	}
}

// tritonPost sends a request as InferenceServerClient.infer does: the
// body, the Inference-Header-Content-Length header when json_size is set,
// and no Content-Type (geventhttpclient adds none).
func tritonPost(t *testing.T, url string, body []byte, jsonSize int, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if jsonSize >= 0 {
		req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(jsonSize))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// tritonOutputData is one output as InferResult.as_numpy returns it.
type tritonOutputData struct {
	datatype string
	shape    []int64
	fp32     []float32
	bytes    [][]byte
}

// tritonResult reads a 200 response as InferResult does
// (_infer_result.py): without the Inference-Header-Content-Length header
// the body is the JSON; with it, the JSON is that long and the outputs
// whose parameters carry binary_data_size take that many bytes each, in
// order, from the rest; the others carry "data". It also returns the JSON.
func tritonResult(t *testing.T, resp *http.Response) (map[string]tritonOutputData, []byte) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK { // _raise_if_error: json.loads(body)["error"]
		var e struct {
			Error *string `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
			t.Fatalf("status %d with %q: tritonclient could not read the error (%v)", resp.StatusCode, body, err)
		}
		t.Fatalf("status %d: %s", resp.StatusCode, *e.Error)
	}
	head, buffer := body, []byte(nil)
	if h := resp.Header.Get("Inference-Header-Content-Length"); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil || n > len(body) {
			t.Fatalf("Inference-Header-Content-Length %q for a %d-byte body", h, len(body))
		}
		head, buffer = body[:n], body[n:]
	}
	var result struct {
		Outputs []struct {
			Name       string          `json:"name"`
			Datatype   string          `json:"datatype"`
			Shape      []int64         `json:"shape"`
			Parameters map[string]any  `json:"parameters"`
			Data       json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(head, &result); err != nil {
		t.Fatalf("response JSON %q: %v", head, err)
	}
	out := map[string]tritonOutputData{}
	index := 0
	for _, o := range result.Outputs {
		d := tritonOutputData{datatype: o.Datatype, shape: o.Shape}
		if size, ok := o.Parameters["binary_data_size"].(float64); ok {
			if index+int(size) > len(buffer) {
				t.Fatalf("output %s: binary_data_size %v past the %d bytes after the JSON", o.Name, size, len(buffer))
			}
			raw := buffer[index : index+int(size)]
			index += int(size)
			switch o.Datatype {
			case "FP32": // np.frombuffer(..., dtype=np.float32)
				for i := 0; i+4 <= len(raw); i += 4 {
					d.fp32 = append(d.fp32, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
				}
			case "BYTES": // deserialize_bytes_tensor: "<I" length, then the bytes
				for off := 0; off < len(raw); {
					l := int(binary.LittleEndian.Uint32(raw[off:]))
					d.bytes = append(d.bytes, raw[off+4:off+4+l])
					off += 4 + l
				}
			default:
				t.Fatalf("output %s: datatype %s", o.Name, o.Datatype)
			}
		} else {
			switch o.Datatype { // np.array(output["data"], dtype=...)
			case "FP32":
				if err := json.Unmarshal(o.Data, &d.fp32); err != nil {
					t.Fatalf("output %s data %s: %v", o.Name, o.Data, err)
				}
			case "BYTES":
				var ss []string
				if err := json.Unmarshal(o.Data, &ss); err != nil {
					t.Fatalf("output %s data %s: %v", o.Name, o.Data, err)
				}
				for _, s := range ss {
					d.bytes = append(d.bytes, []byte(s))
				}
			}
		}
		out[o.Name] = d
	}
	return out, head
}
