package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	"github.com/shoalml/shoal/internal/oip"
	"github.com/shoalml/shoal/internal/server"
)

// InferHeaderContentLength is the header of Triton's binary tensor data
// extension: the length of the JSON object at the start of the body, when
// binary tensor data follows it. A response with binary outputs carries it
// too.
const InferHeaderContentLength = "Inference-Header-Content-Length"

// Parameters of the binary tensor data extension. The gateway reads and
// writes them; the service never sees them.
const (
	paramBinarySize   = "binary_data_size"   // on an input or a response output: its bytes after the JSON
	paramBinary       = "binary_data"        // on a requested output: return it as binary data
	paramBinaryOutput = "binary_data_output" // on the request: return every output as binary data
)

// sharedMemoryParams are Triton's shared-memory parameters; this server
// has no shared-memory extension, so they are refused rather than ignored.
var sharedMemoryParams = []string{"shared_memory_region", "shared_memory_byte_size", "shared_memory_offset"}

// inferRequest is the specification's $inference_request. Fields whose
// type the decoder cannot check on its own stay raw and are read below.
type inferRequest struct {
	ID         json.RawMessage            `json:"id"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Inputs     *[]inferInput              `json:"inputs"`
	Outputs    []inferOutput              `json:"outputs"`
}

// inferInput is the specification's $request_input.
type inferInput struct {
	Name       string                     `json:"name"`
	Shape      *[]json.RawMessage         `json:"shape"`
	Datatype   string                     `json:"datatype"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Data       json.RawMessage            `json:"data"`
}

// inferOutput is the specification's $request_output.
type inferOutput struct {
	Name       string                     `json:"name"`
	Parameters map[string]json.RawMessage `json:"parameters"`
}

// responseOutput is the specification's $response_output; data is absent
// when the output travels as binary data after the JSON.
type responseOutput struct {
	Name       string          `json:"name"`
	Datatype   string          `json:"datatype"`
	Shape      []int64         `json:"shape"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// inferResponse is the specification's $inference_response. The id is
// always written (empty when the request gave none), as the text lists it.
type inferResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version,omitempty"`
	ID           string           `json:"id"`
	Parameters   map[string]any   `json:"parameters,omitempty"`
	Outputs      []responseOutput `json:"outputs"`
}

