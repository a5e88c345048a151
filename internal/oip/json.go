package oip

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a "data" array; tensors of image models
// have four or five dimensions.
const maxDepth = 32

// FromJSON converts a REST "data" array of n elements of datatype to the
// raw form. The array is flat or nested (the specification allows both;
// as Triton does, the elements are read in row-major order whatever the
// nesting, and only their number is checked against the shape). Elements
// are JSON booleans for BOOL, integers for the integer types (in range),
// numbers for the floating-point ones (FP16 and BF16 rounded to nearest
// even), and for BYTES strings (their UTF-8 bytes) or {"b64": "<base64>"}
// objects (any bytes, as KServe's v1 protocol writes them).
func FromJSON(datatype string, data []byte, n int64) ([]byte, error) {
	size, ok := ElementSize(datatype)
	if !ok {
		return nil, CheckDatatype(datatype)
	}
	// Every element takes at least a byte of JSON: this bounds what a
	// shape may claim before anything is allocated.
	if n < 0 || n > int64(len(data)) {
		return nil, fmt.Errorf("the shape holds %d elements; %d bytes of data cannot", n, len(data))
	}
	out := make([]byte, 0, n*int64(size))
	var count int64
	p := scanner{b: data}
	p.space()
	if !p.at('[') {
		return nil, errors.New("data must be a JSON array")
	}
	err := p.array(0, func(kind byte, tok []byte) error {
		if count == n {
			return fmt.Errorf("data holds more than the %d elements of the shape", n)
		}
		var err error
		if out, err = appendElement(out, datatype, kind, tok); err != nil {
			return fmt.Errorf("data element %d: %w", count, err)
		}
		count++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.space(); p.i != len(p.b) {
		return nil, fmt.Errorf("unexpected %q after the data array", p.b[p.i])
	}
	if count != n {
		return nil, fmt.Errorf("data holds %d elements; the shape holds %d", count, n)
	}
	return out, nil
}

// Token kinds of the scanner.
const (
	kindNumber = '0'
	kindString = '"'
	kindObject = '{'
	kindTrue   = 't'
	kindFalse  = 'f'
	kindNull   = 'n'
)

// scanner walks a JSON array of arrays and scalars. It needs no reflection
// and no intermediate values, so a tensor of a million numbers costs one
// pass.
type scanner struct {
	b []byte
	i int
}

var errEnd = errors.New("data ends inside an array")

func (p *scanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) at(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

// array reads the array at p.i, calling emit for each scalar in order.
func (p *scanner) array(depth int, emit func(kind byte, tok []byte) error) error {
	if depth >= maxDepth {
		return fmt.Errorf("data arrays nested deeper than %d", maxDepth)
	}
	p.i++ // '['
	p.space()
	if p.at(']') {
		p.i++
		return nil
	}
	for {
		p.space()
		if p.i >= len(p.b) {
			return errEnd
		}
		var err error
		switch c := p.b[p.i]; c {
		case '[':
			err = p.array(depth+1, emit)
		case '"':
			var tok []byte
			if tok, err = p.str(); err == nil {
				err = emit(kindString, tok)
			}
		case '{':
			var tok []byte
			if tok, err = p.object(); err == nil {
				err = emit(kindObject, tok)
			}
		case 't', 'f', 'n':
			err = p.literal(emit)
		default:
			start := p.i
			for p.i < len(p.b) && isNumberByte(p.b[p.i]) {
				p.i++
			}
			if p.i == start {
				return fmt.Errorf("unexpected %q in the data array", c)
			}
			err = emit(kindNumber, p.b[start:p.i])
		}
		if err != nil {
			return err
		}
		p.space()
		if p.i >= len(p.b) {
			return errEnd
		}
		switch c := p.b[p.i]; c {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return fmt.Errorf("unexpected %q in the data array", c)
		}
	}
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func (p *scanner) literal(emit func(kind byte, tok []byte) error) error {
	for _, lit := range []string{"true", "false", "null"} {
		if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
			p.i += len(lit)
			return emit(lit[0], p.b[p.i-len(lit):p.i])
		}
	}
	return fmt.Errorf("unexpected %q in the data array", p.b[p.i])
}

// str returns the string at p.i, quotes included.
func (p *scanner) str() ([]byte, error) {
	start := p.i
	for p.i++; p.i < len(p.b); p.i++ {
		switch p.b[p.i] {
		case '\\':
			p.i++
		case '"':
			p.i++
			return p.b[start:p.i], nil
		}
	}
	return nil, errors.New("data ends inside a string")
}

// object returns the object at p.i, braces included.
func (p *scanner) object() ([]byte, error) {
	start, depth := p.i, 0
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '"':
			if _, err := p.str(); err != nil {
				return nil, err
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				p.i++
				return p.b[start:p.i], nil
			}
		}
		p.i++
	}
	return nil, errors.New("data ends inside an object")
}

// appendElement appends one JSON element in datatype's raw form.
func appendElement(out []byte, datatype string, kind byte, tok []byte) ([]byte, error) {
	want := func(what string) error {
		return fmt.Errorf("%s is not %s (the datatype is %s)", shorten(tok), what, datatype)
	}
	switch datatype {
	case "BOOL":
		switch kind {
		case kindTrue:
			return append(out, 1), nil
		case kindFalse:
			return append(out, 0), nil
		}
		return nil, want("a boolean")
	case "BYTES":
		var elem []byte
		switch kind {
		case kindString:
			var s string
			if err := json.Unmarshal(tok, &s); err != nil {
				return nil, fmt.Errorf("%s is not a JSON string: %v", shorten(tok), err)
			}
			elem = []byte(s)
		case kindObject:
			var obj map[string]string
			err := json.Unmarshal(tok, &obj)
			b64, ok := obj["b64"]
			if err != nil || !ok || len(obj) != 1 {
				return nil, want(`a string or {"b64": "<base64>"}`)
			}
			if elem, err = base64.StdEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf(`"b64" is not standard base64: %v`, err)
			}
		default:
			return nil, want(`a string or {"b64": "<base64>"}`)
		}
		if uint64(len(elem)) > math.MaxUint32 {
			return nil, errors.New("a BYTES element is at most 4 GiB")
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(len(elem)))
		return append(out, elem...), nil
	}
	if kind != kindNumber {
		return nil, want("a number")
	}
	s := string(tok)
	size := sizes[datatype]
	switch datatype {
	case "INT8", "INT16", "INT32", "INT64":
		v, err := strconv.ParseInt(s, 10, 8*size)
		if err != nil {
			return nil, numberError(tok, datatype, err, "an integer")
		}
		return appendUint(out, uint64(v), size), nil
	case "UINT8", "UINT16", "UINT32", "UINT64":
		v, err := strconv.ParseUint(s, 10, 8*size)
		if err != nil {
			return nil, numberError(tok, datatype, err, "a non-negative integer")
		}
		return appendUint(out, v, size), nil
	case "FP32", "BF16":
		v, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return nil, numberError(tok, datatype, err, "a number")
		}
		if datatype == "FP32" {
			return binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(v))), nil
		}
		h, ok := BF16(float32(v))
		if !ok {
			return nil, fmt.Errorf("%s is out of BF16's range", shorten(tok))
		}
		return binary.LittleEndian.AppendUint16(out, h), nil
	case "FP64":
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, numberError(tok, datatype, err, "a number")
		}
		return binary.LittleEndian.AppendUint64(out, math.Float64bits(v)), nil
	case "FP16":
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, numberError(tok, datatype, err, "a number")
		}
		h, ok := FP16(v)
		if !ok {
			return nil, fmt.Errorf("%s is out of FP16's range (±65504)", shorten(tok))
		}
		return binary.LittleEndian.AppendUint16(out, h), nil
	}
	return nil, CheckDatatype(datatype)
}

