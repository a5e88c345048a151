// Package oiptest checks JSON against the Open Inference Protocol's REST
// objects, with schemas written from the text of its specification
// (rest.schema.json), for tests of the REST gateway and of the service
// behind it.
package oiptest

import (
	"bytes"
	_ "embed"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed rest.schema.json
var schemaJSON []byte

const schemaURL = "https://shoal.invalid/oip/rest.schema.json"

var (
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  = map[string]*jsonschema.Schema{}
)

// Check reports whether body (JSON) is the specification's object named
// object ("inference_response", "metadata_model_response", "error_response",
// ...: the $defs of rest.schema.json).
func Check(body []byte, object string) error {
	s, err := schema(object)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// schema compiles the object's schema once; the compiler is not safe for
// concurrent use.
func schema(object string) (*jsonschema.Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	if compiler == nil {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
		if err != nil {
			return nil, err
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource(schemaURL, doc); err != nil {
			return nil, err
		}
		compiler = c
	}
	if s, ok := schemas[object]; ok {
		return s, nil
	}
	s, err := compiler.Compile(schemaURL + "#/$defs/" + object)
	if err != nil {
		return nil, err
	}
	schemas[object] = s
	return s, nil
}

// Require fails t unless body is the specification's object.
func Require(t testing.TB, body []byte, object string) {
	t.Helper()
	if err := Check(body, object); err != nil {
		t.Errorf("%s is not a valid %s: %v", body, object, err)
	}
}