// modelInfer serves POST /v2/models/{name}[/versions/{version}]/infer: the
// JSON request, with binary tensor data after it when the
// Inference-Header-Content-Length header says where the JSON ends, turned
// into a ModelInferRequest with raw contents.
func modelInfer(w http.ResponseWriter, r *http.Request, c oipCall) {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		writeOIPError(w, status.Errorf(codes.InvalidArgument, "Content-Encoding %q is not supported: send the body uncompressed", ce))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeOIPErrorCode(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over the limit of %d bytes", tooBig.Limit))
			return
		}
		if errors.Is(err, server.ErrBodyTimeout) {
			writeOIPErrorCode(w, http.StatusRequestTimeout, err.Error())
			return
		}
		writeOIPError(w, status.Errorf(codes.InvalidArgument, "read the request body: %v", err))
		return
	}
	req, binary, err := parseInfer(body, r.Header.Values(InferHeaderContentLength))
	if err != nil {
		writeOIPError(w, status.Error(codes.InvalidArgument, err.Error()))
		return
	}
	req.ModelName, req.ModelVersion = c.params["name"], c.params["version"]
	resp, err := c.client.ModelInfer(c.ctx, req, c.opts()...)
	if err != nil {
		writeOIPError(w, err)
		return
	}
	head, tail, err := formatInfer(resp, binary)
	if err != nil {
		writeOIPError(w, status.Error(codes.Internal, err.Error()))
		return
	}
	if len(tail) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(head)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(head)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(InferHeaderContentLength, strconv.Itoa(len(head)))
	w.Header().Set("Content-Length", strconv.Itoa(len(head)+len(tail)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(head)
	_, _ = w.Write(tail)
}

func writeOIPErrorCode(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(oipError{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// outputForm says which outputs go back as binary data: each requested
// output's binary_data, else the request's binary_data_output.
type outputForm struct {
	all       bool
	requested []*bool
}

func (f outputForm) binary(i int) bool {
	if i < len(f.requested) && f.requested[i] != nil {
		return *f.requested[i]
	}
	return f.all
}

// parseInfer reads an inference request: its JSON, and the binary data
// after it when headerLength (the Inference-Header-Content-Length values)
// says the JSON is shorter than the body. Every input becomes a
// raw_input_contents entry, checked against its datatype and shape.
func parseInfer(body []byte, headerLength []string) (*oippb.ModelInferRequest, outputForm, error) {
	var form outputForm
	head, rest := body, []byte(nil)
	binaryFramed := len(headerLength) > 0
	if binaryFramed {
		if len(headerLength) > 1 {
			return nil, form, fmt.Errorf("%d %s headers; want one", len(headerLength), InferHeaderContentLength)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(headerLength[0]), 10, 64)
		if err != nil || n < 0 {
			return nil, form, fmt.Errorf("%s %q: want the JSON's length in bytes", InferHeaderContentLength, headerLength[0])
		}
		if n > int64(len(body)) {
			return nil, form, fmt.Errorf("%s %d is past the end of the %d-byte body", InferHeaderContentLength, n, len(body))
		}
		head, rest = body[:n], body[n:]
	}
	if len(strings.TrimSpace(string(head))) == 0 {
		return nil, form, errors.New("the request has no JSON: want the inference request object")
	}
	var ir inferRequest
	if err := json.Unmarshal(head, &ir); err != nil {
		return nil, form, jsonError(err)
	}
	if ir.Inputs == nil {
		return nil, form, errors.New(`"inputs" is required`)
	}
	req := &oippb.ModelInferRequest{}
	if len(ir.ID) > 0 && string(ir.ID) != "null" {
		if err := json.Unmarshal(ir.ID, &req.Id); err != nil {
			return nil, form, fmt.Errorf(`"id" must be a string, not %s`, ir.ID)
		}
	}
	var err error
	if req.Parameters, err = parameters("the request", ir.Parameters, paramBinaryOutput); err != nil {
		return nil, form, err
	}
	if raw, ok := ir.Parameters[paramBinaryOutput]; ok {
		if err := json.Unmarshal(raw, &form.all); err != nil {
			return nil, form, fmt.Errorf("parameter %q must be a boolean", paramBinaryOutput)
		}
	}
	for i, in := range *ir.Inputs {
		t, raw, err := parseInput(i, in, binaryFramed, &rest)
		if err != nil {
			return nil, form, err
		}
		req.Inputs = append(req.Inputs, t)
		req.RawInputContents = append(req.RawInputContents, raw)
	}
	if len(rest) > 0 {
		return nil, form, fmt.Errorf("%d bytes of binary data follow what the inputs' %s parameters account for", len(rest), paramBinarySize)
	}
	for i, o := range ir.Outputs {
		if o.Name == "" {
			return nil, form, fmt.Errorf(`outputs[%d]: "name" is required`, i)
		}
		t := &oippb.ModelInferRequest_InferRequestedOutputTensor{Name: o.Name}
		if t.Parameters, err = parameters(fmt.Sprintf("output %q", o.Name), o.Parameters, paramBinary); err != nil {
			return nil, form, err
		}
		var binary *bool
		if raw, ok := o.Parameters[paramBinary]; ok {
			binary = new(bool)
			if err := json.Unmarshal(raw, binary); err != nil {
				return nil, form, fmt.Errorf("output %q: parameter %q must be a boolean", o.Name, paramBinary)
			}
		}
		form.requested = append(form.requested, binary)
		req.Outputs = append(req.Outputs, t)
	}
	return req, form, nil
}

// parseInput checks one input and returns it with its raw contents: its
// JSON data converted, or its binary data taken from the front of *rest.
func parseInput(i int, in inferInput, binaryFramed bool, rest *[]byte) (*oippb.ModelInferRequest_InferInputTensor, []byte, error) {
	if in.Name == "" {
		return nil, nil, fmt.Errorf(`inputs[%d]: "name" is required`, i)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("input %q: %s", in.Name, fmt.Sprintf(format, args...))
	}
	if in.Datatype == "" {
		return nil, nil, bad(`"datatype" is required`)
	}
	if err := oip.CheckDatatype(in.Datatype); err != nil {
		return nil, nil, bad("%v", err)
	}
	if in.Shape == nil {
		return nil, nil, bad(`"shape" is required`)
	}
	t := &oippb.ModelInferRequest_InferInputTensor{Name: in.Name, Datatype: in.Datatype, Shape: make([]int64, len(*in.Shape))}
	for j, d := range *in.Shape {
		v, err := strconv.ParseInt(string(d), 10, 64)
		if err != nil {
			return nil, nil, bad("shape[%d] is %s; dimensions are integers from 0 to %d", j, d, int64(1<<63-1))
		}
		t.Shape[j] = v
	}
	n, err := oip.Elements(t.Shape)
	if err != nil {
		return nil, nil, bad("%v", err)
	}
	if t.Parameters, err = parameters(fmt.Sprintf("input %q", in.Name), in.Parameters, paramBinarySize); err != nil {
		return nil, nil, err
	}
	sizeRaw, binary := in.Parameters[paramBinarySize]
	hasData := len(in.Data) > 0 && string(in.Data) != "null"
	switch {
	case binary && hasData:
		return nil, nil, bad(`give "data" or a %s parameter, not both`, paramBinarySize)
	case binary:
		size, err := strconv.ParseInt(string(sizeRaw), 10, 64)
		if err != nil || size < 0 {
			return nil, nil, bad("parameter %s is %s; want a byte count", paramBinarySize, sizeRaw)
		}
		if !binaryFramed {
			return nil, nil, bad("has %s, but the request has no %s header saying where the JSON ends and the binary data begins",
				paramBinarySize, InferHeaderContentLength)
		}
		if size > int64(len(*rest)) {
			return nil, nil, bad("%s is %d, but only %d bytes of binary data are left in the body", paramBinarySize, size, len(*rest))
		}
		raw := (*rest)[:size:size]
		*rest = (*rest)[size:]
		if err := oip.CheckRaw(in.Datatype, n, raw); err != nil {
			return nil, nil, bad("binary data of shape %v: %v", t.Shape, err)
		}
		return t, raw, nil
	case hasData:
		raw, err := oip.FromJSON(in.Datatype, in.Data, n)
		if err != nil {
			return nil, nil, bad("%v", err)
		}
		return t, raw, nil
	}
	return nil, nil, bad(`no data: give "data", or a %s parameter and the binary data after the JSON`, paramBinarySize)
}

// parameters converts the specification's $parameters (values a string,
// number or boolean) to the protocol's InferParameter, leaving out the
// binary extension's own parameter (skip), which is the gateway's, and
// refusing shared memory, which this server does not offer.
func parameters(of string, in map[string]json.RawMessage, skip string) (map[string]*oippb.InferParameter, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]*oippb.InferParameter, len(in))
	for k, raw := range in {
		for _, sm := range sharedMemoryParams {
			if k == sm {
				return nil, fmt.Errorf("%s: parameter %q: this server has no shared-memory extension; send the data in the body", of, k)
			}
		}
		if k == skip {
			continue
		}
		p, err := parameter(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: parameter %q: %v", of, k, err)
		}
		out[k] = p
	}
	return out, nil
}

// parameter converts one parameter value: an integer to int64 (uint64
// past its range), another number to double.
func parameter(raw json.RawMessage) (*oippb.InferParameter, error) {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "true" || s == "false":
		return &oippb.InferParameter{ParameterChoice: &oippb.InferParameter_BoolParam{BoolParam: s == "true"}}, nil
	case strings.HasPrefix(s, `"`):
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		return &oippb.InferParameter{ParameterChoice: &oippb.InferParameter_StringParam{StringParam: v}}, nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return &oippb.InferParameter{ParameterChoice: &oippb.InferParameter_Int64Param{Int64Param: v}}, nil
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return &oippb.InferParameter{ParameterChoice: &oippb.InferParameter_Uint64Param{Uint64Param: v}}, nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil && s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') {
		return &oippb.InferParameter{ParameterChoice: &oippb.InferParameter_DoubleParam{DoubleParam: v}}, nil
	}
	return nil, fmt.Errorf("%s is not a string, number or boolean", s)
}

// parameterJSON is the JSON value of a parameter.
func parameterJSON(p *oippb.InferParameter) any {
	switch v := p.GetParameterChoice().(type) {
	case *oippb.InferParameter_BoolParam:
		return v.BoolParam
	case *oippb.InferParameter_Int64Param:
		return v.Int64Param
	case *oippb.InferParameter_Uint64Param:
		return v.Uint64Param
	case *oippb.InferParameter_DoubleParam:
		return v.DoubleParam
	case *oippb.InferParameter_StringParam:
		return v.StringParam
	}
	return nil
}

func parametersJSON(ps map[string]*oippb.InferParameter) map[string]any {
	if len(ps) == 0 {
		return nil
	}
	out := make(map[string]any, len(ps))
	for k, p := range ps {
		out[k] = parameterJSON(p)
	}
	return out
}

// formatInfer writes the response's JSON (head) and the binary data of the
// outputs that form asks for as binary (tail), in output order.
func formatInfer(resp *oippb.ModelInferResponse, form outputForm) (head, tail []byte, err error) {
	out := inferResponse{ModelName: resp.GetModelName(), ModelVersion: resp.GetModelVersion(), ID: resp.GetId(),
		Parameters: parametersJSON(resp.GetParameters()), Outputs: make([]responseOutput, 0, len(resp.GetOutputs()))}
	raws := resp.GetRawOutputContents()
	for i, t := range resp.GetOutputs() {
		n, err := oip.Elements(t.GetShape())
		if err != nil {
			return nil, nil, fmt.Errorf("output %q: %w", t.GetName(), err)
		}
		var raw []byte
		if i < len(raws) {
			raw = raws[i]
		} else if raw, err = oip.RawFromContents(t.GetDatatype(), n, t.GetContents()); err != nil {
			return nil, nil, fmt.Errorf("output %q: %w", t.GetName(), err)
		}
		o := responseOutput{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: nonNil(t.GetShape()), Parameters: parametersJSON(t.GetParameters())}
		if form.binary(i) {
			if err := oip.CheckRaw(t.GetDatatype(), n, raw); err != nil {
				return nil, nil, fmt.Errorf("output %q: %w", t.GetName(), err)
			}
			if o.Parameters == nil {
				o.Parameters = map[string]any{}
			}
			o.Parameters[paramBinarySize] = len(raw)
			tail = append(tail, raw...)
		} else if o.Data, err = oip.AppendJSON(nil, t.GetDatatype(), n, raw); err != nil {
			return nil, nil, fmt.Errorf("output %q: %w", t.GetName(), err)
		}
		out.Outputs = append(out.Outputs, o)
	}
	head, err = json.Marshal(out)
	return head, tail, err
}

// jsonError says what is wrong with a request's JSON in the protocol's
// terms rather than Go's.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("the request is not valid JSON: %v (at byte %d)", syntax, syntax.Offset)
	case errors.As(err, &typ):
		want := "a " + typ.Type.Kind().String()
		switch typ.Type.Kind().String() {
		case "slice":
			want = "an array"
		case "map", "struct", "ptr":
			want = "an object"
		}
		if typ.Type.String() == "json.RawMessage" {
			want = "a value"
		}
		field := typ.Field
		if field == "" {
			field = "the request"
		}
		return fmt.Errorf("%s is a JSON %s; want %s", field, typ.Value, want)
	}
	return fmt.Errorf("the request is not valid JSON: %v", err)
}
