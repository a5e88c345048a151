package inference_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// TestCLIPredictOIPMatchesPredict: `shoal predict --protocol oip`
// preprocesses on the client and calls ModelInfer; its labels and
// probabilities are those of the server's Predict on the same files.
func TestCLIPredictOIPMatchesPredict(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersion(t, "pets", 2, newTestModel(1))
	e.reg.setAlias("pets", "production", 2)
	reg := grpctest.Start(t, e.reg, grpctest.Options{TCP: true})

	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.jpg")
	os.WriteFile(a, imagingtest.PNG(31, 17, 1), 0o600)
	os.WriteFile(b, imagingtest.JPEG(40, 40, 2), 0o600)
	run := func(args ...string) *inferencepb.PredictResponse {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append([]string{"predict", "--addr", e.addr, "-o", "json", "--model", "pets", "--top-k", "3"}, args...)
		if err := cli.Run(t.Context(), append(args, a, b), cli.Env{Stdout: &out, Stderr: &errOut}); err != nil {
			t.Fatalf("Predict(%v) = %v (%s)", args, err, errOut.String())
		}
		var resp inferencepb.PredictResponse
		if err := protojson.Unmarshal(out.Bytes(), &resp); err != nil {
			t.Fatalf("Predict(%v) printed %q: %v", args, out.String(), err)
		}
		return &resp
	}
	for _, version := range []string{"0", "1"} {
		want := run("--version", version)
		got := run("--version", version, "--protocol", "oip", "--registry-addr", reg.Addr)
		if got.GetVersion() != want.GetVersion() || len(got.GetResults()) != 2 {
			t.Fatalf("--version %s: oip answered version %d with %d results; want version %d, 2 results", version, got.GetVersion(), len(got.GetResults()), want.GetVersion())
		}
		for i, r := range want.GetResults() {
			for j, l := range r.GetLabels() {
				g := got.GetResults()[i].GetLabels()[j]
				if g.GetLabel() != l.GetLabel() || math.Abs(float64(g.GetProbability()-l.GetProbability())) > 1e-5 {
					t.Errorf("--version %s image %d rank %d: oip %s %.7f; Predict %s %.7f", version, i, j, g.GetLabel(), g.GetProbability(), l.GetLabel(), l.GetProbability())
				}
			}
		}
	}

	for _, args := range [][]string{
		{"--protocol", "oip", a}, // no --model: the default model is the server's secret
		{"--protocol", "http", "--model", "pets", a},
		{"-o", "xml", "--model", "pets", a},
	} {
		if err := cli.Run(t.Context(), append([]string{"predict", "--addr", e.addr}, args...), cli.Env{Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)}); err == nil {
			t.Errorf("Predict(%v) = nil; want an error", args)
		}
	}
}
