package registry_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		err := cli.Run(t.Context(), append(append([]string{"models"}, args...), "--addr", e.addr), cli.Env{Stdout: &out, Stderr: &errOut})
		return out.String(), err
	}
	steps := []struct {
		args []string
		want []string // substrings of the output, in order
		exit int
	}{
		{[]string{"upload", "--model", "fish", "--labels", strings.Join(fish, ","), "--channels", "3", "--size", "8",
			"--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--architecture", "resnet18", "--creator", "alice", file},
			[]string{"created fish version 1 (sha256:" + sha(classifier(5, 1))}, cli.ExitOK},
		{[]string{"upload", "--model", "fish", "--size", "8", file}, []string{"created fish version 2"}, cli.ExitOK},
		{[]string{"upload", "--model", "fish", "--size", "8", file}, []string{"created fish version 3"}, cli.ExitOK},
		{[]string{"upload", "--model", "fish", "--size", "8", file}, []string{"created fish version 4"}, cli.ExitOK},
		{[]string{"upload", "--model", "fish", "--labels", "a,b", "--size", "8", file}, nil, cli.ExitInvalid},
		{[]string{"promote", "fish", "1"}, []string{"fish@production -> version 1"}, cli.ExitOK},
		{[]string{"promote", "fish", "2", "--alias", "staging"}, []string{"fish@staging -> version 2"}, cli.ExitOK},
		{[]string{"ls"}, []string{"NAME", "LATEST", "fish", "production=1,staging=2"}, cli.ExitOK},
		// Versions an alias points at first, then the rest; each newest first.
		{[]string{"ls", "fish"}, []string{"VERSION", "ALIASES", "\n2        staging", "\n1        production", "resnet18", "alice", "\n4 ", "\n3 "}, cli.ExitOK},
		{[]string{"show", "fish"}, []string{"labels:", "Catfish, Gold Fish, Mudfish", "latest version:  4"}, cli.ExitOK},
		{[]string{"show", "fish", "production"}, []string{"version:", "1", "NCHW, 3 channels, 8×8, resize stretch, mean [0.485 0.456 0.406]", "input -> output (logits)"}, cli.ExitOK},
		{[]string{"show", "fish", "2"}, []string{"NCHW, 3 channels, 8×8, resize stretch, no normalisation"}, cli.ExitOK},
		{[]string{"rm", "fish", "1", "--yes"}, nil, cli.ExitConflict},
		{[]string{"show", "fish", "9"}, nil, cli.ExitNotFound},
		{[]string{"alias", "rm", "fish", "staging"}, []string{"deleted alias fish@staging"}, cli.ExitOK},
		{[]string{"alias", "rm", "fish", "staging"}, nil, cli.ExitNotFound},
		{[]string{"alias", "ls", "fish"}, []string{"ALIAS", "production  1"}, cli.ExitOK},
		{[]string{"promote", "fish", "2"}, []string{"fish@production -> version 2"}, cli.ExitOK},
		{[]string{"rm", "fish", "1"}, nil, cli.ExitUsage}, // off a terminal, without --yes
		{[]string{"show", "fish", "1"}, []string{"version:"}, cli.ExitOK},
		{[]string{"rm", "fish", "1", "--yes"}, []string{"deleted fish version 1"}, cli.ExitOK},
		// Left: 2 (production), 3, 4. Keeping the newest spares 4; 2 is aliased.
		{[]string{"prune", "fish", "--keep", "1", "--dry-run"}, []string{"would delete 1 version of fish: 3"}, cli.ExitOK},
		{[]string{"prune", "fish", "--keep", "1"}, nil, cli.ExitUsage},
		{[]string{"prune", "fish", "--keep", "1", "--yes"}, []string{"deleted fish version 3"}, cli.ExitOK},
		{[]string{"prune", "fish", "--keep", "0", "--yes"}, []string{"deleted fish version 4"}, cli.ExitOK},
		{[]string{"prune", "fish", "--keep", "0", "--yes"}, []string{"nothing to prune: fish has 1 version"}, cli.ExitOK},
		{[]string{"ls", "fish", "-o", "yaml"}, []string{"versions:", "version: 2", "aliases:", "- production"}, cli.ExitOK},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		if got := cli.ExitCode(err); got != s.exit {
			t.Fatalf("shoal models %s = %v (exit %d); want exit %d", strings.Join(s.args, " "), err, got, s.exit)
		}
		rest := out
		for _, w := range s.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("shoal models %s printed:\n%s\nwant it to contain %q (after the lines before it)", strings.Join(s.args, " "), out, w)
				break
			}
			rest = rest[i+len(w):]
		}
	}

	// A model that is not there: the not-found exit code, one line on stderr.
	var out, errOut bytes.Buffer
	code := cli.Main(t.Context(), []string{"models", "show", "nope", "--addr", e.addr}, cli.Env{Stdout: &out, Stderr: &errOut})
	if code != cli.ExitNotFound || errOut.String() != "shoal: model \"nope\" not found\n" || out.Len() != 0 {
		t.Errorf("shoal models show nope = exit %d, stdout %q, stderr %q; want exit %d and the status message once",
			code, out.String(), errOut.String(), cli.ExitNotFound)
	}
	out.Reset()
	if err := cli.Run(t.Context(), []string{"models", "show", "fish", "production", "-o", "json", "--addr", e.addr}, cli.Env{Stdout: &out, Stderr: &out}); err != nil || !json.Valid(out.Bytes()) {
		t.Errorf("shoal models show fish production -o json = %v, %q; want valid JSON", err, out.String())
	}
}
