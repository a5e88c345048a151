package onnxrt_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// tensor encodes a TensorProto named name, stored in the file or, with
// location, in an external file.
func tensor(name, location string) []byte {
	var t []byte
	t = protowire.AppendTag(t, 8, protowire.BytesType)
	t = protowire.AppendString(t, name)
	if location != "" {
		var kv []byte
		kv = protowire.AppendTag(kv, 1, protowire.BytesType)
		kv = protowire.AppendString(kv, "location")
		kv = protowire.AppendTag(kv, 2, protowire.BytesType)
		kv = protowire.AppendString(kv, location)
		t = protowire.AppendTag(t, 13, protowire.BytesType)
		t = protowire.AppendBytes(t, kv)
		t = protowire.AppendTag(t, 14, protowire.VarintType)
		t = protowire.AppendVarint(t, 1)
	}
	return t
}

func field(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func TestCheckExternalData(t *testing.T) {
	inGraph := func(g []byte) []byte { return field(7, g) }
	nodeWith := func(attr []byte) []byte { return field(1, field(5, attr)) }
	cases := []struct {
		name  string
		model []byte
		bad   bool
	}{
		{"a real classifier", onnxtest.Classifier{Channels: 3, Height: 8, Width: 8, Classes: 2}.Bytes(), false},
		{"inline initializer", inGraph(field(5, tensor("w", ""))), false},
		{"external initializer", inGraph(field(5, tensor("w", "/etc/passwd"))), true},
		{"external sparse initializer", inGraph(field(15, field(1, tensor("v", "../x")))), true},
		{"external attribute tensor", inGraph(nodeWith(field(5, tensor("c", "w.bin")))), true},
		{"external tensor in a subgraph", inGraph(nodeWith(field(6, field(5, tensor("w", "w.bin"))))), true},
		{"external tensor in a function", field(25, field(7, field(5, field(5, tensor("w", "w.bin"))))), true},
	}
	for _, c := range cases {
		err := onnxrt.CheckExternalData(c.model)
		if got := errors.Is(err, onnxrt.ErrExternalData); got != c.bad || (!c.bad && err != nil) {
			t.Errorf("CheckExternalData(%s) = %v; want refused %v", c.name, err, c.bad)
		}
		if c.bad && !strings.Contains(err.Error(), "tensor") {
			t.Errorf("CheckExternalData(%s) = %v; want the tensor named", c.name, err)
		}
	}
	// Deep nesting and garbage fail cleanly.
	deep := field(5, tensor("w", ""))
	for range 100 {
		deep = field(1, field(5, field(6, deep)))
	}
	if err := onnxrt.CheckExternalData(field(7, deep)); !errors.Is(err, onnxrt.ErrInvalidModel) {
		t.Errorf("CheckExternalData(100 nested subgraphs) = %v; want ErrInvalidModel", err)
	}
	if err := onnxrt.CheckExternalData([]byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f}); !errors.Is(err, onnxrt.ErrInvalidModel) {
		t.Errorf("CheckExternalData(truncated) = %v; want ErrInvalidModel", err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(path, inGraph(field(5, tensor("w", "/etc/shadow"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := onnxrt.CheckExternalDataFile(path); !errors.Is(err, onnxrt.ErrExternalData) {
		t.Errorf("CheckExternalDataFile = %v; want ErrExternalData", err)
	}
}

func FuzzCheckExternalData(f *testing.F) {
	f.Add(onnxtest.Classifier{Channels: 1, Height: 4, Width: 4, Classes: 2}.Bytes())
	f.Add(field(7, field(5, tensor("w", "x"))))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = onnxrt.CheckExternalData(b) // must not panic or loop
	})
}
