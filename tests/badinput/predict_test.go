package badinput

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/badinput"
)

// The predict and model-upload paths.

// The predict paths name the model and its version, so that every call
// runs the same version whatever the aliases say.
const (
	modelName    = "fish"
	modelVersion = 1
)

func predictForm(ctx context.Context, s *server, c caseInput) (result, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", c.k.File.Name)
	if err != nil {
		return result{}, err
	}
	fw.Write(c.k.File.Data)
	mw.Close()
	r, b, err := s.postJSON(ctx, fmt.Sprintf("/predict?model=%s&version=%d&top_k=3", modelName, modelVersion), mw.FormDataContentType(), &body, nil)
	if err != nil || r.httpStatus != http.StatusOK {
		return r, err
	}
	var ok struct {
		TopK []struct {
			Index       int     `json:"index"`
			Probability float64 `json:"probability"`
		} `json:"top_k"`
	}
	if err := json.Unmarshal(b, &ok); err != nil {
		return r, fmt.Errorf("200 with %q: %w", b, err)
	}
	r.probs = make([]float64, len(badinput.ModelLabels))
	for _, l := range ok.TopK {
		r.probs[l.Index] = l.Probability
	}
	return r, nil
}

func predictGRPC(ctx context.Context, s *server, c caseInput) (result, error) {
	return predictImage(ctx, s, c.k.File.Data), nil
}

// predictImage classifies img with Predict and returns every class's
// probability.
func predictImage(ctx context.Context, s *server, img []byte) result {
	resp, err := s.inference.Predict(ctx, &inferencepb.PredictRequest{Model: modelName, Version: modelVersion, Images: [][]byte{img}, TopK: 3})
	r := grpcResult(err)
	if err == nil {
		r.probs = make([]float64, len(badinput.ModelLabels))
		for _, l := range resp.GetResults()[0].GetLabels() {
			r.probs[l.GetIndex()] = float64(l.GetProbability())
		}
	}
	return r
}

func predictREST(ctx context.Context, s *server, c caseInput) (result, error) {
	body := fmt.Sprintf(`{"version":%d,"images":["%s"],"topK":3}`, modelVersion, base64.StdEncoding.EncodeToString(c.k.File.Data))
	r, b, err := s.postJSON(ctx, "/v1/models/"+modelName+":predict", "application/json", strings.NewReader(body), nil)
	if err != nil || r.httpStatus != http.StatusOK {
		return r, err
	}
	var ok struct {
		Results []struct {
			Labels []struct {
				Index       int     `json:"index"`
				Probability float64 `json:"probability"`
			} `json:"labels"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &ok); err != nil || len(ok.Results) != 1 {
		return r, fmt.Errorf("200 with %q: %v", b, err)
	}
	r.probs = make([]float64, len(badinput.ModelLabels))
	for _, l := range ok.Results[0].Labels {
		r.probs[l.Index] = l.Probability
	}
	return r, nil
}

func inferRequest(img []byte, raw bool) *oippb.ModelInferRequest {
	req := &oippb.ModelInferRequest{ModelName: modelName, ModelVersion: strconv.Itoa(modelVersion),
		Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "input", Datatype: "BYTES", Shape: []int64{1}}}}
	if raw {
		req.RawInputContents = [][]byte{append(binary.LittleEndian.AppendUint32(nil, uint32(len(img))), img...)}
	} else {
		req.Inputs[0].Contents = &oippb.InferTensorContents{BytesContents: [][]byte{img}}
	}
	return req
}

func inferAnswer(resp *oippb.ModelInferResponse, err error) result {
	r := grpcResult(err)
	if err != nil {
		return r
	}
	out := resp.GetOutputs()[0]
	if raws := resp.GetRawOutputContents(); len(raws) > 0 {
		for i := 0; i+4 <= len(raws[0]); i += 4 {
			r.probs = append(r.probs, float64(math.Float32frombits(binary.LittleEndian.Uint32(raws[0][i:]))))
		}
		return r
	}
	for _, v := range out.GetContents().GetFp32Contents() {
		r.probs = append(r.probs, float64(v))
	}
	return r
}

func inferTyped(ctx context.Context, s *server, c caseInput) (result, error) {
	return inferAnswer(s.oip.ModelInfer(ctx, inferRequest(c.k.File.Data, false))), nil
}

func inferRaw(ctx context.Context, s *server, c caseInput) (result, error) {
	return inferAnswer(s.oip.ModelInfer(ctx, inferRequest(c.k.File.Data, true))), nil
}

// inferREST sends the image as Triton's client sends a BYTES input: the
// JSON, then the element's 4-byte length and bytes.
func inferREST(ctx context.Context, s *server, c caseInput) (result, error) {
	img := c.k.File.Data
	head := fmt.Sprintf(`{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":%d}}]}`, 4+len(img))
	body := append([]byte(head), binary.LittleEndian.AppendUint32(nil, uint32(len(img)))...)
	body = append(body, img...)
	r, b, err := s.postJSON(ctx, fmt.Sprintf("/v2/models/%s/versions/%d/infer", modelName, modelVersion), "application/octet-stream",
		bytes.NewReader(body), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(head))})
	if err != nil || r.httpStatus != http.StatusOK {
		return r, err
	}
	var ok struct {
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b, &ok); err != nil || len(ok.Outputs) != 1 {
		return r, fmt.Errorf("200 with %q: %v", b, err)
	}
	r.probs = ok.Outputs[0].Data
	return r, nil
}

func modelCLI(ctx context.Context, s *server, c caseInput) (result, error) {
	p := filepath.Join(c.dir, c.k.Model.Name)
	if err := os.WriteFile(p, c.k.Model.Data, 0o644); err != nil {
		return result{}, err
	}
	return runCLI(ctx, s, "models", "upload", "--model", modelName, "--size", "8", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", p), nil
}

func modelREST(ctx context.Context, s *server, c caseInput) (result, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `{"spec":{"model":%q,"inputSpec":{"channels":3,"height":8,"width":8,"mean":[0.5,0.5,0.5],"std":[0.5,0.5,0.5]}}}`+"\n", modelName)
	if len(c.k.Model.Data) > 0 {
		fmt.Fprintf(&b, `{"chunk":"%s"}`+"\n", base64.StdEncoding.EncodeToString(c.k.Model.Data))
	}
	r, _, err := s.postJSON(ctx, "/v1/versions:upload", "application/json", strings.NewReader(b.String()), nil)
	return r, err
}
