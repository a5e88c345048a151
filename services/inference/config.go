package inference

import "flag"

// Config configures the inference service. Its settings are flags named inference.*.
type Config struct{}

// RegisterFlags registers the inference.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {}

// Validate reports settings that cannot work.
func (c *Config) Validate() error { return nil }
