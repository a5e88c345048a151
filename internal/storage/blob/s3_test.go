package blob_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/blob/blobtest"
)

// fakeS3 starts an in-process S3 server (gofakes3) and returns a config and
// an HTTP transport for it. It serves HTTPS because over plain HTTP minio-go
// signs payloads in aws-chunked encoding, which gofakes3 does not decode in
// multipart uploads; the real-server test covers that encoding.
func fakeS3(t *testing.T) (blob.S3Config, http.RoundTripper) {
	t.Helper()
	srv := httptest.NewTLSServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	cfg := blob.S3Config{
		Endpoint:     strings.TrimPrefix(srv.URL, "https://"),
		Bucket:       "shoal-test",
		AccessKey:    "fake-access",
		SecretKey:    "fake-secret",
		Region:       "us-east-1",
		CreateBucket: true,
	}
	return cfg, srv.Client().Transport
}

func newS3(t *testing.T, cfg blob.S3Config, transport http.RoundTripper) *blob.S3 {
	t.Helper()
	s, err := blob.NewS3WithTransport(t.Context(), cfg, transport)
	if err != nil {
		t.Fatalf("NewS3(%+v) = %v; want nil", cfg, err)
	}
	return s
}

func TestS3FakeConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		cfg, transport := fakeS3(t)
		return newS3(t, cfg, transport)
	})
}

func TestS3FakeConformanceWithPrefix(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		cfg, transport := fakeS3(t)
		cfg.Prefix = "/shoal/blobs/"
		return newS3(t, cfg, transport)
	})
}

// TestS3Real runs the suite against a real S3 server (see
// scripts/s3server.sh), in a fresh bucket that it removes afterwards.
func TestS3Real(t *testing.T) {
	cfg := realS3(t)
	cfg.CreateBucket = true
	newS3(t, cfg, nil) // creates the bucket once
	t.Cleanup(func() { removeBucket(t, cfg, nil) })

	var n atomic.Int64
	blobtest.Run(t, func(t *testing.T) blob.Store {
		c := cfg
		c.CreateBucket = false
		c.Prefix = fmt.Sprintf("t%03d", n.Add(1)) // each subtest gets its own empty store
		return newS3(t, c, nil)
	})
}

func realS3(t *testing.T) blob.S3Config {
	t.Helper()
	endpoint := os.Getenv("SHOAL_TEST_S3_ENDPOINT")
	access := os.Getenv("SHOAL_TEST_S3_ACCESS_KEY")
	secret := os.Getenv("SHOAL_TEST_S3_SECRET_KEY")
	if endpoint == "" || access == "" || secret == "" {
		msg := "no real S3 server: set SHOAL_TEST_S3_ENDPOINT (host:port), SHOAL_TEST_S3_ACCESS_KEY and " +
			"SHOAL_TEST_S3_SECRET_KEY, e.g. with eval \"$(scripts/s3server.sh start DIR)\""
		if os.Getenv("SHOAL_TEST_S3_REQUIRED") == "1" {
			t.Fatal(msg + " (SHOAL_TEST_S3_REQUIRED=1 makes this an error)")
		}
		t.Skip(msg)
	}
	return blob.S3Config{
		Endpoint:  endpoint,
		Bucket:    "shoal-test-" + strings.ToLower(rand.Text()[:12]),
		AccessKey: access,
		SecretKey: secret,
		Region:    os.Getenv("SHOAL_TEST_S3_REGION"),
		// Test servers are local; SHOAL_TEST_S3_SECURE=1 for an HTTPS one.
		Insecure: os.Getenv("SHOAL_TEST_S3_SECURE") == "",
	}
}

// removeBucket empties and deletes the test bucket.
func removeBucket(t *testing.T, cfg blob.S3Config, transport http.RoundTripper) {
	ctx := context.WithoutCancel(t.Context())
	c := rawClient(t, cfg, transport)
	for up := range c.ListIncompleteUploads(ctx, cfg.Bucket, "", true) {
		if up.Err == nil {
			_ = c.RemoveIncompleteUpload(ctx, cfg.Bucket, up.Key)
		}
	}
	objects := c.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true})
	for res := range c.RemoveObjects(ctx, cfg.Bucket, objects, minio.RemoveObjectsOptions{}) {
		t.Errorf("removing %s from test bucket: %v", res.ObjectName, res.Err)
	}
	if err := c.RemoveBucket(ctx, cfg.Bucket); err != nil {
		t.Errorf("RemoveBucket(%s) = %v; want nil", cfg.Bucket, err)
	}
}

