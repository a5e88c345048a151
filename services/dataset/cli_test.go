package dataset

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// TestCLI runs `shoal dataset ...` against a real dataset service.
func TestCLI(t *testing.T) {
	e := newEnv(t, envOpts{})
	tree := filepath.Join(e.root, "fish")
	writeFile(t, tree, "train/Gold Fish/a.png", imagingtest.PNG(8, 8, 1))
	writeFile(t, tree, "train/Gold Fish/b.png", imagingtest.PNG(8, 8, 2))
	writeFile(t, tree, "test/Shark/c.jpg", imagingtest.JPEG(8, 8, 3))
	writeFile(t, tree, "test/Shark/bad.png", []byte("nope"))
	local := t.TempDir()
	writeFile(t, local, "train/Catfish/d.png", imagingtest.PNG(8, 8, 4))
	writeFile(t, local, "NOTICE", []byte("top-level files are skipped"))
	archive := filepath.Join(t.TempDir(), "more.tar.gz")
	if err := os.WriteFile(archive, makeTar(t, []member{{name: "validation/Shark/e.png", data: imagingtest.PNG(8, 8, 5)}}, true), 0o644); err != nil {
		t.Fatal(err)
	}
	flatArchive := filepath.Join(t.TempDir(), "flat.zip")
	if err := os.WriteFile(flatArchive, makeZip(t, []member{{name: "Mudfish/k.png", data: imagingtest.PNG(8, 8, 20)}}), 0o644); err != nil {
		t.Fatal(err)
	}
	// Laid out Label/file, as photos often are: a server folder and a local one.
	flat := filepath.Join(e.root, "flat")
	writeFile(t, flat, "Mudfish/f.png", imagingtest.PNG(8, 8, 6))
	localFlat := t.TempDir()
	for i, name := range []string{"g.png", "h.png", "i.png", "j.png"} {
		writeFile(t, localFlat, "Mudfish/"+name, imagingtest.PNG(8, 8, 10+i))
	}

	var progress bytes.Buffer
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := cli.Run(t.Context(), append(append([]string{"dataset"}, args...), "--addr", e.addr), cli.Env{Stdout: &out, Stderr: &progress})
		return out.String(), err
	}
	steps := []struct {
		args    []string
		want    []string // substrings of the output, or of the error when it fails
		exit    int
		wantErr string
	}{
		{[]string{"create", "fish", "--description", "the seed"}, []string{"created dataset fish"}, cli.ExitOK, ""},
		{[]string{"create", "fish"}, nil, cli.ExitConflict, `dataset "fish" already exists`},
		{[]string{"import", "fish", tree}, []string{"rejected test/Shark/bad.png: not an image", "seen 4: added 3, duplicates 0, conflicts 0, rejected 1"}, cli.ExitOK, ""},
		{[]string{"import", "fish", tree}, []string{"added 0, duplicates 3"}, cli.ExitOK, ""},
		{[]string{"import", "fish", "/etc"}, nil, cli.ExitPermission, ""},
		// A folder in the wrong layout says what it holds and what is expected.
		{[]string{"import", "fish", flat}, []string{"rejected Mudfish/: unknown split folder"}, cli.ExitInvalid,
			"the folder holds no files laid out split/Label/file (it holds Mudfish/): expected train/, validation/ or test/ folders"},
		{[]string{"upload", "fish", localFlat}, nil, cli.ExitInvalid,
			"holds no images laid out split/Label/file (it holds Mudfish/; 4 files at Label/file): expected train/"},
		{[]string{"upload", "fish", flatArchive}, nil, cli.ExitInvalid, "the archive holds no files laid out split/Label/file (it holds Mudfish/)"},
		{[]string{"upload", "fish", local, archive}, []string{"seen 2: added 2"}, cli.ExitOK, ""},
		{[]string{"upload", "fish", localFlat, "--split", "train", "--test-fraction", "0.5"}, []string{"seen 4: added 4"}, cli.ExitOK, ""},
		{[]string{"stats", "fish"}, []string{"9 images", "Gold Fish  2", "validation", "[0, 32) px"}, cli.ExitOK, ""},
		{[]string{"snapshot", "fish", "--description", "v1"}, []string{"created fish snapshot 1: 9 images, manifest sha256:"}, cli.ExitOK, ""},
		{[]string{"snapshots", "fish"}, []string{"VERSION", "v1"}, cli.ExitOK, ""},
		{[]string{"ls"}, []string{"NAME", "fish", "9"}, cli.ExitOK, ""},
		{[]string{"ls", "fish", "--label", "Shark"}, []string{"c.jpg", "e.png", "2 of 2 images"}, cli.ExitOK, ""},
		{[]string{"stats", "nope"}, nil, cli.ExitNotFound, `dataset "nope" not found`},
		// Off a terminal a delete needs --yes, and deletes nothing without it.
		{[]string{"rm", "fish"}, nil, cli.ExitUsage, "pass --yes"},
		{[]string{"stats", "fish"}, []string{"9 images"}, cli.ExitOK, ""},
		{[]string{"rm", "fish", "--yes"}, []string{"deleted dataset fish: 9 images, 9 blobs"}, cli.ExitOK, ""},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		if got := cli.ExitCode(err); got != s.exit || (s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr))) {
			t.Fatalf("shoal dataset %s = %v (exit %d); want exit %d, error containing %q", strings.Join(s.args, " "), err, got, s.exit, s.wantErr)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("shoal dataset %s printed:\n%s\nwant it to contain %q", strings.Join(s.args, " "), out, w)
			}
		}
	}
	// The progress went to stderr, which is not a terminal here: plain text.
	if strings.ContainsAny(progress.String(), "\r\033") {
		t.Errorf("progress off a terminal has control characters: %q", progress.String())
	}
}

