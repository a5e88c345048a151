package app_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// TestOIPThroughTheWholeProcess: the Open Inference Protocol's REST form on
// a whole process with authentication on: an encoded image sent as
// Triton's client sends BYTES (binary, after the JSON) answers as /predict
// does; the gate's refusals, the body limit and unknown routes come back
// in the protocol's {"error"} form with their statuses; the request id
// comes back as a header.
func TestOIPThroughTheWholeProcess(t *testing.T) {
	cfg := defaults(t)
	cfg.Server.MaxMessageBytes = 4 << 20
	r := start(t, cfg)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+r.admin)
	reg := registrypb.NewRegistryServiceClient(r.grpc)
	stream, err := reg.CreateVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{
		Model: "fish", Labels: []string{"a", "b", "c"},
		InputSpec: &registrypb.InputSpec{Channels: 3, Height: 8, Width: 8, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.5, 0.5}},
	}}})
	stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{
		Chunk: onnxtest.Classifier{Channels: 3, Height: 8, Width: 8, Classes: 3}.Bytes()}})
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("CreateVersion() = %v", err)
	}
	reader := createToken(t, r, "reader", authpb.Scope_SCOPE_READ)
	img := imagingtest.PNG(11, 7, 3)

	// The body and header Triton's client writes for one BYTES input and
	// the default binary outputs (see services/inference's
	// tritonclient_test.go for the derivation).
	head := `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":` + strconv.Itoa(4+len(img)) +
		`}}],"parameters":{"binary_data_output":true}}`
	body := append([]byte(head), binary.LittleEndian.AppendUint32(nil, uint32(len(img)))...)
	body = append(body, img...)
	post := func(path, secret string, body []byte, header map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.http+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	framing := map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(head))}

	resp, b := post("/v2/models/fish/versions/1/infer", "", body, framing)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("anonymous POST infer = %d %q (X-Request-Id %q); want 200 with a request id", resp.StatusCode, b, resp.Header.Get("X-Request-Id"))
	}
	n, err := strconv.Atoi(resp.Header.Get("Inference-Header-Content-Length"))
	if err != nil || n+12 != len(b) {
		t.Fatalf("response framing: header %q, %d bytes; want the JSON then 3 FP32 values", resp.Header.Get("Inference-Header-Content-Length"), len(b))
	}
	if !strings.Contains(string(b[:n]), `"binary_data_size":12`) {
		t.Errorf("response JSON %s: want binary_data_size 12", b[:n])
	}
	probs := make([]float64, 3)
	for i := range probs {
		probs[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[n+4*i:])))
	}

	code, predicted := postImage(t, http.DefaultClient, r.http+"/predict?model=fish&version=1", img)
	var answer struct {
		TopK []struct {
			Index       int     `json:"index"`
			Probability float64 `json:"probability"`
		} `json:"top_k"`
	}
	if err := json.Unmarshal([]byte(predicted), &answer); err != nil || code != http.StatusOK || len(answer.TopK) != 3 {
		t.Fatalf("POST /predict = %d %s", code, predicted)
	}
	for _, l := range answer.TopK {
		if math.Abs(probs[l.Index]-l.Probability) > 1e-5 {
			t.Errorf("class %d: /v2 infer %v, /predict %v", l.Index, probs[l.Index], l.Probability)
		}
	}

	for _, tt := range []struct {
		name, path, secret string
		body               []byte
		header             map[string]string
		code               int
		msg                string
	}{
		{"unknown token", "/v2/models/fish/versions/1/infer", "shoal_not-a-real-token", body, framing, http.StatusUnauthorized, ""},
		{"a token without the predict scope", "/v2/models/fish/versions/1/infer", reader, body, framing, http.StatusForbidden, "predict"},
		{"over the body limit", "/v2/models/fish/infer", "", bytes.Repeat([]byte("x"), 5<<20), nil, http.StatusRequestEntityTooLarge, "over the limit"},
		{"an unknown route", "/v2/repository/index", "", []byte("{}"), nil, http.StatusNotFound, "not part of the Open Inference Protocol"},
		{"truncated binary data", "/v2/models/fish/versions/1/infer", "", body[:len(body)-10], framing, http.StatusBadRequest, "bytes of binary data are left"},
	} {
		resp, b := post(tt.path, tt.secret, tt.body, tt.header)
		var e struct {
			Error *string `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error == nil || resp.StatusCode != tt.code || !strings.Contains(*e.Error, tt.msg) {
			t.Errorf("%s: POST %s = %d %.300s; want %d {\"error\": ...%s...}", tt.name, tt.path, resp.StatusCode, b, tt.code, tt.msg)
		}
	}
	if code, body := httpGet(t, r.http+"/v2"); code != http.StatusOK || !strings.Contains(body, `"extensions":["binary_tensor_data","classification","shoal_encoded_images"]`) {
		t.Errorf("GET /v2 = %d %s; want the server metadata with its extensions", code, body)
	}
}
