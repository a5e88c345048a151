package dataset

import (
	"runtime"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	def := defaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatalf("defaults: Validate() = %v", err)
	}
	if def.workers() != runtime.GOMAXPROCS(0) {
		t.Errorf("default workers = %d; want GOMAXPROCS", def.workers())
	}
	if r := def.roots(); len(r) != 1 || r[0] != "data/import" {
		t.Errorf("default roots = %q; want [data/import]", r)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"bytes", func(c *Config) { c.MaxImageBytes = 0 }, "dataset.max-image-bytes"},
		{"pixels", func(c *Config) { c.MaxImagePixels = -1 }, "dataset.max-image-pixels"},
		{"workers", func(c *Config) { c.ImportWorkers = -2 }, "dataset.import-workers"},
		{"archive", func(c *Config) { c.MaxArchiveBytes = 0 }, "dataset.max-archive-bytes"},
	}
	for _, tt := range tests {
		c := defaultConfig()
		tt.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v; want an error naming %s", tt.name, err, tt.want)
		}
	}
	c := defaultConfig()
	c.ImportRoots = " /a , ,/b/../c "
	if r := c.roots(); len(r) != 2 || r[0] != "/a" || r[1] != "/c" {
		t.Errorf("roots(%q) = %q", c.ImportRoots, r)
	}
	c.ImportRoots = ""
	if len(c.roots()) != 0 || c.Validate() != nil {
		t.Errorf("empty roots: %q, %v", c.roots(), c.Validate())
	}
}

func TestImportRootsDisabled(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.ImportRoots = "" }})
	e.create(t, "fish")
	r := e.importLocal(t, "fish", e.root)
	if r.err == nil || !strings.Contains(r.err.Error(), "disabled") {
		t.Fatalf("import with no roots = %v; want PermissionDenied saying it is disabled", r.err)
	}
}
