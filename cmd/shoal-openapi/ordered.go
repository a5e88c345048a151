package main

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ordered is a JSON value that keeps its objects' key order.
type ordered struct {
	keys   []string
	fields map[string]*ordered
	items  []*ordered
	scalar any
	kind   byte // 'o' object, 'a' array, 's' scalar
}

func (o *ordered) UnmarshalJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return o.decode(d)
}

func (o *ordered) decode(d *json.Decoder) error {
	t, err := d.Token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('{'):
		o.kind, o.fields = 'o', map[string]*ordered{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return err
			}
			key, ok := k.(string)
			if !ok {
				return fmt.Errorf("object key %v", k)
			}
			v := &ordered{}
			if err := v.decode(d); err != nil {
				return err
			}
			o.keys = append(o.keys, key)
			o.fields[key] = v
		}
		_, err = d.Token()
		return err
	case json.Delim('['):
		o.kind = 'a'
		for d.More() {
			v := &ordered{}
			if err := v.decode(d); err != nil {
				return err
			}
			o.items = append(o.items, v)
		}
		_, err = d.Token()
		return err
	}
	o.kind, o.scalar = 's', t
	return nil
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	switch o.kind {
	case 'o':
		b.WriteByte('{')
		for i, k := range o.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			vb, err := json.Marshal(o.fields[k])
			if err != nil {
				return nil, err
			}
			b.Write(vb)
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, v := range o.items {
			if i > 0 {
				b.WriteByte(',')
			}
			vb, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			b.Write(vb)
		}
		b.WriteByte(']')
	default:
		return json.Marshal(o.scalar)
	}
	return b.Bytes(), nil
}

// walk rewrites 64-bit integer schemas as integers, everywhere below o.
func (o *ordered) walk() {
	switch o.kind {
	case 'o':
		if t, f := o.fields["type"], o.fields["format"]; t != nil && f != nil && t.scalar == "string" && (f.scalar == "int64" || f.scalar == "uint64") {
			t.scalar = "integer"
		}
		for _, k := range o.keys {
			o.fields[k].walk()
		}
	case 'a':
		for _, v := range o.items {
			v.walk()
		}
	}
}
