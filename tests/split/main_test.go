// Package split runs Shoal's scaled mode as users run it and breaks it on
// purpose. The services of deployments/compose/compose.yaml run as
// separate `shoal serve --target=...` processes, built from this tree, with
// the command, environment and replicas the compose file gives them (two
// inference replicas; the test adds a second trainer), on a PostgreSQL
// server of the test's own and the S3 server of the test suite. Only the
// addresses change: on one host every process gets ports of its own, and
// the compose names (postgres, seaweedfs, registry, ...) become them.
//
// Through the gateway alone, REST and gRPC, the test takes the user's
// path of README's scaled-mode section: create a dataset, import it from a
// bucket prefix, snapshot, train with --follow, promote, predict. On the
// way it kills the trainer that runs the job (the other resumes it from
// its checkpoint), kills an inference replica under load (no request
// fails) and restarts PostgreSQL (everything recovers without a restart
// of Shoal).
//
// TestSplitOriginalStorage runs the same services with the settings of
// the override file compose.original.yaml, which puts them on MySQL and
// MinIO: on a fresh database of the test suite's MariaDB server and on
// its S3 server, it takes the path from upload to prediction.
//
// With SHOAL_TEST_SPLIT_IMAGE set to an image built from
// deployments/Dockerfile, each Shoal service runs instead as a podman
// container of that image, created from the compose file's definition of
// the service (containers_test.go), and a kill is `podman kill`: the same
// scenario, on the image and the service definitions users run
// (scripts/test-deploy.sh).
//
// It runs with SHOAL_TEST_SPLIT=1 and the S3 server's SHOAL_TEST_S3_*
// variables (make test sets both; see scripts/test.sh).
package split

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// envSplit enables the test.
const envSplit = "SHOAL_TEST_SPLIT"

// envKeep keeps the work folder (processes' data and logs) after the run.
const envKeep = "SHOAL_TEST_SPLIT_KEEP"

var (
	// shoalBin and grpcurlBin are built once by TestMain.
	shoalBin, grpcurlBin string
	// workRoot holds everything the test writes.
	workRoot string
	// repoRoot is the repository's root, absolute (the processes run in
	// folders of their own).
	repoRoot string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Getenv(envSplit) != "1" {
		return m.Run() // the test skips
	}
	var err error
	if repoRoot, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, "split:", err)
		return 1
	}
	if workRoot, err = os.MkdirTemp("", "shoal-split-"); err != nil {
		fmt.Fprintln(os.Stderr, "split:", err)
		return 1
	}
	if os.Getenv(envKeep) == "1" {
		fmt.Fprintf(os.Stderr, "split: keeping %s (%s=1)\n", workRoot, envKeep)
	} else {
		defer os.RemoveAll(workRoot)
	}
	// PostgreSQL runs as its own user, which must reach its data folder.
	if err := os.Chmod(workRoot, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "split:", err)
		return 1
	}
	shoalBin, grpcurlBin = filepath.Join(workRoot, "shoal"), filepath.Join(workRoot, "grpcurl")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, build := range [][]string{
		{"build", "-o", shoalBin, "./cmd/shoal"},
		{"build", "-modfile=tools.go.mod", "-o", grpcurlBin, "github.com/fullstorydev/grpcurl/cmd/grpcurl"},
	} {
		wg.Go(func() {
			cmd := exec.Command("go", build...)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %v: %v\n%s", build, err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "split:", err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "split: built shoal and grpcurl in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

func needSplit(t *testing.T) {
	t.Helper()
	if os.Getenv(envSplit) != "1" {
		t.Skip("the split topology's test runs with " + envSplit + "=1 (make test)")
	}
}
