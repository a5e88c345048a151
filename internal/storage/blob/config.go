package blob

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Backend names accepted by -blob.backend.
const (
	BackendLocal = "local"
	BackendS3    = "s3"
)

// Config selects and configures the blob store backend.
type Config struct {
	Backend string      `yaml:"backend"`
	Local   LocalConfig `yaml:"local"`
	S3      S3Config    `yaml:"s3"`
}

// LocalConfig configures the local filesystem backend.
type LocalConfig struct {
	Dir string `yaml:"dir"`
}

// S3Config configures the S3 backend.
type S3Config struct {
	Endpoint string `yaml:"endpoint"`
	Bucket   string `yaml:"bucket"`
	// AccessKey and SecretKey are static credentials. Leave both empty to use
	// AWS_*/MINIO_* environment variables or an instance role.
	AccessKey    string `yaml:"access_key"`
	SecretKey    string `yaml:"secret_key"`
	Region       string `yaml:"region"`
	Insecure     bool   `yaml:"insecure"`
	Prefix       string `yaml:"prefix"`
	CreateBucket bool   `yaml:"create_bucket"`
}

// RegisterFlags registers the -blob.* flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Backend, "blob.backend", BackendLocal, "blob store backend: local or s3")
	fs.StringVar(&c.Local.Dir, "blob.local.dir", "./data/blobs", "directory of the local blob store")
	c.S3.RegisterFlags(fs)
}

// RegisterFlags registers the -blob.s3.* flags with their defaults.
func (c *S3Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Endpoint, "blob.s3.endpoint", "", "S3 endpoint as host[:port], without scheme (e.g. s3.amazonaws.com, minio:9000)")
	fs.StringVar(&c.Bucket, "blob.s3.bucket", "", "S3 bucket")
	fs.StringVar(&c.AccessKey, "blob.s3.access-key", "", "S3 access key; empty to use AWS_*/MINIO_* env vars or an instance role")
	fs.StringVar(&c.SecretKey, "blob.s3.secret-key", "", "S3 secret key (prefer the config file or environment over this flag)")
	fs.StringVar(&c.Region, "blob.s3.region", "", "S3 region; empty to ask the server")
	fs.BoolVar(&c.Insecure, "blob.s3.insecure", false, "talk plain HTTP to the S3 endpoint instead of HTTPS")
	fs.StringVar(&c.Prefix, "blob.s3.prefix", "", "key prefix inside the bucket, to share a bucket (e.g. shoal/)")
	fs.BoolVar(&c.CreateBucket, "blob.s3.create-bucket", false, "create the bucket at start if it does not exist")
}

// Validate reports configuration errors, saying which setting to change.
func (c *Config) Validate() error {
	switch c.Backend {
	case BackendLocal:
		if c.Local.Dir == "" {
			return errors.New("blob.local.dir is empty; set it to the directory for blobs (e.g. ./data/blobs)")
		}
		return nil
	case BackendS3:
		return c.S3.Validate()
	default:
		return fmt.Errorf("blob.backend is %q; set it to %q or %q", c.Backend, BackendLocal, BackendS3)
	}
}

// Validate reports S3 configuration errors, saying which setting to change.
func (c *S3Config) Validate() error {
	var errs []error
	switch {
	case c.Endpoint == "":
		errs = append(errs, errors.New("blob.s3.endpoint is empty; set it to the S3 server's host[:port]"))
	case strings.Contains(c.Endpoint, "://"):
		errs = append(errs, fmt.Errorf("blob.s3.endpoint %q has a scheme; give host[:port] only, and set blob.s3.insecure for plain HTTP", c.Endpoint))
	case strings.ContainsAny(c.Endpoint, "/?#"):
		errs = append(errs, fmt.Errorf("blob.s3.endpoint %q has a path; give host[:port] only, and use blob.s3.prefix for a key prefix", c.Endpoint))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("blob.s3.bucket is empty; set it to the bucket name"))
	} else if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("blob.s3.bucket %q is not a valid bucket name: %w", c.Bucket, err))
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		errs = append(errs, errors.New("blob.s3.access-key and blob.s3.secret-key must be set together, or both left empty to use env vars or an instance role"))
	}
	if p := strings.Trim(c.Prefix, "/"); p != "" {
		if err := ValidateKey(p); err != nil {
			errs = append(errs, fmt.Errorf("blob.s3.prefix %q: %w", c.Prefix, err))
		}
	}
	return errors.Join(errs...)
}

// Shared reports whether several processes (replicas, or services run apart)
// can share the store. A local directory belongs to one machine.
func (c *Config) Shared() bool {
	return c.Backend == BackendS3
}

// Open validates cfg and returns the configured Store.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Backend {
	case BackendLocal:
		return NewLocal(cfg.Local.Dir)
	case BackendS3:
		return NewS3(ctx, cfg.S3)
	default:
		// Unreachable after Validate; kept so a new backend cannot be half-added.
		return nil, fmt.Errorf("blob: unknown backend %q", cfg.Backend)
	}
}
