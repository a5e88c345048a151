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
