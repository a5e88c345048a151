package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	shoal "github.com/shoalml/shoal"
)

// handWrittenRoutes are the routes this package writes by hand, as
// "METHOD /path" in the OpenAPI document's terms.
func handWrittenRoutes() []string {
	routes := []string{http.MethodPost + " /predict"}
	for _, rt := range oipRoutes {
		if rt.pattern == "/v2/{path}" {
			continue // "/v2/", the specification's spelling of /v2: one operation
		}
		routes = append(routes, rt.method+" "+rt.pattern)
	}
	return routes
}

// operations lists a document's operations as "METHOD /path".
func operations(t *testing.T, b []byte) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("json.Unmarshal(the document) = %v", err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	return ops
}

// Every route written by hand is described, in the hand-written document
// and in the one /openapi.json serves (make generate merges them), and the
// hand-written document describes no route that is not there.
func TestHandWrittenRoutesDescribed(t *testing.T) {
	routes := handWrittenRoutes()
	described := operations(t, HandWrittenOpenAPI)
	served := operations(t, shoal.OpenAPI)
	for _, r := range routes {
		if !slices.Contains(described, r) {
			t.Errorf("handwritten.swagger.json does not describe %s", r)
		}
		if !slices.Contains(served, r) {
			t.Errorf("gen/openapi/shoal.swagger.json lacks %s: run make generate", r)
		}
	}
	for _, d := range described {
		if !slices.Contains(routes, d) {
			t.Errorf("handwritten.swagger.json describes %s, which no hand-written route serves", d)
		}
	}
}
