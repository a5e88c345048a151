package oip_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	oippb "github.com/shoalml/shoal/gen/inference"
	"github.com/shoalml/shoal/internal/oip"
	"github.com/shoalml/shoal/internal/oip/oiptest"
)

func le16(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

func le32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func le64(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func f32(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestFromJSONEveryDatatype(t *testing.T) {
	neg := func(v int64, size int) []byte { return le64(uint64(v))[:size] }
	tests := []struct {
		datatype string
		data     string
		n        int64
		want     []byte
	}{
		{"BOOL", `[true, false, true]`, 3, []byte{1, 0, 1}},
		{"UINT8", `[0, 255]`, 2, []byte{0, 255}},
		{"UINT16", `[1, 65535]`, 2, le16(1, 65535)},
		{"UINT32", `[[1, 2], [3, 4]]`, 4, le32(1, 2, 3, 4)},
		{"UINT64", `[18446744073709551615]`, 1, le64(math.MaxUint64)},
		{"INT8", `[-128, 127]`, 2, append(neg(-128, 1), 127)},
		{"INT16", `[-2]`, 1, neg(-2, 2)},
		{"INT32", `[-2147483648]`, 1, neg(-2147483648, 4)},
		{"INT64", `[-9223372036854775808]`, 1, le64(1 << 63)},
		{"FP16", `[1, -2, 0.5, 65504, 6e-8]`, 5, le16(0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001)},
		{"BF16", `[1, -2, 3.140625]`, 3, le16(0x3f80, 0xc000, 0x4049)},
		{"FP32", `[[[1.5]], [[-0.25]], [[1e-30]]]`, 3, f32(1.5, -0.25, 1e-30)},
		{"FP64", `[0.1, -1e300]`, 2, le64(math.Float64bits(0.1), math.Float64bits(-1e300))},
		{"BYTES", `["héllo", {"b64": "/9j/"}, ""]`, 3, append(append(append(le32(6), "héllo"...), append(le32(3), 0xff, 0xd8, 0xff)...), le32(0)...)},
		{"FP32", `[]`, 0, []byte{}},
	}
	for _, tt := range tests {
		got, err := oip.FromJSON(tt.datatype, []byte(tt.data), tt.n)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("FromJSON(%s, %s, %d) = %x, %v; want %x", tt.datatype, tt.data, tt.n, got, err, tt.want)
			continue
		}
		// Back to JSON and in again: the same bytes.
		js, err := oip.AppendJSON(nil, tt.datatype, tt.n, got)
		if err != nil {
			t.Errorf("AppendJSON(%s, %x) = %v", tt.datatype, got, err)
			continue
		}
		if again, err := oip.FromJSON(tt.datatype, js, tt.n); err != nil || !bytes.Equal(again, got) {
			t.Errorf("FromJSON(AppendJSON(%s) = %s) = %x, %v; want %x", tt.datatype, js, again, err, got)
		}
		if tt.datatype != "BYTES" {
			oiptest.Require(t, js, "tensor_data")
		}
	}
}

func TestFromJSONErrors(t *testing.T) {
	tests := []struct {
		datatype, data string
		n              int64
		msg            string
	}{
		{"BOOL", `[true]`, 3, "data holds 1 elements; the shape holds 3"},
		{"UINT32", `[1, 2, 3, 4, 5]`, 4, "more than the 4 elements"},
		{"BOOL", `[1]`, 1, "not a boolean"},
		{"INT8", `[128]`, 1, "out of INT8's range"},
		{"UINT8", `[-1]`, 1, "not a non-negative integer"},
		{"INT32", `[1.5]`, 1, "1.5 is not an integer"},
		{"INT32", `["1"]`, 1, "is not a number"},
		{"FP32", `[1e39]`, 1, "out of FP32's range"},
		{"FP16", `[65520]`, 1, "out of FP16's range"},
		{"BF16", `[1e39]`, 1, "out of BF16's range"},
		{"FP32", `[null]`, 1, "null is not a number"},
		{"FP32", `{"a": 1}`, 1, "must be a JSON array"},
		{"BYTES", `[{"b64": "!!"}]`, 1, "not standard base64"},
		{"BYTES", `[{"b64": "AA==", "x": 1}]`, 1, "not a string or"},
		{"BYTES", `[3]`, 1, "not a string or"},
		{"FP32", `[1, 2`, 2, "ends inside"},
		{"FP32", `[1] x`, 1, "after the data array"},
		{"FP32", strings.Repeat("[", 40) + "1" + strings.Repeat("]", 40), 1, "nested deeper"},
		{"FP32", `[1]`, 1 << 40, "cannot"}, // a shape past what the data could hold: refused before allocating
		{"COMPLEX64", `[1]`, 1, "unknown datatype"},
	}
	for _, tt := range tests {
		_, err := oip.FromJSON(tt.datatype, []byte(tt.data), tt.n)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("FromJSON(%s, %.50s, %d) = %v; want an error containing %q", tt.datatype, tt.data, tt.n, err, tt.msg)
		}
	}
}

func TestElements(t *testing.T) {
	for _, tt := range []struct {
		shape []int64
		want  int64
		msg   string
	}{
		{[]int64{1, 3, 28, 28}, 2352, ""},
		{[]int64{}, 1, ""},
		{[]int64{1 << 40, 1 << 40, 0}, 0, ""},
		{[]int64{2, -1}, 0, "negative"},
		{[]int64{1 << 31, 1 << 31, 1 << 31}, 0, "more than"},
		{[]int64{math.MaxInt64, 2}, 0, "more than"},
	} {
		got, err := oip.Elements(tt.shape)
		if tt.msg == "" && (err != nil || got != tt.want) || tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
			t.Errorf("Elements(%v) = %d, %v; want %d or an error containing %q", tt.shape, got, err, tt.want, tt.msg)
		}
	}
}

