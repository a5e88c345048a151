package registry_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/services/registry"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*registry.Config)
		want string // substring of the error; empty for valid
	}{
		{"defaults", func(*registry.Config) {}, ""},
		{"zero max bytes", func(c *registry.Config) { c.MaxArtifactBytes = 0 }, "registry.max-artifact-bytes"},
		{"poll too fast", func(c *registry.Config) { c.WatchPollInterval = time.Millisecond }, "registry.watch-poll-interval"},
		{"no inspect timeout", func(c *registry.Config) { c.InspectTimeout = 0 }, "registry.inspect-timeout"},
		{"inspect memory below the runtime's", func(c *registry.Config) { c.InspectMemoryBytes = 64 << 20 }, "registry.inspect-memory-bytes"},
		{"inspect memory unbounded", func(c *registry.Config) { c.InspectMemoryBytes = 0 }, ""},
		{"missing upload dir", func(c *registry.Config) { c.UploadDir = filepath.Join(t.TempDir(), "nope") }, "registry.upload-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v; want %q", err, tt.want)
			}
		})
	}
}
