package trainer

import "flag"

// Config configures the trainer service. Its settings are flags named trainer.*.
type Config struct{}

// RegisterFlags registers the trainer.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {}

// Validate reports settings that cannot work.
func (c *Config) Validate() error { return nil }
