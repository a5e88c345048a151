package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
)

func TestOutputJSONAndYAML(t *testing.T) {
	resp := &datasetpb.GetDatasetStatsResponse{ImageCount: 1306, TotalBytes: 0,
		Counts: []*datasetpb.LabelCount{{Split: datasetpb.Split_SPLIT_TRAIN, Label: "Bag", Count: 209}}}
	var js bytes.Buffer
	if err := outputJSON.print(&js, resp); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatalf("-o json printed %q: %v", js.String(), err)
	}
	// The REST API's voice: camelCase, zero values written out, 64-bit
	// integers as numbers.
	if doc["imageCount"] != 1306.0 || doc["totalBytes"] != 0.0 {
		t.Errorf("-o json = %s; want the gateway's JSON (imageCount, totalBytes written out)", js.String())
	}

	var y bytes.Buffer
	if err := outputYAML.print(&y, resp); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := yaml.Unmarshal(y.Bytes(), &back); err != nil {
		t.Fatalf("-o yaml printed %q: %v", y.String(), err)
	}
	if back["imageCount"] != 1306 || strings.Contains(y.String(), "{") {
		t.Errorf("-o yaml =\n%s\nwant block-style YAML of the same document", y.String())
	}
	if !strings.Contains(y.String(), "  - split: SPLIT_TRAIN\n") && !strings.Contains(y.String(), "- split: SPLIT_TRAIN\n") {
		t.Errorf("-o yaml =\n%s\nwant the counts as a block list", y.String())
	}
}

// Names from users and archives reach the terminal escaped when they hold
// control characters, so a file name cannot recolour the terminal or hide
// the lines before it; other text, any script, is printed as it is.
func TestPrintableNames(t *testing.T) {
	for in, want := range map[string]string{
		"train/Cat/a.png":           "train/Cat/a.png",
		"Große Fische 🐟/ü.png":      "Große Fische 🐟/ü.png",
		"train/Cat\x1b[31m/x.png":   `"train/Cat\x1b[31m/x.png"`,
		"train/Cat\nDog/x.png":      `"train/Cat\nDog/x.png"`,
		"a\rb":                      `"a\rb"`,
		"bell\a":                    `"bell\a"`,
		"c1 \u009b31m":              `"c1 \u009b31m"`,
		"bidi \u202eexe.png":        `"bidi \u202eexe.png"`,
		"caf\uFFFD.png (not UTF-8)": "caf\uFFFD.png (not UTF-8)",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %s; want %s", in, got, want)
		}
	}
	var out strings.Builder
	r := &rejections{out: &out, show: 5}
	r.add(&datasetpb.FileRejection{Path: "train/Cat\x1b[2J/x.png", Reason: "label contains a control character"})
	if got := out.String(); strings.ContainsRune(got, 0x1b) || !strings.Contains(got, `"train/Cat\x1b[2J/x.png"`) {
		t.Errorf("rejections printed %q; want the escape sequence escaped", got)
	}
}
