// Package fuzztest writes the seed corpora of Shoal's native fuzz tests.
//
// Each package that parses outside bytes keeps a few small seeds per fuzz
// target in testdata/fuzz/FuzzXxx/, in the format `go test` reads: plain
// `go test` replays them (and every crasher the fuzzer saved there) as
// regression tests, and `go test -fuzz` starts mutating from them. The seeds
// are made by code, so they can be rebuilt when a format's generator
// changes:
//
//	SHOAL_WRITE_FUZZ_SEEDS=1 go test -run '^TestWriteFuzzSeeds$' ./internal/imaging
package fuzztest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// EnvWrite names the variable that, when set, makes WriteSeeds write the seed files.
const EnvWrite = "SHOAL_WRITE_FUZZ_SEEDS"

// Seed is one entry of a seed corpus: a file name and the arguments of the
// fuzz function after its *testing.T, in order.
type Seed struct {
	Name string
	Args []any
}

var seedName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// WriteSeeds writes seeds as testdata/fuzz/<target>/<name> of the package
// under test when $SHOAL_WRITE_FUZZ_SEEDS is set, and skips the test
// otherwise. Files of other names (crashers) are left alone.
func WriteSeeds(t testing.TB, target string, seeds []Seed) {
	t.Helper()
	if os.Getenv(EnvWrite) == "" {
		t.Skipf("set %s=1 to rewrite the seed corpus of %s", EnvWrite, target)
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		if !seedName.MatchString(s.Name) {
			t.Fatalf("seed name %q: use lower-case letters, digits, '.', '-' and '_'", s.Name)
		}
		data, err := Marshal(s.Args...)
		if err != nil {
			t.Fatalf("seed %s/%s: %v", target, s.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.Name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d seeds to %s", len(seeds), dir)
}

// Marshal encodes the arguments of one fuzz call in Go's corpus file format
// ("go test fuzz v1"). It takes the types Shoal's fuzz targets use.
func Marshal(args ...any) ([]byte, error) {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case bool, int, int64, uint16, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		default:
			return nil, fmt.Errorf("fuzztest: cannot encode a %T", a)
		}
	}
	return []byte(b.String()), nil
}

// Allocated returns the bytes allocated on the heap by the whole process
// so far. The difference of two readings bounds what one fuzz input cost;
// other goroutines add little noise to it.
func Allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Watchdog crashes the process when the fuzz input being run takes longer
// than d: `go test -fuzz` reports an input that makes its worker hang only
// as slow progress, but keeps one that makes it crash as a failing input.
// Call the function it returns when the input is done:
//
//	defer fuzztest.Watchdog(5 * time.Second)()
func Watchdog(d time.Duration) (stop func()) {
	timer := time.AfterFunc(d, func() {
		debug.SetTraceback("all") // the stuck goroutine is the one to see
		panic(fmt.Sprintf("fuzztest: one input ran for more than %v (a hang)", d))
	})
	return func() { timer.Stop() }
}
