package blob_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/storage/blob"
)

// Invalid keys are covered by the conformance suite; these are the valid ones.
func TestValidateKeyAccepts(t *testing.T) {
	for _, key := range []string{
		"a", "a/b/c", "train/Black Sea Sprat/0001.png", "sha256/ab/abcdef", ".hidden", "..x", "x..",
		"ü/鱼", "a b+c%d?e#f", strings.Repeat("k", blob.MaxKeyLen),
	} {
		if err := blob.ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v; want nil", key, err)
		}
	}
}

func TestValidateKeyMessage(t *testing.T) {
	err := blob.ValidateKey("a//b")
	if !errors.Is(err, blob.ErrInvalidKey) || !strings.Contains(err.Error(), "empty path segment") {
		t.Fatalf("ValidateKey(a//b) = %v; want ErrInvalidKey saying why", err)
	}
}
