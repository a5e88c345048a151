package registry

import "flag"

// Config configures the registry service. Its settings are flags named registry.*.
type Config struct{}

// RegisterFlags registers the registry.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {}

// Validate reports settings that cannot work.
func (c *Config) Validate() error { return nil }
