package trainer_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/services/trainer"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*trainer.Config)
		want string
	}{
		{"defaults", func(*trainer.Config) {}, ""},
		{"no workers", func(c *trainer.Config) { c.Workers = 0 }, "--trainer.workers"},
		{"no work dir", func(c *trainer.Config) { c.WorkDir = "" }, "--trainer.work-dir"},
		{"unknown backend", func(c *trainer.Config) { c.Backend = "cuda" }, "--trainer.backend"},
		{"fast poll", func(c *trainer.Config) { c.PollInterval = time.Millisecond }, "--trainer.poll-interval"},
		{"short lease", func(c *trainer.Config) { c.JobLease = time.Second }, "--trainer.job-lease"},
		{"negative storage wait", func(c *trainer.Config) { c.StorageWait = -time.Second }, "--trainer.storage-wait"},
	} {
		var c trainer.Config
		c.RegisterFlags(flag.NewFlagSet("t", flag.ContinueOnError))
		tc.edit(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%s) = %v; want %q", tc.name, err, tc.want)
		}
	}
}
