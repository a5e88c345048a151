// Package jsontree holds a JSON document as a tree that keeps its objects'
// key order, so a program can rewrite some values (the REST API's 64-bit
// integers, the OpenAPI document's integer schemas) and write the document
// back as it was otherwise: protobuf's JSON lists fields in their
// declaration order, which a map would lose.
package jsontree

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Value is a JSON value: an object (Keys, Fields), an array (Items) or a
// scalar (Scalar: string, json.Number, bool or nil).
type Value struct {
	Keys   []string
	Fields map[string]*Value
	Items  []*Value
	Scalar any
	Kind   Kind
}

// Kind says which of Value's parts is set.
type Kind byte

// The kinds of JSON value.
const (
	Scalar Kind = iota
	Object
	Array
)

// Parse reads one JSON document; numbers stay json.Number, exactly.
func Parse(b []byte) (*Value, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v := &Value{}
	if err := v.decode(d); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil {
		return nil, fmt.Errorf("jsontree: more than one value")
	}
	return v, nil
}

func (v *Value) decode(d *json.Decoder) error {
	t, err := d.Token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('{'):
		v.Kind, v.Fields = Object, map[string]*Value{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return err
			}
			key, ok := k.(string)
			if !ok {
				return fmt.Errorf("jsontree: object key %v", k)
			}
			x := &Value{}
			if err := x.decode(d); err != nil {
				return err
			}
			if _, dup := v.Fields[key]; !dup {
				v.Keys = append(v.Keys, key)
			}
			v.Fields[key] = x
		}
		_, err = d.Token()
		return err
	case json.Delim('['):
		v.Kind = Array
		for d.More() {
			x := &Value{}
			if err := x.decode(d); err != nil {
				return err
			}
			v.Items = append(v.Items, x)
		}
		_, err = d.Token()
		return err
	}
	v.Kind, v.Scalar = Scalar, t
	return nil
}

// MarshalJSON writes the value compactly, objects in their key order.
func (v *Value) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := v.write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (v *Value) write(b *bytes.Buffer) error {
	switch v.Kind {
	case Object:
		b.WriteByte('{')
		for i, k := range v.Keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := v.Fields[k].write(b); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case Array:
		b.WriteByte('[')
		for i, x := range v.Items {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := x.write(b); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		if s, ok := v.Scalar.(string); ok {
			writeString(b, s)
			return nil
		}
		x, err := json.Marshal(v.Scalar)
		if err != nil {
			return err
		}
		b.Write(x)
	}
	return nil
}

// writeString writes s as a JSON string without HTML escaping (< stays <,
// as protobuf's JSON writes it).
func writeString(b *bytes.Buffer, s string) {
	var x bytes.Buffer
	e := json.NewEncoder(&x)
	e.SetEscapeHTML(false)
	_ = e.Encode(s)
	b.Write(bytes.TrimRight(x.Bytes(), "\n"))
}
