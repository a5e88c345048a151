package dataset

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

	var progress bytes.Buffer
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := cli.Dataset(t.Context(), append(args, "--addr", e.addr), &out, &progress)
		return out.String(), err
	}
	steps := []struct {
		args []string
		want []string
		code codes.Code
	}{
		{[]string{"create", "fish", "--description", "the seed"}, []string{"created dataset fish"}, codes.OK},
		{[]string{"create", "fish"}, nil, codes.AlreadyExists},
		{[]string{"import", "fish", tree}, []string{"rejected test/Shark/bad.png: not an image", "seen 4: added 3, duplicates 0, conflicts 0, rejected 1"}, codes.OK},
		{[]string{"import", "fish", tree}, []string{"added 0, duplicates 3"}, codes.OK},
		{[]string{"import", "fish", "/etc"}, nil, codes.PermissionDenied},
		{[]string{"upload", "fish", local, archive}, []string{"seen 2: added 2"}, codes.OK},
		{[]string{"stats", "fish"}, []string{"5 images", "Gold Fish  2", "validation", "[0, 32) px"}, codes.OK},
		{[]string{"snapshot", "fish", "--description", "v1"}, []string{"created fish snapshot 1: 5 images, manifest sha256:"}, codes.OK},
		{[]string{"snapshots", "fish"}, []string{"VERSION", "v1"}, codes.OK},
		{[]string{"ls"}, []string{"NAME", "fish", "5"}, codes.OK},
		{[]string{"ls", "fish", "--label", "Shark"}, []string{"c.jpg", "e.png", "2 of 2 images"}, codes.OK},
		{[]string{"stats", "nope"}, nil, codes.NotFound},
		{[]string{"rm", "fish"}, []string{"deleted dataset fish: 5 images, 5 blobs"}, codes.OK},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		if status.Code(err) != s.code {
			t.Fatalf("shoal dataset %s = %v; want %v", strings.Join(s.args, " "), err, s.code)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("shoal dataset %s printed:\n%s\nwant it to contain %q", strings.Join(s.args, " "), out, w)
			}
		}
	}
}