func TestSplitBytes(t *testing.T) {
	good := oip.JoinBytes([][]byte{[]byte("ab"), {}, []byte("c")})
	got, err := oip.SplitBytes(good, 3)
	if err != nil || len(got) != 3 || string(got[0]) != "ab" || len(got[1]) != 0 || string(got[2]) != "c" {
		t.Fatalf("SplitBytes(JoinBytes(ab, '', c), 3) = %q, %v", got, err)
	}
	for _, tt := range []struct {
		b   []byte
		n   int64
		msg string
	}{
		{good, 2, "bytes left after"},
		{oip.JoinBytes([][]byte{[]byte("abcdefgh"), []byte("ij")}), 3, "2 BYTES elements; the shape holds 3"},
		{good[:len(good)-1], 3, "only 0 bytes follow"},
		{append(le32(1<<31), 'x'), 1, "length 2147483648, but only 1 bytes follow"},
		{[]byte{1, 0}, 1, "cannot hold"},
		{append(good, 0, 0), 3, "bytes left after"},
		{good, 1 << 40, "cannot hold"},
	} {
		if _, err := oip.SplitBytes(tt.b, tt.n); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("SplitBytes(%x, %d) = %v; want an error containing %q", tt.b, tt.n, err, tt.msg)
		}
	}
}

func TestCheckRaw(t *testing.T) {
	if err := oip.CheckRaw("FP32", 3, make([]byte, 12)); err != nil {
		t.Errorf("CheckRaw(FP32, 3, 12 bytes) = %v", err)
	}
	if err := oip.CheckRaw("FP32", 3, make([]byte, 11)); err == nil || !strings.Contains(err.Error(), "11 bytes; 3 FP32 elements take 12") {
		t.Errorf("CheckRaw(FP32, 3, 11 bytes) = %v", err)
	}
	if err := oip.CheckRaw("FP8", 1, nil); err == nil || !strings.Contains(err.Error(), "unknown datatype") {
		t.Errorf("CheckRaw(FP8) = %v", err)
	}
}

func TestRawFromContents(t *testing.T) {
	for _, tt := range []struct {
		datatype string
		c        *oippb.InferTensorContents
		want     []byte
	}{
		{"BOOL", &oippb.InferTensorContents{BoolContents: []bool{true, false}}, []byte{1, 0}},
		{"INT8", &oippb.InferTensorContents{IntContents: []int32{-1, 5}}, []byte{0xff, 5}},
		{"UINT16", &oippb.InferTensorContents{UintContents: []uint32{1, 65535}}, le16(1, 65535)},
		{"INT64", &oippb.InferTensorContents{Int64Contents: []int64{-1, 2}}, le64(math.MaxUint64, 2)},
		{"UINT64", &oippb.InferTensorContents{Uint64Contents: []uint64{7, 8}}, le64(7, 8)},
		{"FP32", &oippb.InferTensorContents{Fp32Contents: []float32{1, 2}}, f32(1, 2)},
		{"FP64", &oippb.InferTensorContents{Fp64Contents: []float64{1, 2}}, le64(math.Float64bits(1), math.Float64bits(2))},
		{"BYTES", &oippb.InferTensorContents{BytesContents: [][]byte{[]byte("a"), []byte("bc")}}, oip.JoinBytes([][]byte{[]byte("a"), []byte("bc")})},
	} {
		got, err := oip.RawFromContents(tt.datatype, 2, tt.c)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("RawFromContents(%s, %v) = %x, %v; want %x", tt.datatype, tt.c, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		datatype string
		c        *oippb.InferTensorContents
		msg      string
	}{
		{"INT8", &oippb.InferTensorContents{IntContents: []int32{300, 1}}, "out of INT8's range"},
		{"FP32", &oippb.InferTensorContents{Fp32Contents: []float32{1}}, "1 FP32 contents; the shape holds 2"},
		{"FP16", &oippb.InferTensorContents{}, "travels raw"},
	} {
		if _, err := oip.RawFromContents(tt.datatype, 2, tt.c); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("RawFromContents(%s, %v) = %v; want an error containing %q", tt.datatype, tt.c, err, tt.msg)
		}
	}
}

