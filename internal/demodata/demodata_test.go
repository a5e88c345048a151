package demodata_test

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/demodata"
)

// Source returns the Fashion-MNIST folder, skipping t when the Debian
// package is not installed (scripts/setup-demo-data.sh installs it).
func source(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(demodata.DefaultSource, "t10k-labels-idx1-ubyte.gz")); err != nil {
		msg := "Fashion-MNIST is not installed: run scripts/setup-demo-data.sh"
		if os.Getenv("SHOAL_TEST_DEMO_REQUIRED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return demodata.DefaultSource
}

func TestGenerateDefault(t *testing.T) {
	src := source(t)
	out := t.TempDir()
	sum, err := demodata.Generate(t.Context(), demodata.Options{Source: src, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != 1306 {
		t.Fatalf("Total = %d; want 1306", sum.Total)
	}
	perSplit := map[string]int{}
	labels := map[string]bool{}
	for k, n := range sum.Counts {
		split, label, _ := strings.Cut(k, "/")
		perSplit[split] += n
		labels[label] = true
	}
	if perSplit["train"] != 1045 || perSplit["test"] != 261 || len(labels) != 5 || !labels["Ankle boot"] || !labels["T-shirt top"] {
		t.Fatalf("counts = %v; want 1045 train, 261 test over 5 labels incl. \"Ankle boot\"", sum.Counts)
	}
	onDisk := tree(t, out)
	if len(onDisk) != 1306+1 { // + NOTICE.md
		t.Fatalf("files on disk = %d; want 1307", len(onDisk))
	}
	if notice, err := os.ReadFile(filepath.Join(out, "NOTICE.md")); err != nil || !strings.Contains(string(notice), "Zalando Research") || !strings.Contains(string(notice), "MIT") {
		t.Error("NOTICE.md does not credit Zalando Research")
	}
	// Deterministic: a second run writes the same bytes.
	out2 := t.TempDir()
	if _, err := demodata.Generate(t.Context(), demodata.Options{Source: src, Out: out2}); err != nil {
		t.Fatal(err)
	}
	again := tree(t, out2)
	for p, h := range onDisk {
		if again[p] != h {
			t.Fatalf("%s differs between runs", p)
		}
	}
	// No label folder is left empty (it would import as a rejection).
	ents, _ := os.ReadDir(filepath.Join(out, "train"))
	if len(ents) != 5 {
		t.Errorf("train has %d label folders; want 5", len(ents))
	}
}

// A second run into the same folder writes nothing and says so, and files
// the tree does not hold are reported, since an import would take them too.
func TestGenerateReportsWhatItWrote(t *testing.T) {
	src := source(t)
	out := t.TempDir()
	first, err := demodata.Generate(t.Context(), demodata.Options{Source: src, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if first.Written != 1306 || first.Unchanged != 0 || len(first.Extra) != 0 {
		t.Fatalf("first run: Written %d, Unchanged %d, Extra %v; want 1306 written", first.Written, first.Unchanged, first.Extra)
	}
	stray := filepath.Join("train", "Bag", "99999.png")
	if err := os.WriteFile(filepath.Join(out, stray), []byte("left over"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := demodata.Generate(t.Context(), demodata.Options{Source: src, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if again.Total != 1306 || again.Written != 0 || again.Unchanged != 1306 || len(again.Extra) != 1 || again.Extra[0] != stray {
		t.Errorf("second run: Total %d, Written %d, Unchanged %d, Extra %v; want nothing written, 1306 unchanged, %s extra",
			again.Total, again.Written, again.Unchanged, again.Extra, stray)
	}
}

func TestGenerateMissingSource(t *testing.T) {
	_, err := demodata.Generate(t.Context(), demodata.Options{Source: t.TempDir(), Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "dataset-fashion-mnist") {
		t.Fatalf("Generate(empty source) = %v; want an error naming the package", err)
	}
}

// tree maps each file's relative path to a digest of its bytes.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		h := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = string(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
