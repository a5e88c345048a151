// Package badinput sends every kind of bad input of internal/badinput
// through every entry path it can reach, against one running Shoal
// process (all services and the gateway, in this test binary): server
// folders, bucket prefixes, the CLI's folder and archive uploads, the REST
// and console uploads, /predict, Predict, /v1/models/{m}:predict,
// ModelInfer (typed and raw), /v2/.../infer, and model uploads by the CLI
// and REST. Each case checks the status and reason the user gets, that the
// process is still alive, and what was stored: rows of every table and
// blob keys before and after, which change only by the images the kind's
// outcome stores.
//
// Further tests here trickle headers and bodies, send many maximum-size
// messages at once and vanish mid-stream. RELIABILITY.md describes them.
package badinput

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/badinput"
	"github.com/shoalml/shoal/internal/cli"
)

// envTable prints the matrix's table of outcomes (Markdown) at the end.
const envTable = "SHOAL_TEST_BADINPUT_TABLE"

// probTolerance is how far an accepted image's probabilities may lie from
// those of what a viewer shows (its Like, sent as a PNG): JPEG's loss.
const probTolerance = 0.03

func TestMatrix(t *testing.T) {
	s := startServer(t, nil)
	kinds := badinput.Kinds()
	table := map[string]map[badinput.Path]string{}
	orphans := map[string]bool{}
	n := 0
	start := time.Now()
	for _, k := range kinds {
		table[k.Name] = map[badinput.Path]string{}
		for _, p := range k.Reaches() {
			n++
			ok := t.Run(k.Name+"/"+string(p), func(t *testing.T) {
				got := runCase(t, s, k, p, n, orphans)
				table[k.Name][p] = got
			})
			if !ok && table[k.Name][p] == "" {
				table[k.Name][p] = "FAIL"
			} else if !ok {
				table[k.Name][p] += " FAIL"
			}
		}
	}
	t.Logf("%d kinds, %d cases in %s", len(kinds), n, time.Since(start).Round(time.Millisecond))
	s.auditBlobs(t, orphans)
	if os.Getenv(envTable) != "" {
		t.Logf("outcomes:\n%s", markdown(kinds, table))
	}
}

// runCase sends kind k through path p and checks what came of it; it
// returns a short description of the outcome for the table.
func runCase(t *testing.T, s *server, k badinput.Kind, p badinput.Path, n int, orphans map[string]bool) string {
	want := k.Want[p]
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := caseInput{k: k, dataset: fmt.Sprintf("c%04d", n), dir: t.TempDir(), companion: badinput.GoodPNG(5000 + n)}
	withCompanion := k.File != nil && (slices.Contains(badinput.DatasetPaths, p) && p != badinput.ConsoleUpload)
	if slices.Contains(badinput.DatasetPaths, p) {
		if p == badinput.BucketPrefix && s.source == nil {
			msg := "no S3 server: eval \"$(scripts/s3server.sh start DIR)\" sets SHOAL_TEST_S3_*"
			if os.Getenv(envS3Required) == "1" {
				t.Fatal(msg + " (" + envS3Required + "=1 makes this an error)")
			}
			t.Skip(msg)
		}
		if _, err := s.dataset.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: c.dataset}); err != nil {
			t.Fatalf("CreateDataset(%s) = %v", c.dataset, err)
		}
	}
	candidates := c.blobKeys()
	before, err := s.inventory(ctx, candidates)
	if err != nil {
		t.Fatalf("inventory before: %v", err)
	}
	began := time.Now()
	r, err := drivers[p](ctx, s, c)
	if err != nil {
		if strings.Contains(err.Error(), badinput.ErrUnsupported.Error()) {
			t.Skipf("cannot make this input here: %v", err)
		}
		t.Fatalf("sending it: %v", err)
	}
	took := time.Since(began)
	if err := s.alive(ctx); err != nil {
		t.Fatalf("after the call, the process is not alive: %v", err)
	}

	// The answer.
	if r.httpStatus >= 500 {
		t.Errorf("HTTP %d %q; want no server error for bad input", r.httpStatus, r.msg)
	}
	if r.code == codes.Internal || r.code == codes.Unknown && r.exit < 0 {
		t.Errorf("answer %s %q; want a status that says what is wrong", r.code, r.msg)
	}
	checkAnswer(t, p, want, r)
	if want.Class == badinput.Accept && slices.Contains(badinput.PredictPaths, p) {
		checkDecoded(t, ctx, s, k, r)
	}

	// What is stored.
	after, err := s.inventory(ctx, candidates)
	if err != nil {
		t.Fatalf("inventory after: %v", err)
	}
	added := want.Added
	if withCompanion && (want.Class != badinput.Refuse || want.Partial) {
		added++
	}
	if want.Partial {
		// The files before the refusal were stored or not, by timing; the
		// reason says they may have been.
		added = min(added, int(after.rows["dataset_images"]-before.rows["dataset_images"]))
	}
	for _, key := range checkStored(t, before, after, added, want.Class == badinput.Refuse) {
		orphans[key] = true
	}
	return describe(r, took)
}

