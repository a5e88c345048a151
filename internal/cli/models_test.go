package cli

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

// Commands that fail before dialling: usage and flag errors. The commands
// against a real registry are tested in services/registry (cli_test.go).
func TestModelsArgumentErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"promote", "fish"}, "usage: shoal models promote"},
		{[]string{"promote", "fish", "three"}, `version "three"`},
		{[]string{"rm", "fish", "0"}, `version "0"`},
		{[]string{"show"}, "usage: shoal models show"},
		{[]string{"upload", "--size", "8", "m.onnx"}, "--model is required"},
		{[]string{"upload", "--model", "fish", "m.onnx"}, "--size"},
		{[]string{"upload", "--model", "fish", "--size", "8", "--layout", "chwn", "m.onnx"}, "--layout"},
		{[]string{"upload", "--model", "fish", "--size", "8", "--mean", "0.5,x", "m.onnx"}, "--mean"},
		{[]string{"upload", "--model", "fish", "--size", "8", "/nonexistent/m.onnx"}, "no such file"},
		{[]string{"ls", "--bogus"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Models(t.Context(), tt.args, &out, &errOut)
			if tt.want == "" {
				if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "Usage: shoal models") {
					t.Errorf("Models(%q) = %v, stderr %q; want ErrHelp and the usage", tt.args, err, errOut.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Models(%q) = %v; want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestUploadSpec(t *testing.T) {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	u := registerUploadFlags(fs)
	pos, err := parseInterleaved(fs, []string{"--model", "fish", "--labels", "Catfish, Gold Fish", "m.onnx",
		"--size", "224", "--width", "200", "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225",
		"--layout", "NHWC", "--resize", "center-crop", "--probabilities"})
	if err != nil || !slices.Equal(pos, []string{"m.onnx"}) {
		t.Fatalf("parseInterleaved() = %v, %v; want [m.onnx]", pos, err)
	}
	s, err := u.spec()
	if err != nil {
		t.Fatal(err)
	}
	in := s.GetInputSpec()
	if s.GetModel() != "fish" || !slices.Equal(s.GetLabels(), []string{"Catfish", "Gold Fish"}) ||
		in.GetHeight() != 224 || in.GetWidth() != 200 || in.GetChannels() != 3 || len(in.GetMean()) != 3 || in.GetStd()[2] != 0.225 ||
		in.GetLayout() != registrypb.TensorLayout_TENSOR_LAYOUT_NHWC || in.GetResizeMode() != registrypb.ResizeMode_RESIZE_MODE_CENTER_CROP ||
		!in.GetOutputIsProbabilities() {
		t.Errorf("spec() = %v", s)
	}
}
