package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/overload"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// result is what a run of the command line printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// runMain runs args as the shoal binary would, with env's streams replaced
// by buffers.
func runMain(t *testing.T, env Env, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	env.Stdout, env.Stderr = &out, &errOut
	code := Main(t.Context(), args, env)
	return result{out.String(), errOut.String(), code}
}

func TestHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"help", "models"}, {"dataset", "--help"}, {"jobs", "ls", "-h"},
		{"models", "alias", "rm", "--help"}, {"train", "--help"},
	} {
		r := runMain(t, Env{}, args...)
		if r.code != ExitOK || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
			t.Errorf("shoal %s = exit %d, stdout %q, stderr %q; want exit 0 and the help on stdout only",
				strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	r := runMain(t, Env{}, "--help")
	for _, want := range []string{"Exit codes:", "3  not found", "6  job failed", "SHOAL_ADDR", "dataset", "jobs", "completion"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("shoal --help lacks %q:\n%s", want, r.stdout)
		}
	}
}

// Command lines that cannot run fail before dialling: exit 2, the message
// once on stderr, then the command's usage; nothing on stdout.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, `missing a command after "shoal"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "shoal"`},
		{[]string{"jbos"}, "did you mean jobs?"},
		{[]string{"dataset"}, `missing a command after "shoal dataset"`},
		{[]string{"dataset", "frobnicate"}, `unknown command "frobnicate" for "shoal dataset"`},
		{[]string{"dataset", "create"}, "shoal dataset create takes 1 argument(s), got 0"},
		{[]string{"dataset", "create", "a", "b"}, "takes 1 argument(s), got 2"},
		{[]string{"dataset", "import", "fish"}, "give NAME PATH, or NAME --bucket B"},
		{[]string{"dataset", "import", "fish", "dir", "--bucket", "b"}, "give NAME PATH"},
		{[]string{"dataset", "upload", "fish"}, "at least 2"},
		{[]string{"dataset", "upload", "fish", "dir", "--test-fraction", "0.2"}, "--test-fraction goes with --split"},
		{[]string{"dataset", "upload", "fish", "dir", "--split", "train", "--test-fraction", "1.5"}, "--test-fraction=1.5"},
		{[]string{"dataset", "ls", "fish", "--split", "dev"}, `split "dev"`},
		{[]string{"dataset", "ls", "-o", "xml"}, `"xml": want table, json or yaml`},
		{[]string{"dataset", "snapshot", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"models", "promote", "fish"}, "takes 2 argument(s)"},
		{[]string{"models", "promote", "fish", "three"}, `version "three"`},
		{[]string{"models", "rm", "fish", "0"}, `version "0"`},
		{[]string{"models", "show"}, "takes 1 to 2 argument(s)"},
		{[]string{"models", "prune", "fish"}, "--keep N is required"},
		{[]string{"models", "alias", "rm", "fish"}, "takes 2 argument(s)"},
		{[]string{"models", "upload", "--size", "8", "m.onnx"}, "--model is required"},
		{[]string{"models", "upload", "--model", "fish", "m.onnx"}, "--size"},
		{[]string{"models", "upload", "--model", "fish", "--size", "8", "--layout", "chwn", "m.onnx"}, "--layout"},
		{[]string{"models", "upload", "--model", "fish", "--size", "8", "--mean", "0.5,x", "m.onnx"}, "--mean"},
		{[]string{"models", "ls", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"predict"}, "at least 1"},
		{[]string{"predict", "--top-k", "0", "a.png"}, "--top-k=0"},
		{[]string{"predict", "--protocol", "http", "a.png"}, `--protocol="http"`},
		{[]string{"train"}, "--dataset is required"},
		{[]string{"train", "--dataset", "fish", "--promote", "sometimes"}, "--promote"},
		{[]string{"train", "--dataset", "fish", "extra"}, "takes 0 argument(s), got 1"},
		{[]string{"jobs", "ls", "--state", "done"}, `--state="done"`},
		{[]string{"jobs", "watch"}, "takes 1 argument(s)"},
		{[]string{"completion", "tcsh"}, `unknown shell "tcsh"`},
		{[]string{"help", "frobnicate"}, `unknown help topic "frobnicate"`},
		{[]string{"help", "dataset", "frobnicate"}, `unknown help topic "dataset frobnicate"`},
		{[]string{"version", "extra"}, "takes 0 argument(s), got 1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runMain(t, Env{}, tt.args...)
			if r.code != ExitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "shoal: ") ||
				!strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("shoal %s = exit %d, stdout %q, stderr %q; want exit %d, %q and the usage on stderr only",
					strings.Join(tt.args, " "), r.code, r.stdout, r.stderr, ExitUsage, tt.want)
			}
			if n := strings.Count(r.stderr, "shoal: "); n != 1 {
				t.Errorf("stderr has %d error lines; want the error printed once:\n%s", n, r.stderr)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitError},
		{usagef("bad"), ExitUsage},
		{fmt.Errorf("wrapped: %w", usagef("bad")), ExitUsage},
		{&jobEndedError{id: "j", state: "FAILED"}, ExitJobFailed},
		{context.DeadlineExceeded, ExitUnavailable},
		{status.Error(codes.NotFound, "x"), ExitNotFound},
		{&rpcError{st: status.New(codes.NotFound, "x")}, ExitNotFound},
		{status.Error(codes.PermissionDenied, "x"), ExitPermission},
		{status.Error(codes.Unauthenticated, "x"), ExitPermission},
		{status.Error(codes.Unavailable, "x"), ExitUnavailable},
		{status.Error(codes.DeadlineExceeded, "x"), ExitUnavailable},
		{overload.Errorf(time.Second, "queue full"), ExitUnavailable},
		{&rpcError{st: status.Convert(overload.Errorf(time.Second, "queue full"))}, ExitUnavailable},
		{status.Error(codes.ResourceExhausted, "archive larger than the limit"), ExitInvalid},
		{status.Error(codes.InvalidArgument, "x"), ExitInvalid},
		{status.Error(codes.AlreadyExists, "x"), ExitConflict},
		{status.Error(codes.FailedPrecondition, "x"), ExitConflict},
		{status.Error(codes.Internal, "x"), ExitError},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d; want %d", tt.err, got, tt.want)
		}
	}
}