func rawClient(t *testing.T, cfg blob.S3Config, transport http.RoundTripper) *minio.Client {
	t.Helper()
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    !cfg.Insecure,
		Region:    cfg.Region,
		Transport: transport,
	})
	if err != nil {
		t.Fatalf("minio.New(%s) = %v; want nil", cfg.Endpoint, err)
	}
	return c
}

// TestS3PrefixIsolation checks that a prefixed store maps keys under its
// prefix and ignores everything else in the bucket, including "dir/" markers
// that other tools create.
func TestS3PrefixIsolation(t *testing.T) {
	cfg, transport := fakeS3(t)
	raw := rawClient(t, cfg, transport)
	pcfg := cfg
	pcfg.Prefix = "shoal"
	s := newS3(t, pcfg, transport)
	ctx := t.Context()

	if err := s.Put(ctx, "a/k", strings.NewReader("v"), 1); err != nil {
		t.Fatalf("Put(a/k) = %v; want nil", err)
	}
	for _, name := range []string{"outside", "shoalx/k", "shoal/dir/"} {
		if _, err := raw.PutObject(ctx, cfg.Bucket, name, strings.NewReader(""), 0, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("raw PutObject(%s) = %v; want nil", name, err)
		}
	}
	if _, err := raw.StatObject(ctx, cfg.Bucket, "shoal/a/k", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("raw StatObject(shoal/a/k) = %v; want the object under the prefix", err)
	}
	var got []string
	if err := s.List(ctx, "", func(i blob.Info) error { got = append(got, i.Key); return nil }); err != nil {
		t.Fatalf("List(\"\") = %v; want nil", err)
	}
	if !slices.Equal(got, []string{"a/k"}) {
		t.Fatalf("List(\"\") = %q; want [a/k]", got)
	}
	if _, err := s.Stat(ctx, "outside"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(outside) = %v; want ErrNotFound", err)
	}
}

// TestS3ListAll: List passes over keys Put could not have written; ListAll
// gives them, for a reader of a whole bucket to refuse by name, and Get
// refuses them as invalid.
func TestS3ListAll(t *testing.T) {
	cfg, transport := fakeS3(t)
	raw := rawClient(t, cfg, transport)
	s := newS3(t, cfg, transport)
	ctx := t.Context()
	if err := s.Put(ctx, "a/k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.PutObject(ctx, cfg.Bucket, `a\b`, strings.NewReader("v"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	keys := func(list func(context.Context, string, func(blob.Info) error) error) []string {
		var got []string
		if err := list(ctx, "", func(i blob.Info) error { got = append(got, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := keys(s.List); !slices.Equal(got, []string{"a/k"}) {
		t.Errorf("List() = %q; want [a/k]", got)
	}
	if got := keys(s.ListAll); !slices.Equal(got, []string{"a/k", `a\b`}) {
		t.Errorf("ListAll() = %q; want [a/k a\\b]", got)
	}
	if _, err := s.Get(ctx, `a\b`); !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("Get(a\\b) = %v; want ErrInvalidKey", err)
	}
}

func TestS3MissingBucket(t *testing.T) {
	cfg, transport := fakeS3(t)
	cfg.CreateBucket = false
	s := newS3(t, cfg, transport)
	err := s.Ping(t.Context())
	if err == nil || !strings.Contains(err.Error(), "create-bucket") {
		t.Fatalf("Ping() on a missing bucket = %v; want an error suggesting -blob.s3.create-bucket", err)
	}
	// A missing bucket is a configuration problem, not a missing object.
	// (Stat cannot tell them apart: a HEAD response has no body for the code.)
	rc, err := s.Get(t.Context(), "k")
	if err == nil {
		rc.Close()
	}
	if err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get(k) on a missing bucket = %v; want an error other than ErrNotFound", err)
	}
}

func TestS3ErrorKeepsS3Detail(t *testing.T) {
	cfg, transport := fakeS3(t)
	cfg.CreateBucket = false
	s := newS3(t, cfg, transport)
	err := s.Put(t.Context(), "k", strings.NewReader("v"), 1)
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) || resp.Code != minio.NoSuchBucket {
		t.Fatalf("Put(k) into a missing bucket = %v; want a wrapped minio.ErrorResponse with code NoSuchBucket", err)
	}
}
