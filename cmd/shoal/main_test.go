package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/cli"
)

// TestMain lets a test run this binary's main as a process of its own: the
// test executable re-runs itself with SHOAL_TEST_RUN_MAIN set.
func TestMain(m *testing.M) {
	if os.Getenv("SHOAL_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"shoal"}, os.Args[1:]...)
		main()
	}
	os.Exit(m.Run())
}

// shoal runs the binary's main with args, its stdout and stderr pipes (not
// terminals), and returns what it printed and its exit code.
func shoal(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SHOAL_TEST_RUN_MAIN=1", "SHOAL_ADDR=127.0.0.1:1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// The process keeps the conventions: help on stdout with exit 0, a usage
// error on stderr with exit 2, a server's answer as one line with the code
// of its class.
func TestProcessExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // substrings; "" for nothing at all
	}{
		{[]string{"--help"}, cli.ExitOK, "Exit codes:", ""},
		{[]string{"help", "serve"}, cli.ExitOK, "Usage: shoal serve [flags]", ""},
		{[]string{"serve", "--help"}, cli.ExitOK, "-grpc.listen-address string", ""},
		{[]string{"srve"}, cli.ExitUsage, "", `shoal: unknown command "srve" for "shoal"; did you mean serve?`},
		{[]string{"serve", "--bogus"}, cli.ExitUsage, "", "shoal: flag provided but not defined: -bogus"},
		{[]string{"dataset", "ls"}, cli.ExitUnavailable, "", "shoal: cannot reach a Shoal server at 127.0.0.1:1 (set --addr or SHOAL_ADDR)"},
		{[]string{"dataset", "rm", "fish"}, cli.ExitUsage, "", "pass --yes"},
	} {
		stdout, stderr, code := shoal(t, tc.args...)
		if code != tc.code || (tc.stdout == "") != (stdout == "") || !strings.Contains(stdout, tc.stdout) ||
			(tc.stderr == "") != (stderr == "") || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("shoal %s = exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(tc.args, " "), code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}

func TestServeRefusesUnshareableStorageWhenSplit(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"serve", "--target=inference", "--clients.registry-address=registry:9090"}, &stdout, &stderr)
	if err == nil {
		t.Fatal("serve --target=inference on local blobs = nil error; want a configuration error")
	}
	for _, want := range []string{"invalid configuration", "--blob.backend=local", "--target=inference", "--blob.backend=s3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to contain %q", err, want)
		}
	}
}

func TestPrintConfigMasksSecrets(t *testing.T) {
	t.Setenv("SHOAL_BLOB_S3_SECRET_KEY", "hunter2")
	t.Setenv("SHOAL_DB_DSN", "postgres://shoal:pa55@db/shoal")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"serve", "--print-config", "--db.driver=postgres"}, &stdout, &stderr); err != nil {
		t.Fatalf("serve --print-config = %v; stderr %s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"driver: postgres", "secret-key: '****'", "dsn: postgres://shoal:xxxxx@db/shoal"} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config output lacks %q:\n%s", want, out)
		}
	}
	for _, leak := range []string{"hunter2", "pa55", "print-config", "check-config"} {
		if strings.Contains(out, leak) {
			t.Errorf("--print-config output contains %q:\n%s", leak, out)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"srve"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), `unknown command "srve"`) {
		t.Errorf("run(srve) = %v; want unknown command", err)
	}
}

// The README's configuration table documents every setting.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cfg app.Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !bytes.Contains(readme, []byte("`"+f.Name+"`")) {
			t.Errorf("README.md does not document the setting `%s` (%s)", f.Name, f.Usage)
		}
	})
}

func TestCheckConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"serve", "--check-config"}, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "valid") {
		t.Errorf("serve --check-config on defaults = %v, %q; want valid", err, stdout.String())
	}
	if err := run(t.Context(), []string{"serve", "--check-config", "--db.driver=oracle"}, &stdout, &stderr); err == nil {
		t.Error("serve --check-config --db.driver=oracle = nil; want an error")
	}
}
