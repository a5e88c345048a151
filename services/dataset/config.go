package dataset

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// Config configures the dataset service. Its settings are flags named dataset.*.
type Config struct {
	// MaxImageBytes is the largest image file accepted.
	MaxImageBytes int64
	// MaxImagePixels is the largest width×height accepted, checked on the
	// header before decoding.
	MaxImagePixels int64
	// ImportWorkers is how many files are decoded at once; 0 means one per
	// core (GOMAXPROCS).
	ImportWorkers int
	// ImportRoots is a comma-separated list of server folders ImportImages
	// may read. Empty disables server-folder imports.
	ImportRoots string
	// MaxArchiveBytes is the largest archive UploadImages accepts, and the
	// most the files read from it may expand to (a gzip stream or zip
	// entries sharing their bytes may expand a thousandfold).
	MaxArchiveBytes int64
	// MaxArchiveEntries is the most entries a .zip upload may list: its
	// index is read into memory before any entry, a few hundred bytes each.
	MaxArchiveEntries int
}

// RegisterFlags registers the dataset.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxImageBytes, "dataset.max-image-bytes", 32<<20, "largest image file accepted, in bytes")
	fs.Int64Var(&c.MaxImagePixels, "dataset.max-image-pixels", 50_000_000, "largest width×height accepted; checked on the header before decoding")
	fs.IntVar(&c.ImportWorkers, "dataset.import-workers", 0, "images decoded at once during an import; 0 for one per core")
	fs.StringVar(&c.ImportRoots, "dataset.import-roots", "./data/import", "comma-separated server folders that ImportImages may read; empty to refuse every server-folder import")
	fs.IntVar(&c.MaxArchiveEntries, "dataset.max-archive-entries", 2_000_000, "most entries a .zip upload may list (its index is held in memory, a few hundred bytes per entry)")
	fs.Int64Var(&c.MaxArchiveBytes, "dataset.max-archive-bytes", 8<<30, "largest .zip/.tar/.tar.gz archive UploadImages accepts, in bytes (spooled to a temporary file); also the most its files may expand to")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxImageBytes <= 0 {
		errs = append(errs, fmt.Errorf("dataset.max-image-bytes is %d; it must be positive", c.MaxImageBytes))
	}
	if c.MaxImagePixels <= 0 {
		errs = append(errs, fmt.Errorf("dataset.max-image-pixels is %d; it must be positive", c.MaxImagePixels))
	}
	if c.ImportWorkers < 0 {
		errs = append(errs, fmt.Errorf("dataset.import-workers is %d; use 0 for one per core, or a positive number", c.ImportWorkers))
	}
	if c.MaxArchiveBytes <= 0 {
		errs = append(errs, fmt.Errorf("dataset.max-archive-bytes is %d; it must be positive", c.MaxArchiveBytes))
	}
	if c.MaxArchiveEntries <= 0 {
		errs = append(errs, fmt.Errorf("dataset.max-archive-entries is %d; it must be positive", c.MaxArchiveEntries))
	}
	for _, r := range c.roots() {
		if _, err := filepath.Abs(r); err != nil {
			errs = append(errs, fmt.Errorf("dataset.import-roots: %q: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

// workers returns the decoding parallelism.
func (c *Config) workers() int {
	if c.ImportWorkers > 0 {
		return c.ImportWorkers
	}
	return runtime.GOMAXPROCS(0)
}

// roots returns the configured import roots, cleaned.
func (c *Config) roots() []string {
	var out []string
	for r := range strings.SplitSeq(c.ImportRoots, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, filepath.Clean(r))
		}
	}
	return out
}
