package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// uploadVersion registers a small ONNX classifier whose weights come from
// seed as the next version of model.
func uploadVersion(t *testing.T, r running, model string, seed byte) *registrypb.Version {
	t.Helper()
	stream, err := registrypb.NewRegistryServiceClient(r.grpc).CreateVersion(bearerCtx(t.Context(), r.admin))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{
		Model: model, Labels: []string{"a", "b", "c"},
		InputSpec: &registrypb.InputSpec{Channels: 3, Height: 8, Width: 8, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.5, 0.5}},
	}}})
	_ = stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{
		Chunk: onnxtest.Classifier{Channels: 3, Height: 8, Width: 8, Classes: 3, WeightsFromSeed: seed}.Bytes()}})
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("CreateVersion(%s) = %v", model, err)
	}
	return resp.GetVersion()
}

// TestPromoteWaitWithOneReplica: in one process, `shoal models promote
// --wait` returns once the process's Inference serves the version, and
// fails naming the replica and its load error when it cannot load it;
// `shoal models rollout` and REST show the same.
func TestPromoteWaitWithOneReplica(t *testing.T) {
	cfg := defaults(t)
	r := start(t, cfg)
	shoal := func(args ...string) (string, int) {
		t.Helper()
		var out bytes.Buffer
		env := cli.Env{Stdout: &out, Stderr: &out, LookupEnv: func(k string) (string, bool) {
			if k == "SHOAL_TOKEN" {
				return r.admin, true
			}
			return "", false
		}}
		code := cli.Main(t.Context(), append(args, "--addr", r.addr, "--timeout", "1m"), env)
		return out.String(), code
	}
	model := cfg.Inference.DefaultModel
	uploadVersion(t, r, model, 1)
	broken := uploadVersion(t, r, model, 2)
	// The replica's name: host name, process id and four random characters.
	replica := regexp.MustCompile(fmt.Sprintf(`-%d-[A-Z2-7]{4}: serving version 1`, os.Getpid()))

	out, code := shoal("models", "promote", model, "1", "--wait")
	if code != cli.ExitOK || !replica.MatchString(out) ||
		!strings.Contains(out, "version 1 is served by every replica that follows it (1 replica)") {
		t.Fatalf("shoal models promote %s 1 --wait = %d\n%s\nwant exit 0 once this process's replica serves version 1", model, code, out)
	}
	loaded, err := inferencepb.NewInferenceServiceClient(r.grpc).ListLoadedModels(t.Context(), &inferencepb.ListLoadedModelsRequest{})
	if err != nil || !slices.ContainsFunc(loaded.GetModels(), func(m *inferencepb.LoadedModel) bool {
		return m.GetModel() == model && m.GetVersion() == 1 && m.GetReady() && slices.Contains(m.GetAliases(), "production")
	}) {
		t.Fatalf("ListLoadedModels() right after promote --wait = %v, %v; want %s v1 ready for production", loaded, err, model)
	}

	// Version 2's artifact is gone from the blob store: it cannot load.
	blobs, err := blob.NewLocal(cfg.Blob.Local.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Delete(t.Context(), broken.GetArtifact().GetBlobKey()); err != nil {
		t.Fatal(err)
	}
	out, code = shoal("models", "promote", model, "2", "--wait")
	if code != cli.ExitConflict || !strings.Contains(out, "1 of 1 replica did not load version 2") ||
		!strings.Contains(out, "load failed") || !strings.Contains(out, "artifact is missing") || !strings.Contains(out, "still serving version 1") {
		t.Errorf("shoal models promote %s 2 --wait with its artifact gone = %d\n%s\nwant exit %d naming the replica, its load error and version 1",
			model, code, out, cli.ExitConflict)
	}
	out, code = shoal("models", "rollout", model)
	if code != cli.ExitOK || !strings.Contains(out, "failed to load") || !strings.Contains(out, "artifact is missing") {
		t.Errorf("shoal models rollout %s = %d\n%s\nwant the failed load", model, code, out)
	}

	// REST streams the same as newline-delimited JSON, and ends.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.http+"/v1/rollouts:watch?model="+model, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	var msg struct {
		Result struct {
			Phase    string `json:"phase"`
			Replicas []struct {
				State string `json:"state"`
				Error string `json:"error"`
			} `json:"replicas"`
		} `json:"result"`
	}
	if len(lines) == 1 {
		_ = json.Unmarshal([]byte(lines[0]), &msg)
	}
	if got := msg.Result; resp.StatusCode != http.StatusOK || got.Phase != "ROLLOUT_PHASE_FAILED" || len(got.Replicas) != 1 ||
		got.Replicas[0].State != "SERVING_STATE_FAILED" || !strings.Contains(got.Replicas[0].Error, "artifact is missing") {
		t.Errorf("GET /v1/rollouts:watch = %d %q; want one line, the failed rollout", resp.StatusCode, lines)
	}
}
