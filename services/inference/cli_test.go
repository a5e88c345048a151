package inference_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	os.WriteFile(a, imagingtest.PNG(5, 5, 1), 0o600)
	os.WriteFile(b, imagingtest.JPEG(9, 5, 2), 0o600)
	os.WriteFile(bad, []byte("text"), 0o600)

	tests := []struct {
		name string
		args []string
		want []string
		exit int
	}{
		{"default model", []string{a, b}, []string{"pets v1", "a.png", "b.jpg", "PROBABILITY"}, cli.ExitOK},
		{"version and top-k", []string{"--model", "pets", a, "--version", "2", "--top-k", "1"}, []string{"pets v2", "a.png"}, cli.ExitOK},
		{"bad image", []string{bad}, nil, cli.ExitInvalid},
		{"unknown model", []string{"--model", "nope", a}, nil, cli.ExitNotFound},
		{"json", []string{"-o", "json", a}, []string{`"model":`, `"labels":`}, cli.ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := cli.Run(t.Context(), append([]string{"predict", "--addr", e.addr}, tt.args...), cli.Env{Stdout: &out, Stderr: &errOut})
			if got := cli.ExitCode(err); got != tt.exit {
				t.Fatalf("shoal predict %v = %v (exit %d); want exit %d", tt.args, err, got, tt.exit)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("output %q lacks %q", out.String(), w)
				}
			}
		})
	}
	if err := cli.Run(t.Context(), []string{"predict"}, cli.Env{Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)}); cli.ExitCode(err) != cli.ExitUsage {
		t.Fatalf("shoal predict with no images = %v; want a usage error", err)
	}
}
