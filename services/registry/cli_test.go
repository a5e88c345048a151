package registry_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// TestCLI runs `shoal models ...` against a real registry.
func TestCLI(t *testing.T) {
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	file := filepath.Join(t.TempDir(), "fish.onnx")
	if err := os.WriteFile(file, classifier(5, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cli.Models(t.Context(), append(args, "--addr", e.addr), &out, &errOut)
		return out.String(), err
	}
	steps := []struct {
		args []string
		want []string // substrings of the output
		code codes.Code
	}{
		{[]string{"upload", "--model", "fish", "--labels", strings.Join(fish, ","), "--channels", "3", "--size", "8",
			"--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--architecture", "resnet18", "--creator", "alice", file},
			[]string{"created fish version 1 (sha256:" + sha(classifier(5, 1))}, codes.OK},
		{[]string{"upload", "--model", "fish", "--size", "8", file}, []string{"created fish version 2"}, codes.OK},
		{[]string{"upload", "--model", "fish", "--labels", "a,b", "--size", "8", file}, nil, codes.InvalidArgument},
		{[]string{"promote", "fish", "1"}, []string{"fish@production -> version 1"}, codes.OK},
		{[]string{"promote", "fish", "2", "--alias", "staging"}, []string{"fish@staging -> version 2"}, codes.OK},
		{[]string{"ls"}, []string{"NAME", "LATEST", "fish", "production=1,staging=2"}, codes.OK},
		{[]string{"ls", "fish"}, []string{"VERSION", "ALIASES", "1        production", "resnet18", "alice"}, codes.OK},
		{[]string{"show", "fish"}, []string{"labels:", "Catfish, Gold Fish, Mudfish", "latest version:  2"}, codes.OK},
		{[]string{"show", "fish", "production"}, []string{"version:", "1", "NCHW, 3 channels, 8×8", "input -> output (logits)"}, codes.OK},
		{[]string{"rm", "fish", "1"}, nil, codes.FailedPrecondition},
		{[]string{"show", "fish", "9"}, nil, codes.NotFound},
		{[]string{"promote", "fish", "2"}, []string{"fish@production -> version 2"}, codes.OK},
		{[]string{"rm", "fish", "1"}, []string{"deleted fish version 1"}, codes.OK},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		if status.Code(err) != s.code {
			t.Fatalf("shoal models %s = %v; want %v", strings.Join(s.args, " "), err, s.code)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("shoal models %s printed:\n%s\nwant it to contain %q", strings.Join(s.args, " "), out, w)
			}
		}
	}
}
