package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/upload"
)

// A folder in the wrong layout ends its message with what to change, in
// the flags' words.
func TestUploadHints(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "Cat"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "Cat", "1.jpg"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := newLayout("", 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := upload.ScanFolder(root, l)
	if err != nil {
		t.Fatal(err)
	}
	err = s.NothingToUpload(uploadHints)
	if ExitCode(err) != ExitInvalid || !strings.Contains(err.Error(), "add --split train") {
		t.Errorf("NothingToUpload(uploadHints) = %v (exit %d); want exit %d and the --split hint", err, ExitCode(err), ExitInvalid)
	}
}
