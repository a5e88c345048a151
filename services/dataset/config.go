package dataset

import "flag"

// Config configures the dataset service. Its settings are flags named dataset.*.
type Config struct{}

// RegisterFlags registers the dataset.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {}

// Validate reports settings that cannot work.
func (c *Config) Validate() error { return nil }
