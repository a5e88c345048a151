// Package fault breaks a real Shoal process on purpose and checks what is
// left: `shoal serve`, built from this tree, runs as a child process on
// free ports and is driven through its gRPC API and REST while it is
// killed with SIGKILL, while its PostgreSQL or S3 server goes away, and
// while its disk fills up. Each test starts the servers it breaks itself
// (never the shared ones other tests use) and checks afterwards that no
// row or blob was lost, half-stored or orphaned.
//
// The tests run only with SHOAL_TEST_FAULT=1 (make fault); RELIABILITY.md
// lists what each checks and the figures of the last run.
package fault

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/demodata"
)

// envFault enables the tests: "1" runs the kill and disk-full tests (a
// few minutes; make test), "all" adds the 30-second outages of PostgreSQL
// and S3 (make fault).
const envFault = "SHOAL_TEST_FAULT"

// envKeep keeps the work folder (servers' data and logs) for a look after
// the run.
const envKeep = "SHOAL_TEST_FAULT_KEEP"

var (
	// shoalBin is the binary under test, built once by TestMain.
	shoalBin string
	// workRoot holds everything the tests write; removed at the end.
	workRoot string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if v := os.Getenv(envFault); v != "1" && v != "all" {
		return m.Run() // every test skips; see needFault
	}
	var err error
	if workRoot, err = os.MkdirTemp("", "shoal-fault-"); err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		return 1
	}
	if os.Getenv(envKeep) == "1" {
		fmt.Fprintf(os.Stderr, "fault: keeping %s (%s=1)\n", workRoot, envKeep)
	} else {
		defer os.RemoveAll(workRoot)
	}
	// PostgreSQL runs as its own user, which must reach its data folder.
	if err := os.Chmod(workRoot, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		return 1
	}
	shoalBin = filepath.Join(workRoot, "shoal")
	start := time.Now()
	build := exec.Command("go", "build", "-o", shoalBin, "./cmd/shoal")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "fault: go build ./cmd/shoal: %v\n%s", err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "fault: built %s in %s\n", shoalBin, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// needFault skips t unless the fault tests are enabled.
func needFault(t *testing.T) {
	t.Helper()
	if v := os.Getenv(envFault); v != "1" && v != "all" {
		t.Skip("fault-injection tests run with " + envFault + "=1 (make test) or =all (make fault)")
	}
}

// needOutages skips t unless the long outage tests are enabled too.
func needOutages(t *testing.T) {
	t.Helper()
	if os.Getenv(envFault) != "all" {
		t.Skip("the 30-second storage outages run with " + envFault + "=all (make fault)")
	}
}

var (
	demoOnce sync.Once
	demoDir  string
	demoErr  error
)

// demoTree writes the 1,306-image Fashion-MNIST demo tree once and returns
// its folder: 1,045 train and 261 test images of 5 classes, 28x28 PNG.
func demoTree(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(demodata.DefaultSource, "t10k-labels-idx1-ubyte.gz")); err != nil {
			demoErr = fmt.Errorf("the demo data is not installed (run scripts/setup-demo-data.sh): %w", err)
			return
		}
		dir := filepath.Join(workRoot, "import", "fashion-mnist")
		if _, err := demodata.Generate(context.Background(), demodata.Options{Out: dir}); err != nil {
			demoErr = err
			return
		}
		demoDir = dir
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoDir
}

// demoImages is how many images the demo tree holds.
const demoImages = 1306
