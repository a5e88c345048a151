// Package oip holds the Open Inference Protocol's tensor wire forms, which
// the REST gateway and the Inference service both read: the datatypes and
// their sizes, shapes, the raw (binary) form of every datatype, BYTES
// elements with their 4-byte lengths, and the REST JSON's "data" arrays.
package oip

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	oippb "github.com/shoalml/shoal/gen/inference"
)

// sizes are the protocol's datatypes ("Tensor Data Types") with the size
// of one element in bytes; BYTES elements vary (0 here). BF16 is Triton's
// addition, which its clients send as binary data.
var sizes = map[string]int{
	"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8,
	"INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8,
	"FP16": 2, "BF16": 2, "FP32": 4, "FP64": 8, "BYTES": 0,
}

// Datatypes lists the datatypes this package reads, for error messages.
func Datatypes() string {
	names := make([]string, 0, len(sizes))
	for n := range sizes {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// ElementSize returns the size in bytes of one element of datatype (0 for
// BYTES) and whether the datatype is one of the protocol's.
func ElementSize(datatype string) (int, bool) {
	n, ok := sizes[datatype]
	return n, ok
}

// CheckDatatype returns a clear error for a datatype the protocol does not
// define.
func CheckDatatype(datatype string) error {
	if _, ok := sizes[datatype]; !ok {
		return fmt.Errorf("unknown datatype %q; the protocol's are %s", datatype, Datatypes())
	}
	return nil
}

// MaxElements bounds the element count of a shape, so that a count times
// an element size never overflows int64.
const MaxElements = math.MaxInt64 / 8

// Elements returns the number of elements of shape. A request's dimensions
// are sizes (the specification: each an unsigned 64-bit integer; -1, a
// variable dimension, belongs in metadata only), so a negative one is an
// error, as is a product past MaxElements.
func Elements(shape []int64) (int64, error) {
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is negative; a tensor's dimensions are sizes, 0 or more", shape, i)
		}
	}
	if slices.Contains(shape, 0) {
		return 0, nil
	}
	n := int64(1)
	for _, d := range shape {
		if n > MaxElements/d {
			return 0, fmt.Errorf("shape %v holds more than %d elements", shape, int64(MaxElements))
		}
		n *= d
	}
	return n, nil
}

// CheckRaw checks that raw is the raw form of n elements of datatype:
// n times the element size, or for BYTES exactly n length-prefixed
// elements.
func CheckRaw(datatype string, n int64, raw []byte) error {
	size, ok := ElementSize(datatype)
	if !ok {
		return CheckDatatype(datatype)
	}
	if size == 0 {
		_, err := SplitBytes(raw, n)
		return err
	}
	if want := n * int64(size); int64(len(raw)) != want {
		return fmt.Errorf("%d bytes; %d %s elements take %d", len(raw), n, datatype, want)
	}
	return nil
}

// SplitBytes splits the raw form of a BYTES tensor (each element a 4-byte
// little-endian length, then that many bytes, no padding) into its
// elements, which must number exactly n. The elements alias b.
func SplitBytes(b []byte, n int64) ([][]byte, error) {
	if n < 0 || n > int64(len(b)/4) {
		return nil, fmt.Errorf("%d bytes cannot hold %d BYTES elements (each needs at least its 4-byte length)", len(b), n)
	}
	out := make([][]byte, 0, n)
	for off := 0; off < len(b); {
		if int64(len(out)) == n {
			return nil, fmt.Errorf("%d bytes left after the %d BYTES elements the shape holds", len(b)-off, n)
		}
		if len(b)-off < 4 {
			return nil, fmt.Errorf("BYTES element %d: %d bytes left, too few for its 4-byte length", len(out), len(b)-off)
		}
		size := binary.LittleEndian.Uint32(b[off:])
		off += 4
		if uint64(size) > uint64(len(b)-off) {
			return nil, fmt.Errorf("BYTES element %d: length %d, but only %d bytes follow", len(out), size, len(b)-off)
		}
		end := off + int(size)
		out = append(out, b[off:end:end])
		off = end
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("%d BYTES elements; the shape holds %d", len(out), n)
	}
	return out, nil
}