func TestHalfPrecision(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		bits uint16
	}{
		{0, 0}, {1, 0x3c00}, {-1, 0xbc00}, {65504, 0x7bff}, {0.333251953125, 0x3555},
		{6.103515625e-05, 0x0400}, {5.960464477539063e-08, 0x0001}, {2049, 0x6800}, {2051, 0x6802}, // ties to even
	} {
		got, ok := oip.FP16(tt.f)
		if !ok || got != tt.bits {
			t.Errorf("FP16(%v) = %#04x, %t; want %#04x", tt.f, got, ok, tt.bits)
		}
		if back := oip.FromFP16(tt.bits); tt.f != 2049 && tt.f != 2051 && back != tt.f {
			t.Errorf("FromFP16(%#04x) = %v; want %v", tt.bits, back, tt.f)
		}
	}
	if _, ok := oip.FP16(65520); ok {
		t.Errorf("FP16(65520) ok; want out of range (rounds to infinity)")
	}
	if h, ok := oip.BF16(1.00390625); !ok || h != 0x3f80 { // a tie: to even
		t.Errorf("BF16(1.00390625) = %#04x, %t; want 0x3f80", h, ok)
	}
	if got := oip.FromBF16(0x4049); got != 3.140625 {
		t.Errorf("FromBF16(0x4049) = %v; want 3.140625", got)
	}
}

func TestAppendJSONRefusesNaN(t *testing.T) {
	_, err := oip.AppendJSON(nil, "FP32", 1, f32(float32(math.NaN())))
	if err == nil || !strings.Contains(err.Error(), "binary data") {
		t.Errorf("AppendJSON(NaN) = %v; want an error suggesting binary data", err)
	}
	got, err := oip.AppendJSON(nil, "BYTES", 2, oip.JoinBytes([][]byte{[]byte("ok"), {0xff, 0xd8}}))
	if err != nil || string(got) != `["ok",{"b64":"/9g="}]` {
		t.Errorf(`AppendJSON(BYTES "ok", ff d8) = %s, %v; want ["ok",{"b64":"/9g="}]`, got, err)
	}
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Errorf("AppendJSON wrote invalid JSON %s: %v", got, err)
	}
}

// FuzzFromJSON: any bytes as a data array of any datatype and count either
// convert to raw data of exactly the shape's size, or fail; never panic.
func FuzzFromJSON(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[[true],[false]]`, `["a",{"b64":"AA=="}]`, `[1e400]`, `[[[[`, `["\u00e9\"]`, `[{"b64":{"x":[1]}}]`, `[-0.0, 1E5]`} {
		f.Add(s, uint8(0), int64(3))
	}
	types := []string{"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "BF16", "FP32", "FP64", "BYTES"}
	f.Fuzz(func(t *testing.T, data string, typ uint8, n int64) {
		dt := types[int(typ)%len(types)]
		raw, err := oip.FromJSON(dt, []byte(data), n)
		if err != nil {
			return
		}
		if err := oip.CheckRaw(dt, n, raw); err != nil {
			t.Fatalf("FromJSON(%s, %q, %d) = %x, which CheckRaw refuses: %v", dt, data, n, raw, err)
		}
		if _, err := oip.AppendJSON(nil, dt, n, raw); err != nil && !strings.Contains(err.Error(), "JSON cannot carry") {
			t.Fatalf("AppendJSON(FromJSON(%s, %q)) = %v", dt, data, err)
		}
	})
}

// FuzzSplitBytes: elements found always lie inside the input and number n.
func FuzzSplitBytes(f *testing.F) {
	f.Add(oip.JoinBytes([][]byte{[]byte("ab"), {}}), int64(2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, int64(1))
	f.Fuzz(func(t *testing.T, b []byte, n int64) {
		elems, err := oip.SplitBytes(b, n)
		if err != nil {
			return
		}
		if int64(len(elems)) != n || !bytes.Equal(oip.JoinBytes(elems), b) {
			t.Fatalf("SplitBytes(%x, %d) = %q; does not join back", b, n, elems)
		}
	})
}

// BenchmarkFromJSON reads the JSON "data" of one 224×224 RGB image in FP32,
// as a client writes it (shortest round-trip decimals).
func BenchmarkFromJSON(b *testing.B) {
	const n = 3 * 224 * 224
	var sb strings.Builder
	sb.WriteString("[")
	for i := range n {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(strconv.FormatFloat(float64(float32(i%255)/255-0.5)/0.226, 'g', -1, 64))
	}
	sb.WriteString("]")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := oip.FromJSON("FP32", data, n); err != nil {
			b.Fatal(err)
		}
	}
}
