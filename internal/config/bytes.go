package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bytes is a size in bytes that a flag (and so the YAML file and the
// environment) sets as a plain number of bytes or with a unit: 512MiB,
// 1.5GiB, 200MB, 64KiB. Binary units are powers of 1024, decimal ones of
// 1000; the unit's case does not matter.
type Bytes int64

var byteUnits = []struct {
	suffix string
	scale  float64
}{
	// Longest first, so "MiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// ParseBytes reads a size such as "512MiB" or "1073741824".
func ParseBytes(s string) (Bytes, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	scale := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, scale = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.scale
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q: want a size in bytes such as 1073741824, 512MiB or 2GiB", s)
	}
	n := v * scale
	if n < 0 || n >= math.MaxInt64 {
		return 0, fmt.Errorf("%q: out of range", s)
	}
	return Bytes(n), nil
}

// String writes the size in the largest binary unit that divides it, so
// that what Print writes reads back as the same value.
func (b Bytes) String() string {
	for _, u := range []struct {
		unit  string
		scale int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.scale == 0 {
			return strconv.FormatInt(int64(b)/u.scale, 10) + u.unit
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Set implements flag.Value.
func (b *Bytes) Set(s string) error {
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}
