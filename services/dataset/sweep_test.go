package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// TestSweepOrphans: a blob written by an import that died before its row
// is removed by the sweep once older than the cutoff; referenced ones stay.
func TestSweepOrphans(t *testing.T) {
	e := newEnv(t, envOpts{})
	writeFile(t, e.root, "t/train/A/kept.png", imagingtest.PNG(4, 4, 1))
	e.create(t, "t")
	if r := e.importLocal(t, "t", e.root+"/t"); r.err != nil {
		t.Fatal(r.err)
	}
	orphan := imagingtest.PNG(4, 4, 2)
	sum := sha256.Sum256(orphan)
	if err := e.blobs.Put(t.Context(), blobKey(hex.EncodeToString(sum[:])), bytes.NewReader(orphan), int64(len(orphan))); err != nil {
		t.Fatal(err)
	}
	// A cutoff before the orphan was written keeps it (an import may be
	// about to commit its row).
	if n, err := e.svc.sweepOrphans(t.Context(), time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("sweepOrphans(an hour ago) = %d, %v; want 0", n, err)
	}
	n, err := e.svc.sweepOrphans(t.Context(), time.Now().Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("sweepOrphans(now) = %d, %v; want 1", n, err)
	}
	if got := countBlobs(t, e.blobs); got != 1 {
		t.Errorf("blobs after the sweep = %d; want 1 (the referenced one)", got)
	}
}