// wantExit is the CLI's exit code for a refusal of code.
func wantExit(o badinput.Outcome) int {
	if o.Local {
		return cli.ExitUsage
	}
	switch o.Code {
	case codes.InvalidArgument:
		return cli.ExitInvalid
	case codes.ResourceExhausted: // every kind's is a size over a limit, not an overload
		return cli.ExitInvalid
	case codes.NotFound:
		return cli.ExitNotFound
	}
	return cli.ExitError
}

// wantHTTP is the HTTP status of a refusal with code: a size over a limit
// is 413 (an overload would be 429; no kind is one).
func wantHTTP(code codes.Code) int {
	if code == codes.ResourceExhausted {
		return http.StatusRequestEntityTooLarge
	}
	return runtime.HTTPStatusFromCode(code)
}

func checkAnswer(t *testing.T, p badinput.Path, want badinput.Outcome, r result) {
	t.Helper()
	isCLI := r.exit >= 0
	switch want.Class {
	case badinput.Refuse:
		switch {
		case isCLI && r.exit != wantExit(want):
			t.Errorf("exit %d, error %q; want exit %d (%s)", r.exit, r.msg, wantExit(want), want)
		case !isCLI && r.code != want.Code:
			t.Errorf("answer %s %q (HTTP %d); want %s", r.code, r.msg, r.httpStatus, want)
		case r.httpStatus != 0 && r.httpStatus != wantHTTP(want.Code):
			t.Errorf("HTTP %d %q; want %d (%s)", r.httpStatus, r.msg, wantHTTP(want.Code), want)
		}
		if !strings.Contains(r.msg, want.Reason) {
			t.Errorf("reason %q; want one that says %q", r.msg, want.Reason)
		}
		if want.Added > 0 && !strings.Contains(r.msg, "added") {
			t.Errorf("reason %q; want it to say that the images before it were added", r.msg)
		}
	default:
		if r.code != codes.OK || (r.httpStatus != 0 && r.httpStatus != http.StatusOK) {
			t.Fatalf("answer %s %q (HTTP %d, exit %d); want success (%s)", r.code, r.msg, r.httpStatus, r.exit, want)
		}
		if !slices.Contains(badinput.DatasetPaths, p) {
			return
		}
		switch want.Class {
		case badinput.Reject:
			found := false
			for _, rej := range r.rejections {
				found = found || strings.Contains(rej, want.Reason)
			}
			if !found {
				t.Errorf("rejections %q; want one that says %q", r.rejections, want.Reason)
			}
		default:
			if len(r.rejections) > 0 {
				t.Errorf("rejections %q; want none (%s)", r.rejections, want)
			}
		}
	}
}

// checkDecoded compares an accepted image's probabilities with those of
// what a viewer shows, sent as a PNG.
func checkDecoded(t *testing.T, ctx context.Context, s *server, k badinput.Kind, r result) {
	t.Helper()
	ref := predictImage(ctx, s, pngOf(k.Like))
	if ref.code != codes.OK {
		t.Fatalf("Predict(the kind's Like as PNG) = %s %q", ref.code, ref.msg)
	}
	if len(r.probs) != len(ref.probs) {
		t.Fatalf("probabilities %v; want %d of them", r.probs, len(ref.probs))
	}
	for i := range r.probs {
		if math.Abs(r.probs[i]-ref.probs[i]) > probTolerance {
			t.Errorf("probabilities %.4f; want those of the image as a viewer shows it, %.4f (±%g)", r.probs, ref.probs, probTolerance)
			return
		}
	}
}

