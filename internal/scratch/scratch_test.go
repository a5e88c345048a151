package scratch_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/scratch"
)

func write(t *testing.T, dir, name string, age time.Duration) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestClaim(t *testing.T) {
	dir := t.TempDir()
	mine := func(name string) bool { return strings.HasPrefix(name, "put-") }
	write(t, dir, "put-fresh", 0)
	write(t, dir, "put-old", 48*time.Hour)
	write(t, dir, "other-tool", 48*time.Hour)

	// Nobody holds the folder: every file of this kind is a leftover.
	first, n := scratch.Claim(dir, mine, 24*time.Hour)
	if first == nil || n != 2 {
		t.Fatalf("Claim(unheld) = %v, %d; want the folder held and 2 files removed", first, n)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"other-tool"}) {
		t.Fatalf("files after Claim(unheld) = %v; want only the other tool's", got)
	}

	// Held by a live user: only what is older than the stale age goes.
	write(t, dir, "put-fresh", 0)
	write(t, dir, "put-old", 48*time.Hour)
	second, n := scratch.Claim(dir, mine, 24*time.Hour)
	if second == nil || n != 1 {
		t.Fatalf("Claim(held) = %v, %d; want the folder held and 1 file removed", second, n)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"other-tool", "put-fresh"}) {
		t.Fatalf("files after Claim(held) = %v; want the fresh one kept", got)
	}

	// Once every user is gone, the next takes all leftovers again.
	first.Close()
	second.Close()
	third, n := scratch.Claim(dir, mine, 24*time.Hour)
	if third == nil || n != 1 {
		t.Fatalf("Claim(released) = %v, %d; want 1 file removed", third, n)
	}
	third.Close()
}
