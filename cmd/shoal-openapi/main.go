// Command shoal-openapi finishes the OpenAPI document Buf writes
// (gen/openapi/shoal.swagger.json) for the REST API's JSON voice: 64-bit
// integers, which protoc-gen-openapiv2 declares as strings, are JSON
// numbers in Shoal's REST answers (internal/gateway/voice.go), so their
// schemas say integer; and the routes the gateway writes by hand (POST
// /predict, the Open Inference Protocol's /v2), which no proto describes,
// are merged in from internal/gateway/handwritten.swagger.json. make
// generate runs it after buf generate, and scripts/check-proto.sh does the
// same when it checks gen/.
//
//	go run ./cmd/shoal-openapi gen/openapi/shoal.swagger.json
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/shoalml/shoal/internal/gateway"
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
	out, err := finish(b, gateway.HandWrittenOpenAPI)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// finish rewrites every {"type": "string", "format": "int64"|"uint64"}
// (schemas, items, parameters) as {"type": "integer", ...} and merges
// extra's paths, parameters, definitions and tags in, keeping key order
// and the two-space indentation protoc-gen-openapiv2 writes. Run again on
// its own output, it writes the same.
func finish(b, extra []byte) ([]byte, error) {
	doc, err := jsontree.Parse(b)
	if err != nil {
		return nil, err
	}
	more, err := jsontree.Parse(extra)
	if err != nil {
		return nil, fmt.Errorf("the hand-written routes' document: %w", err)
	}
	if err := merge(doc, more); err != nil {
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

// merge adds extra's paths, parameters and definitions to doc, replacing
// those of the same name, and its tags' descriptions (a tag extra names
// that doc lacks is added). A path doc has already must be extra's own
// from an earlier run: the hand-written routes never shadow generated ones.
func merge(doc, extra *jsontree.Value) error {
	if doc.Kind != jsontree.Object || extra.Kind != jsontree.Object {
		return fmt.Errorf("merge: both documents must be JSON objects")
	}
	for _, section := range []string{"paths", "parameters", "definitions"} {
		from := extra.Fields[section]
		if from == nil {
			continue
		}
		to := field(doc, section)
		for _, k := range from.Keys {
			if section == "paths" && to.Fields[k] != nil && !sameOperations(to.Fields[k], from.Fields[k]) {
				return fmt.Errorf("merge: the hand-written path %s is generated from proto/ too", k)
			}
			set(to, k, from.Fields[k])
		}
	}
	if tags := extra.Fields["tags"]; tags != nil {
		to := doc.Fields["tags"]
		if to == nil {
			to = &jsontree.Value{Kind: jsontree.Array}
			set(doc, "tags", to)
		}
	next:
		for _, t := range tags.Items {
			for i, have := range to.Items {
				if name(have) == name(t) {
					to.Items[i] = t
					continue next
				}
			}
			to.Items = append(to.Items, t)
		}
	}
	return nil
}

// sameOperations reports whether two path items have the same operation
// ids: the same hand-written routes.
func sameOperations(a, b *jsontree.Value) bool {
	ids := func(v *jsontree.Value) string {
		var s string
		for _, k := range v.Keys {
			if op := v.Fields[k]; op.Kind == jsontree.Object && op.Fields["operationId"] != nil {
				s += fmt.Sprint(op.Fields["operationId"].Scalar) + " "
			}
		}
		return s
	}
	return ids(a) == ids(b)
}

func name(tag *jsontree.Value) any {
	if tag.Kind != jsontree.Object || tag.Fields["name"] == nil {
		return nil
	}
	return tag.Fields["name"].Scalar
}

// field returns obj's object under key, added (empty) when missing.
func field(obj *jsontree.Value, key string) *jsontree.Value {
	if v := obj.Fields[key]; v != nil {
		return v
	}
	v := &jsontree.Value{Kind: jsontree.Object, Fields: map[string]*jsontree.Value{}}
	set(obj, key, v)
	return v
}

// set puts v under key in obj: in place of the old value, or last.
func set(obj *jsontree.Value, key string, v *jsontree.Value) {
	if obj.Fields == nil {
		obj.Fields = map[string]*jsontree.Value{}
	}
	if _, ok := obj.Fields[key]; !ok {
		obj.Keys = append(obj.Keys, key)
	}
	obj.Fields[key] = v
}
