package config

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/fuzztest"
)

// fuzzFlags holds a flag of each kind Shoal's settings use.
func fuzzFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	fs.String("db.driver", "sqlite", "")
	fs.Int("db.max-open-conns", 16, "")
	fs.Int64("dataset.max-image-bytes", 32<<20, "")
	fs.Bool("auth.enabled", true, "")
	fs.Duration("server.shutdown-timeout", 15*time.Second, "")
	fs.Float64("trainer.learning-rate", 0.001, "")
	fs.String("target", "all", "")
	fs.String("storage.s3.secret-key", "", "")
	return fs
}

func values(fs *flag.FlagSet) map[string]string {
	out := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { out[f.Name] = f.Value.String() })
	return out
}

// FuzzConfigFile loads any bytes as the YAML configuration file. It may
// not panic; every error names the file; loading is deterministic; and
// what a loaded configuration prints (shoal config) loads back to the
// same settings.
func FuzzConfigFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzztest.Watchdog(5 * time.Second)()
		fs := fuzzFlags()
		err := apply(fs, "shoal.yaml", data)
		if err != nil && !strings.HasPrefix(err.Error(), "config file shoal.yaml") {
			t.Fatalf("apply() = %q; want an error naming the file", err)
		}
		again := fuzzFlags()
		if err2 := apply(again, "shoal.yaml", data); (err == nil) != (err2 == nil) || !equal(values(fs), values(again)) {
			t.Fatalf("apply() twice = %v, %v and %v, %v; want the same", values(fs), err, values(again), err2)
		}
		if err != nil {
			return
		}
		var printed bytes.Buffer
		if err := Print(&printed, fs, nil); err != nil {
			t.Fatalf("Print() = %v", err)
		}
		back := fuzzFlags()
		if err := apply(back, "printed.yaml", printed.Bytes()); err != nil || !equal(values(fs), values(back)) {
			t.Fatalf("apply(Print()) = %v, %v; want %v\nprinted:\n%s", values(back), err, values(fs), printed.Bytes())
		}
	})
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestWriteFuzzSeeds rebuilds the seed corpus of FuzzConfigFile (see
// package fuzztest).
func TestWriteFuzzSeeds(t *testing.T) {
	seeds := map[string]string{
		"nested":      "db:\n  driver: postgres\n  max-open-conns: 4\nserver:\n  shutdown-timeout: 3s\n",
		"dotted":      "db.driver: mysql\nauth.enabled: false\n",
		"list":        "target: [dataset, registry]\n",
		"flow":        "{db: {driver: sqlite}, trainer: {learning-rate: 1e-3}}\n",
		"quoted":      "storage:\n  s3:\n    secret-key: \"0123\"\n",
		"plain-octal": "storage:\n  s3:\n    secret-key: 0123\n",
		"null":        "target: ~\n",
		"anchors":     "db: &d\n  driver: mysql\nx: *d\n",
		"merge":       "base: &b {driver: mysql}\ndb:\n  <<: *b\n  max-open-conns: 3\n",
		"multi-doc":   "db:\n  driver: a\n---\ndb:\n  driver: b\n",
		"block":       "storage:\n  s3:\n    secret-key: |\n      line one\n      line two\n",
		"not-a-map":   "- a\n- b\n",
		"bad-value":   "db:\n  max-open-conns: many\n",
		"unknown":     "db:\n  drvier: mysql\n",
		"duplicate":   "db:\n  driver: a\n  driver: b\n",
		"nested-list": "target: [[a], {b: c}]\n",
		"tabs":        "db:\n\tdriver: x\n",
		"self-alias":  "a: &a {b: *a}\n",
	}
	var out []fuzztest.Seed
	for name, s := range seeds {
		out = append(out, fuzztest.Seed{Name: name, Args: []any{[]byte(s)}})
	}
	fuzztest.WriteSeeds(t, "FuzzConfigFile", out)
}