// blobKeys are the keys of every blob the case could add: its images'
// and its model's, by their SHA-256.
func (c caseInput) blobKeys() []string {
	var keys []string
	add := func(b []byte) {
		sum := sha256.Sum256(b)
		keys = append(keys, imageKey(hex.EncodeToString(sum[:])))
	}
	for _, e := range c.entries() {
		add(e.Data)
	}
	if c.k.File != nil {
		add(c.k.File.Data)
	}
	add(c.companion)
	if c.k.Model != nil {
		sum := sha256.Sum256(c.k.Model.Data)
		keys = append(keys, "registry/artifacts/sha256/"+hex.EncodeToString(sum[:]))
	}
	return keys
}

// checkStored compares the stores before and after: every table keeps its
// rows but dataset_images, which gains exactly added rows, and of the
// case's candidate blobs none is lost and at most added are new. An import
// stores a batch's blobs before its rows, so one refused midway may leave
// blobs of its own images without rows (refused): they are returned, for
// auditBlobs; the orphan sweep removes them once they are an hour old
// (RELIABILITY.md, "Orphans").
func checkStored(t *testing.T, before, after inventory, added int, refused bool) (orphans []string) {
	t.Helper()
	for tbl, n := range after.rows {
		want := before.rows[tbl]
		if tbl == "dataset_images" {
			want += int64(added)
		}
		if n != want {
			t.Errorf("table %s holds %d rows; want %d (before: %d)", tbl, n, want, before.rows[tbl])
		}
	}
	var fresh []string
	for key, stored := range after.blobs {
		switch {
		case before.blobs[key] && !stored:
			t.Errorf("blob %s is gone", key)
		case stored && !before.blobs[key]:
			fresh = append(fresh, key)
		}
	}
	switch {
	case len(fresh) > added && refused:
		t.Logf("%d new blobs for %d new image rows: the refused import's own, left for the orphan sweep", len(fresh), added)
		return fresh
	case len(fresh) > added:
		t.Errorf("%d new blobs for %d new image rows", len(fresh), added)
	}
	return nil
}

func pngOf(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// describe is a result in a few words, for the table.
func describe(r result, took time.Duration) string {
	var s string
	switch {
	case r.exit > 0:
		s = fmt.Sprintf("exit %d: %s", r.exit, r.msg)
	case r.httpStatus != 0 && r.httpStatus != http.StatusOK:
		s = fmt.Sprintf("%d: %s", r.httpStatus, r.msg)
	case r.code != codes.OK:
		s = fmt.Sprintf("%s: %s", r.code, r.msg)
	case len(r.rejections) > 0:
		s = "rejected: " + strings.Join(r.rejections, "; ")
	case r.probs != nil:
		s = "classified"
	default:
		s = "stored"
		if r.counts != nil {
			s = fmt.Sprintf("stored (%d added)", r.counts.GetAdded())
		}
	}
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	if took > time.Second {
		s += fmt.Sprintf(" [%s]", took.Round(100*time.Millisecond))
	}
	return s
}

// markdown is the outcome table: a row per kind, a column per path.
func markdown(kinds []badinput.Kind, table map[string]map[badinput.Path]string) string {
	var b strings.Builder
	b.WriteString("| kind |")
	for _, p := range badinput.Paths {
		fmt.Fprintf(&b, " %s |", p)
	}
	b.WriteString("\n|---|")
	for range badinput.Paths {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "| %s |", k.Name)
		for _, p := range badinput.Paths {
			cell := table[k.Name][p]
			if _, ok := k.Want[p]; !ok {
				cell = "-"
			}
			fmt.Fprintf(&b, " %s |", strings.ReplaceAll(strings.ReplaceAll(cell, "|", "\\|"), "\n", " "))
		}
		b.WriteString("\n")
	}
	return b.String()
}