// -o json is the REST API's JSON; -o yaml the same document.
func TestCLIOutputFormats(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.create(t, "fish")
	for _, args := range [][]string{{"ls"}, {"stats", "fish"}, {"snapshots", "fish"}, {"ls", "fish"}} {
		var out bytes.Buffer
		err := cli.Run(t.Context(), append(append([]string{"dataset"}, args...), "--addr", e.addr, "-o", "json"), cli.Env{Stdout: &out, Stderr: &out})
		if err != nil || !json.Valid(out.Bytes()) {
			t.Errorf("shoal dataset %s -o json = %v, %q; want valid JSON", strings.Join(args, " "), err, out.String())
		}
	}
	var out bytes.Buffer
	if err := cli.Run(t.Context(), []string{"dataset", "ls", "--addr", e.addr, "-o", "yaml"}, cli.Env{Stdout: &out, Stderr: &out}); err != nil ||
		!strings.Contains(out.String(), "datasets:\n") || !strings.Contains(out.String(), "name: fish") {
		t.Errorf("shoal dataset ls -o yaml = %v, %q", err, out.String())
	}
}

// An empty archive file is refused as empty, not reported as an upload of
// nothing.
func TestCLIEmptyArchive(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.create(t, "fish")
	empty := filepath.Join(t.TempDir(), "photos.zip")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := cli.Run(t.Context(), []string{"dataset", "upload", "fish", empty, "--addr", e.addr}, cli.Env{Stdout: &out, Stderr: &out})
	if cli.ExitCode(err) != cli.ExitInvalid || err == nil || !strings.Contains(err.Error(), `archive "photos.zip" is empty`) {
		t.Errorf("shoal dataset upload fish photos.zip (0 bytes) = %v (exit %d), %q; want exit %d saying it is empty", err, cli.ExitCode(err), out.String(), cli.ExitInvalid)
	}
}

// A folder upload the server ends because one file is larger than its
// message limit names the file and the way round it, instead of grpc-go's
// "received message larger than max".
func TestCLIFileOverTheMessageLimit(t *testing.T) {
	e := newEnv(t, envOpts{maxMessage: 4 << 20})
	e.create(t, "fish")
	dir := t.TempDir()
	writeFile(t, dir, "train/Cat/a.png", imagingtest.PNG(8, 8, 1))
	writeFile(t, dir, "train/Cat/big.png", append(imagingtest.PNG(8, 8, 2), make([]byte, 5<<20)...))
	var out bytes.Buffer
	err := cli.Run(t.Context(), []string{"dataset", "upload", "fish", dir, "--addr", e.addr, "--quiet"}, cli.Env{Stdout: &out, Stderr: &out})
	for _, want := range []string{"the server takes at most 4194304 bytes in one message", "1 file is larger (train/Cat/big.png)", "upload the folder as a .zip"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("shoal dataset upload (a 5 MiB file, a 4 MiB limit) = %v; want it to say %q", err, want)
		}
	}
	if got := cli.ExitCode(err); got != cli.ExitInvalid {
		t.Errorf("exit %d; want %d: retrying cannot help", got, cli.ExitInvalid)
	}
}
