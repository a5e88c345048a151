// Package readme runs the README's command blocks against a running
// server, so that what the README shows keeps working: scripts/readme-test.sh
// (run by make test) starts the platform the way make run does and runs
// TestREADMECommands against it.
//
// Every ```sh or ```bash block runs, in the README's order, as a bash
// script with -euo pipefail in the folder the server runs in (its ./data
// is what make run leaves), with these rewrites, and nothing else:
//   - localhost:8080 and localhost:9090 become the server's HTTP and gRPC
//     addresses (SHOAL_ADDR is set to the latter, for the shoal commands);
//   - shoal is the binary under test, first on the PATH;
//   - curl runs with --fail-with-body --silent --show-error (a .curlrc in
//     CURL_HOME), so an HTTP error fails the block;
//   - variables and aliases a block defines are kept for the blocks after
//     it, as in one terminal;
//   - the repository's top-level files and folders (go.mod, examples, ...)
//     are linked into the folder, as the README's commands run in the
//     repository, where make run keeps ./data.
//
// A block fails when it exits non-zero or when its output (stdout and
// stderr) lacks the lines its "#   " comments show. A block preceded by
// <!-- readme-test: skip (reason) --> does not run.
package readme

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The environment that points the test at a server; without it the test
// skips.
const (
	envDir  = "SHOAL_README_DIR"  // the folder the server runs in
	envGRPC = "SHOAL_README_GRPC" // its gRPC address, host:port
	envHTTP = "SHOAL_README_HTTP" // its HTTP address, host:port
	envBin  = "SHOAL_README_BIN"  // the folder holding the shoal binary
)

// blockTimeout bounds one block; the longest train a model.
const blockTimeout = 5 * time.Minute

func TestREADMECommands(t *testing.T) {
	dir, grpcAddr, httpAddr, bin := os.Getenv(envDir), os.Getenv(envGRPC), os.Getenv(envHTTP), os.Getenv(envBin)
	if dir == "" || grpcAddr == "" || httpAddr == "" || bin == "" {
		t.Skipf("needs a server: set %s, %s, %s and %s (scripts/readme-test.sh does)", envDir, envGRPC, envHTTP, envBin)
	}
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := shellBlocks(string(text))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	linkRepository(t, dir)

	state := filepath.Join(t.TempDir(), "state.sh")
	curlHome := t.TempDir()
	write(t, filepath.Join(curlHome, ".curlrc"), "fail-with-body\nsilent\nshow-error\n")
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SHOAL_ADDR="+grpcAddr,
		"CURL_HOME="+curlHome,
		"README_STATE="+state,
	)
	write(t, state, "")
	known := shellVariables(t, dir, env)
	rewrite := strings.NewReplacer("localhost:8080", httpAddr, "localhost:9090", grpcAddr)

	ran, skipped := 0, 0
	for _, b := range blocks {
		if b.skip != "" {
			t.Logf("README.md:%d: skipped (%s)", b.line, b.skip)
			skipped++
			continue
		}
		ran++
		start := time.Now()
		script := "set -euo pipefail\nshopt -s expand_aliases\n. \"$README_STATE\"\n" + rewrite.Replace(b.text) +
			"{ alias -p\nfor __v in $(compgen -v); do case \" " + known + " \" in *\" $__v \"*) ;; *) declare -p \"$__v\";; esac; done\n} >\"$README_STATE\"\n"
		out, err := bash(t, dir, env, script)
		switch missing := missingOutput(expectedOutput(b.text), out); {
		case err != nil:
			t.Errorf("README.md:%d: %v; the block:\n%s\nits output:\n%s", b.line, err, b.text, tail(out))
		case missing != "":
			t.Errorf("README.md:%d: the output lacks %q; the block:\n%s\nits output:\n%s", b.line, missing, b.text, tail(out))
		default:
			t.Logf("README.md:%d: ok in %.1fs", b.line, time.Since(start).Seconds())
		}
	}
	t.Logf("README.md: %d blocks ran, %d skipped", ran, skipped)
}

// bash runs script in dir and returns its stdout and stderr, interleaved.
func bash(t *testing.T, dir string, env []string, script string) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "block.sh")
	write(t, f, script)
	ctx, cancel := context.WithTimeout(t.Context(), blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", f)
	cmd.Dir, cmd.Env, cmd.WaitDelay = dir, env, 10*time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// shellVariables returns the names of the variables bash has before a
// block runs, separated by spaces: the ones a block's state leaves out.
func shellVariables(t *testing.T, dir string, env []string) string {
	t.Helper()
	out, err := bash(t, dir, env, "set -euo pipefail\nshopt -s expand_aliases\ncompgen -v\n")
	if err != nil {
		t.Fatalf("bash: compgen -v = %v: %s", err, out)
	}
	return strings.Join(append(strings.Fields(out), "BASH_COMMAND", "BASH_REMATCH", "PIPESTATUS", "_", "__v"), " ")
}

// linkRepository links the repository's top-level entries into dir, except
// those dir already has (./data above all), so that commands that use the
// repository's files run there as in the repository.
func linkRepository(t *testing.T, dir string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if slices.Contains([]string{".git", "data", "bin"}, name) {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(root, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func write(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tail returns the last 60 lines of out.
func tail(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-60):], "\n")
}
