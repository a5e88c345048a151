package inference_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

func TestCLIPredict(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addVersion(t, "pets", 1, newTestModel(0))
	e.addVersion(t, "pets", 2, newTestModel(1))
	e.reg.setAlias("pets", "production", 1)
	dir := t.TempDir()
	a, b, bad := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.jpg"), filepath.Join(dir, "bad.png")
	os.WriteFile(a, imagingtest.PNG(5, 5, 1), 0o600)  //nolint:errcheck // checked by the command
	os.WriteFile(b, imagingtest.JPEG(9, 5, 2), 0o600) //nolint:errcheck
	os.WriteFile(bad, []byte("text"), 0o600)          //nolint:errcheck

	tests := []struct {
		name string
		args []string
		want []string
		code codes.Code
	}{
		{"default model", []string{a, b}, []string{"pets v1", "a.png", "b.jpg", "PROBABILITY"}, codes.OK},
		{"version and top-k", []string{"--model", "pets", a, "--version", "2", "--top-k", "1"}, []string{"pets v2", "a.png"}, codes.OK},
		{"bad image", []string{bad}, nil, codes.InvalidArgument},
		{"unknown model", []string{"--model", "nope", a}, nil, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := cli.Predict(t.Context(), append([]string{"--addr", e.addr}, tt.args...), &out, &errOut)
			if status.Code(err) != tt.code {
				t.Fatalf("Predict(%v) = %v; want %v", tt.args, err, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("output %q lacks %q", out.String(), w)
				}
			}
		})
	}
	if err := cli.Predict(t.Context(), nil, new(bytes.Buffer), new(bytes.Buffer)); err == nil {
		t.Fatal("Predict() with no images = nil; want an error")
	}
}
