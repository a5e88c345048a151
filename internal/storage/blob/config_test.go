package blob_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/shoalml/shoal/internal/storage/blob"
)

func TestRegisterFlagsDefaults(t *testing.T) {
	var cfg blob.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Backend != "local" || cfg.Local.Dir != "./data/blobs" {
		t.Fatalf("defaults = %+v; want backend local, dir ./data/blobs", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() of defaults = %v; want nil", err)
	}
	if cfg.Shared() {
		t.Fatalf("Shared() of local = true; want false")
	}

	args := []string{
		"-blob.backend=s3", "-blob.s3.endpoint=127.0.0.1:8333", "-blob.s3.bucket=shoal",
		"-blob.s3.access-key=a", "-blob.s3.secret-key=s", "-blob.s3.region=eu-west-1",
		"-blob.s3.insecure", "-blob.s3.prefix=p/", "-blob.s3.create-bucket",
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q) = %v; want nil", args, err)
	}
	want := blob.S3Config{
		Endpoint: "127.0.0.1:8333", Bucket: "shoal", AccessKey: "a", SecretKey: "s",
		Region: "eu-west-1", Insecure: true, Prefix: "p/", CreateBucket: true,
	}
	if cfg.S3 != want {
		t.Fatalf("after Parse(%q) S3 = %+v; want %+v", args, cfg.S3, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v; want nil", err)
	}
	if !cfg.Shared() {
		t.Fatalf("Shared() of s3 = false; want true")
	}
}

func TestValidate(t *testing.T) {
	s3 := func(edit func(*blob.S3Config)) blob.Config {
		c := blob.Config{Backend: "s3", S3: blob.S3Config{Endpoint: "minio:9000", Bucket: "shoal"}}
		edit(&c.S3)
		return c
	}
	tests := []struct {
		name    string
		cfg     blob.Config
		wantErr string // substring; "" for valid
	}{
		{"local", blob.Config{Backend: "local", Local: blob.LocalConfig{Dir: "d"}}, ""},
		{"local without dir", blob.Config{Backend: "local"}, "blob.local.dir"},
		{"unknown backend", blob.Config{Backend: "gcs"}, `set it to "local" or "s3"`},
		{"empty backend", blob.Config{}, "blob.backend"},
		{"s3 env credentials", s3(func(*blob.S3Config) {}), ""},
		{"s3 static credentials", s3(func(c *blob.S3Config) { c.AccessKey, c.SecretKey = "a", "s" }), ""},
		{"s3 no endpoint", s3(func(c *blob.S3Config) { c.Endpoint = "" }), "blob.s3.endpoint is empty"},
		{"s3 endpoint with scheme", s3(func(c *blob.S3Config) { c.Endpoint = "http://minio:9000" }), "blob.s3.insecure"},
		{"s3 endpoint with path", s3(func(c *blob.S3Config) { c.Endpoint = "minio:9000/bucket" }), "blob.s3.prefix"},
		{"s3 no bucket", s3(func(c *blob.S3Config) { c.Bucket = "" }), "blob.s3.bucket is empty"},
		{"s3 bad bucket", s3(func(c *blob.S3Config) { c.Bucket = "Bad_Bucket" }), "not a valid bucket name"},
		{"s3 half credentials", s3(func(c *blob.S3Config) { c.AccessKey = "a" }), "must be set together"},
		{"s3 bad prefix", s3(func(c *blob.S3Config) { c.Prefix = "a/../b" }), "blob.s3.prefix"},
		{"s3 prefix slashes trimmed", s3(func(c *blob.S3Config) { c.Prefix = "/a/b/" }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	s, err := blob.Open(t.Context(), blob.Config{Backend: "local", Local: blob.LocalConfig{Dir: t.TempDir()}})
	if err != nil {
		t.Fatalf("Open(local) = %v; want nil", err)
	}
	if _, ok := s.(*blob.Local); !ok {
		t.Fatalf("Open(local) = %T; want *blob.Local", s)
	}
	if _, err := blob.Open(t.Context(), blob.Config{Backend: "nope"}); err == nil {
		t.Fatalf("Open(backend nope) = nil error; want an error")
	}
	// The S3 backend does no I/O unless asked to create the bucket.
	s, err = blob.Open(t.Context(), blob.Config{Backend: "s3", S3: blob.S3Config{Endpoint: "127.0.0.1:1", Bucket: "shoal"}})
	if err != nil {
		t.Fatalf("Open(s3) = %v; want nil", err)
	}
	if _, ok := s.(*blob.S3); !ok {
		t.Fatalf("Open(s3) = %T; want *blob.S3", s)
	}
}