// JoinBytes writes BYTES elements in the raw form.
func JoinBytes(elems [][]byte) []byte {
	size := 0
	for _, e := range elems {
		size += 4 + len(e)
	}
	b := make([]byte, 0, size)
	for _, e := range elems {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

// RawFromContents writes typed contents in the raw form of datatype, n
// elements. FP16 and BF16 have no typed field: the protocol sends them raw.
func RawFromContents(datatype string, n int64, c *oippb.InferTensorContents) ([]byte, error) {
	count := func(got int) error {
		if int64(got) != n {
			return fmt.Errorf("%d %s contents; the shape holds %d", got, datatype, n)
		}
		return nil
	}
	var b []byte
	switch datatype {
	case "BOOL":
		if err := count(len(c.GetBoolContents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetBoolContents() {
			b = append(b, boolByte(v))
		}
	case "INT8", "INT16", "INT32":
		if err := count(len(c.GetIntContents())); err != nil {
			return nil, err
		}
		bits := 8 * sizes[datatype]
		for _, v := range c.GetIntContents() {
			if bits < 32 && (v < -1<<(bits-1) || v >= 1<<(bits-1)) {
				return nil, fmt.Errorf("%d is out of %s's range", v, datatype)
			}
			b = appendUint(b, uint64(v), bits/8)
		}
	case "INT64":
		if err := count(len(c.GetInt64Contents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetInt64Contents() {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	case "UINT8", "UINT16", "UINT32":
		if err := count(len(c.GetUintContents())); err != nil {
			return nil, err
		}
		bits := 8 * sizes[datatype]
		for _, v := range c.GetUintContents() {
			if bits < 32 && v >= 1<<bits {
				return nil, fmt.Errorf("%d is out of %s's range", v, datatype)
			}
			b = appendUint(b, uint64(v), bits/8)
		}
	case "UINT64":
		if err := count(len(c.GetUint64Contents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetUint64Contents() {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	case "FP32":
		if err := count(len(c.GetFp32Contents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetFp32Contents() {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	case "FP64":
		if err := count(len(c.GetFp64Contents())); err != nil {
			return nil, err
		}
		for _, v := range c.GetFp64Contents() {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	case "BYTES":
		if err := count(len(c.GetBytesContents())); err != nil {
			return nil, err
		}
		b = JoinBytes(c.GetBytesContents())
	case "FP16", "BF16":
		return nil, fmt.Errorf("%s has no typed contents; it travels raw", datatype)
	default:
		return nil, CheckDatatype(datatype)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// appendUint appends the low size bytes of v, little-endian.
func appendUint(b []byte, v uint64, size int) []byte {
	for i := range size {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// readUint reads size little-endian bytes.
func readUint(b []byte, size int) uint64 {
	var v uint64
	for i := range size {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

// FP16 converts f to IEEE 754 half precision, rounding to nearest even;
// false when f is beyond its range (65504, and what rounds past it).
func FP16(f float64) (uint16, bool) {
	var sign uint16
	if math.Signbit(f) {
		sign, f = 0x8000, -f
	}
	switch {
	case math.IsNaN(f) || f >= 65520:
		return 0, false
	case f == 0:
		return sign, true
	}
	frac, exp := math.Frexp(f) // f = frac * 2^exp, frac in [0.5, 1)
	if e := exp + 14; e >= 1 {
		m := math.RoundToEven((2*frac - 1) * 1024)
		if m == 1024 {
			m, e = 0, e+1
		}
		if e >= 31 {
			return 0, false
		}
		return sign | uint16(e)<<10 | uint16(m), true
	}
	// Subnormal: f = m * 2^-24. m = 1024 is the smallest normal, whose bits
	// are the same number.
	return sign | uint16(math.RoundToEven(f*(1<<24))), true
}

// FromFP16 converts IEEE 754 half precision to float64.
func FromFP16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch e {
	case 0:
		return sign * math.Ldexp(m, -24)
	case 31:
		if m == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+m/1024, e-15)
}

// BF16 converts f to bfloat16 (the top half of an FP32), rounding to
// nearest even; false when f is beyond its range.
func BF16(f float32) (uint16, bool) {
	b := math.Float32bits(f)
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return 0, false
	}
	b += 0x7fff + (b>>16)&1
	h := uint16(b >> 16)
	if h&0x7f80 == 0x7f80 {
		return 0, false
	}
	return h, true
}

// FromBF16 converts bfloat16 to float32.
func FromBF16(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}
