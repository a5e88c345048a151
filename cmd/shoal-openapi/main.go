// Command shoal-openapi finishes the OpenAPI document Buf writes
// (gen/openapi/shoal.swagger.json) for the REST API's JSON voice: 64-bit
// integers, which protoc-gen-openapiv2 declares as strings, are JSON
// numbers in Shoal's REST answers (internal/gateway/voice.go), so their
// schemas say integer. make generate runs it after buf generate, and
// scripts/check-proto.sh does the same when it checks gen/.
//
//	go run ./cmd/shoal-openapi gen/openapi/shoal.swagger.json
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/shoalml/shoal/internal/jsontree"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: shoal-openapi FILE.swagger.json (rewritten in place)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "shoal-openapi:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := integers(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// integers rewrites every {"type": "string", "format": "int64"|"uint64"}
// (schemas, items, parameters) as {"type": "integer", ...}, keeping key
// order and the two-space indentation protoc-gen-openapiv2 writes.
func integers(b []byte) ([]byte, error) {
	doc, err := jsontree.Parse(b)
	if err != nil {
		return nil, err
	}
	walk(doc)
	compact, err := doc.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// walk rewrites 64-bit integer schemas as integers, everywhere below v.
func walk(v *jsontree.Value) {
	switch v.Kind {
	case jsontree.Object:
		if t, f := v.Fields["type"], v.Fields["format"]; t != nil && f != nil && t.Scalar == "string" && (f.Scalar == "int64" || f.Scalar == "uint64") {
			t.Scalar = "integer"
		}
		for _, k := range v.Keys {
			walk(v.Fields[k])
		}
	case jsontree.Array:
		for _, x := range v.Items {
			walk(x)
		}
	}
}