func numberError(tok []byte, datatype string, err error, what string) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%s is out of %s's range", shorten(tok), datatype)
	}
	return fmt.Errorf("%s is not %s (the datatype is %s)", shorten(tok), what, datatype)
}

// shorten keeps error messages short when an element is long.
func shorten(tok []byte) string {
	const most = 40
	if len(tok) > most {
		return string(tok[:most]) + "…"
	}
	return string(tok)
}

// AppendJSON appends the raw form of n elements of datatype as a flat JSON
// array. BYTES elements are strings when they are UTF-8 and {"b64": ...}
// objects otherwise; a NaN or infinity, which JSON cannot carry, is an
// error.
func AppendJSON(dst []byte, datatype string, n int64, raw []byte) ([]byte, error) {
	if err := CheckRaw(datatype, n, raw); err != nil {
		return nil, err
	}
	dst = append(dst, '[')
	if datatype == "BYTES" {
		elems, _ := SplitBytes(raw, n)
		for i, e := range elems {
			if i > 0 {
				dst = append(dst, ',')
			}
			if utf8.Valid(e) {
				s, _ := json.Marshal(string(e))
				dst = append(dst, s...)
				continue
			}
			dst = append(dst, `{"b64":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, e)
			dst = append(dst, `"}`...)
		}
		return append(dst, ']'), nil
	}
	size := sizes[datatype]
	for i := int64(0); i < n; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		v := readUint(raw[i*int64(size):], size)
		var f float64
		bits := 64
		switch datatype {
		case "BOOL":
			dst = strconv.AppendBool(dst, v != 0)
			continue
		case "INT8", "INT16", "INT32", "INT64":
			shift := 64 - 8*size
			dst = strconv.AppendInt(dst, int64(v<<shift)>>shift, 10)
			continue
		case "UINT8", "UINT16", "UINT32", "UINT64":
			dst = strconv.AppendUint(dst, v, 10)
			continue
		case "FP16":
			f, bits = FromFP16(uint16(v)), 32
		case "BF16":
			f, bits = float64(FromBF16(uint16(v))), 32
		case "FP32":
			f, bits = float64(math.Float32frombits(uint32(v))), 32
		case "FP64":
			f = math.Float64frombits(v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("element %d is %v, which JSON cannot carry; ask for the output as binary data", i, f)
		}
		dst = strconv.AppendFloat(dst, f, 'g', -1, bits)
	}
	return append(dst, ']'), nil
}
