package config_test

import (
	"flag"
	"io"
	"testing"

	"github.com/shoalml/shoal/internal/config"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    config.Bytes
		wantErr bool
	}{
		{"0", 0, false},
		{"1073741824", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"1.5GiB", 3 << 29, false},
		{"2gib", 2 << 30, false},
		{" 64 KiB ", 64 << 10, false},
		{"200MB", 200e6, false},
		{"10B", 10, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"-1GiB", 0, true},
		{"lots", 0, true},
		{"NaN", 0, true},
		{"1e30GiB", 0, true},
	}
	for _, tt := range tests {
		got, err := config.ParseBytes(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestBytesFlagRoundTrips(t *testing.T) {
	for _, v := range []config.Bytes{0, 1, 1000, 1 << 10, 3 << 29, 512 << 20, 5 << 40} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var b config.Bytes
		fs.Var(&b, "memory", "")
		if err := fs.Parse([]string{"--memory=" + v.String()}); err != nil || b != v {
			t.Errorf("--memory=%s = %d, %v; want %d", v, b, err, v)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var b config.Bytes
	fs.Var(&b, "memory", "")
	if err := fs.Parse([]string{"--memory=ten"}); err == nil {
		t.Errorf("--memory=ten: no error")
	}
	if err := config.Load(fs, nil, func(k string) (string, bool) {
		if k == "SHOAL_MEMORY" {
			return "2GiB", true
		}
		return "", false
	}); err != nil || b != 2<<30 {
		t.Errorf("SHOAL_MEMORY=2GiB: %d, %v; want %d", b, err, 2<<30)
	}
}