// Nothing listens on port 1: the command fails as unavailable, naming the
// address it tried, which SHOAL_ADDR gave.
func TestAddrFromEnvironmentAndUnreachableServer(t *testing.T) {
	env := Env{LookupEnv: func(k string) (string, bool) {
		if k == "SHOAL_ADDR" {
			return "127.0.0.1:1", true
		}
		return "", false
	}}
	r := runMain(t, env, "models", "ls")
	if r.code != ExitUnavailable || !strings.Contains(r.stderr, "cannot reach a Shoal server at 127.0.0.1:1") ||
		strings.Contains(r.stderr, "rpc error") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("SHOAL_ADDR=127.0.0.1:1 shoal models ls = exit %d, stderr %q; want exit %d and one line naming the address",
			r.code, r.stderr, ExitUnavailable)
	}
	// --addr wins over the environment.
	r = runMain(t, env, "models", "ls", "--addr", "127.0.0.1:2")
	if !strings.Contains(r.stderr, "127.0.0.1:2") {
		t.Errorf("shoal models ls --addr 127.0.0.1:2 with SHOAL_ADDR set: stderr %q; want the flag's address", r.stderr)
	}
}

// Deletes need --yes off a terminal, and ask on one.
func TestDeletesNeedConfirmation(t *testing.T) {
	for _, args := range [][]string{{"dataset", "rm", "fish"}, {"models", "rm", "fish"}, {"models", "rm", "fish", "2"}} {
		r := runMain(t, Env{}, args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "pass --yes") || strings.Contains(r.stderr, "Usage:") {
			t.Errorf("shoal %s off a terminal = exit %d, stderr %q; want exit %d, a refusal naming --yes",
				strings.Join(args, " "), r.code, r.stderr, ExitUsage)
		}
	}
	onTerminal := func(answer string) Env {
		return Env{Stdin: strings.NewReader(answer), StdinTerminal: true}
	}
	r := runMain(t, onTerminal("n\n"), "dataset", "rm", "fish", "--addr", "127.0.0.1:1")
	if r.code != ExitError || !strings.Contains(r.stderr, `Delete dataset "fish" with its images and snapshots? [y/N]`) ||
		!strings.Contains(r.stderr, "nothing was deleted") {
		t.Errorf("answering n: exit %d, stderr %q; want the question, then nothing deleted", r.code, r.stderr)
	}
	// Yes goes ahead: here to a server that is not there.
	r = runMain(t, onTerminal("y\n"), "dataset", "rm", "fish", "--addr", "127.0.0.1:1")
	if r.code != ExitUnavailable {
		t.Errorf("answering y: exit %d, stderr %q; want the delete attempted (exit %d with no server)", r.code, r.stderr, ExitUnavailable)
	}
	r = runMain(t, Env{}, "dataset", "rm", "fish", "--yes", "--addr", "127.0.0.1:1")
	if r.code != ExitUnavailable {
		t.Errorf("--yes: exit %d, stderr %q; want the delete attempted (exit %d with no server)", r.code, r.stderr, ExitUnavailable)
	}
}

func TestCompletionAndVersion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := runMain(t, Env{}, "completion", shell)
		if r.code != ExitOK || !strings.Contains(r.stdout, "shoal") || r.stderr != "" {
			t.Errorf("shoal completion %s = exit %d, %d bytes, stderr %q; want a script on stdout", shell, r.code, len(r.stdout), r.stderr)
		}
	}
	r := runMain(t, Env{}, "version")
	if r.code != ExitOK || strings.TrimSpace(r.stdout) == "" {
		t.Errorf("shoal version = exit %d, %q; want the version", r.code, r.stdout)
	}
}

func TestPassthroughGetsItsArguments(t *testing.T) {
	var got []string
	serve := Passthrough{Name: "serve", Short: "run", Run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
		got = args
		return UsageError(errors.New("bad setting"))
	}}
	var out, errOut bytes.Buffer
	code := Main(t.Context(), []string{"serve", "--grpc.listen-address=:1", "-x"}, Env{Stdout: &out, Stderr: &errOut}, serve)
	if code != ExitUsage || strings.Join(got, " ") != "--grpc.listen-address=:1 -x" || errOut.String() != "shoal: bad setting\n" {
		t.Errorf("shoal serve ... = exit %d, args %q, stderr %q; want exit 2, the arguments as given, one error line", code, got, errOut.String())
	}
}

// A deprecated flag still works, and its note goes to stderr, never into
// the output a script parses.
func TestDeprecatedFlagsNoteOnStderr(t *testing.T) {
	r := runMain(t, Env{}, "predict", "--format", "json", "missing.png", "--addr", "127.0.0.1:1")
	if r.stdout != "" || !strings.Contains(r.stderr, "note: --format is deprecated; use -o/--output") {
		t.Errorf("shoal predict --format json = stdout %q, stderr %q; want the note on stderr only", r.stdout, r.stderr)
	}
}
