package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/gateway"
)

const generated = `{
  "swagger": "2.0",
  "tags": [{"name": "A", "description": "a"}, {"name": "B", "description": "b"}],
  "paths": {"/v1/a": {"get": {"operationId": "A_Get", "parameters": [{"name": "n", "in": "query", "type": "string", "format": "int64"}]}}},
  "definitions": {"aMsg": {"type": "object", "properties": {"id": {"type": "string", "format": "uint64"}}}}
}`

const handWritten = `{
  "tags": [{"name": "B", "description": "b, by hand"}, {"name": "C", "description": "c"}],
  "paths": {"/c": {"post": {"operationId": "C_Post", "responses": {"200": {"schema": {"$ref": "#/definitions/cMsg"}}}}}},
  "parameters": {"cName": {"name": "name", "in": "path", "type": "string"}},
  "definitions": {"cMsg": {"type": "object", "properties": {"size": {"type": "string", "format": "int64"}}}}
}`

func TestFinish(t *testing.T) {
	out, err := finish([]byte(generated), []byte(handWritten))
	if err != nil {
		t.Fatalf("finish() = %v", err)
	}
	var doc struct {
		Tags        []struct{ Name, Description string }
		Paths       map[string]any
		Parameters  map[string]any
		Definitions map[string]struct {
			Properties map[string]struct{ Type, Format string }
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("finish() wrote %s: %v", out, err)
	}
	tests := []struct {
		what      string
		got, want any
	}{
		{"tags", doc.Tags, []struct{ Name, Description string }{{"A", "a"}, {"B", "b, by hand"}, {"C", "c"}}},
		{"paths", len(doc.Paths), 2},
		{"hand-written path", doc.Paths["/c"] != nil, true},
		{"parameters", doc.Parameters["cName"] != nil, true},
		{"generated uint64", doc.Definitions["aMsg"].Properties["id"].Type, "integer"},
		{"hand-written int64", doc.Definitions["cMsg"].Properties["size"].Type, "integer"},
		{"query parameter int64", queryType(t, out), "integer"},
	}
	for _, tt := range tests {
		if got, _ := json.Marshal(tt.got); string(got) != mustJSON(t, tt.want) {
			t.Errorf("finish(): %s = %s; want %s", tt.what, got, mustJSON(t, tt.want))
		}
	}
	// The key order of the generated document is kept, additions last.
	if i, j := strings.Index(string(out), `"/v1/a"`), strings.Index(string(out), `"/c"`); i < 0 || j < i {
		t.Errorf("finish(): /v1/a at %d, /c at %d; want the generated path first", i, j)
	}
	again, err := finish(out, []byte(handWritten))
	if err != nil || string(again) != string(out) {
		t.Errorf("finish(finish()) = %v, %d bytes; want the same %d bytes", err, len(again), len(out))
	}
}

// A hand-written route never takes the place of a generated one.
func TestFinishRefusesAGeneratedPath(t *testing.T) {
	clash := `{"paths": {"/v1/a": {"post": {"operationId": "Other"}}}}`
	if _, err := finish([]byte(generated), []byte(clash)); err == nil || !strings.Contains(err.Error(), "/v1/a") {
		t.Errorf("finish() with a hand-written /v1/a = %v; want an error naming /v1/a", err)
	}
}

// The gateway's hand-written routes' document merges into an empty one.
func TestFinishHandWrittenRoutes(t *testing.T) {
	if _, err := finish([]byte(`{"swagger": "2.0", "paths": {}}`), gateway.HandWrittenOpenAPI); err != nil {
		t.Errorf("finish(gateway.HandWrittenOpenAPI) = %v", err)
	}
}

// queryType is the type of /v1/a's query parameter.
func queryType(t *testing.T, out []byte) string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct{ Parameters []struct{ Type string } }
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Paths["/v1/a"]["get"].Parameters) != 1 {
		t.Fatalf("finish() wrote %s (%v); want /v1/a's one parameter", out, err)
	}
	return doc.Paths["/v1/a"]["get"].Parameters[0].Type
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
