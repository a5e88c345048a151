package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3PartSize is the multipart part size, and so the memory one upload of
// unknown size buffers. minio-go's default for unknown sizes is ~537 MiB per
// upload; 16 MiB still allows objects of 160 GiB (10,000 parts).
const s3PartSize = 16 << 20

// s3Attempts is how many times one call tries the S3 server (minio-go's
// default is 10). With minio-go's jittered backoff of 200 ms doubling to
// 1 s, 10 attempts made every call to a stopped server take about 5 s to
// fail; 3 attempts still ride out a dropped connection or a single 503 and
// fail within about a second (measured: 0.1-1.0 s), so clients hear
// UNAVAILABLE at once and retry themselves.
const s3Attempts = 3

// S3 is a Store in an S3-compatible bucket (AWS S3, MinIO, SeaweedFS, ...).
// Each key is the object named prefix+key.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string // "" or ending in "/"
}

var _ Store = (*S3)(nil)

// NewS3 returns a Store for cfg, which must be valid (see S3Config.Validate).
// It talks to the server only if cfg.CreateBucket asks it to ensure the
// bucket exists; otherwise Ping is the first contact.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	return newS3(ctx, cfg, nil)
}

// newS3 is NewS3 with an HTTP transport, nil for minio-go's default; tests use
// it to trust a TLS test server.
func newS3(ctx context.Context, cfg S3Config, transport http.RoundTripper) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	if cfg.AccessKey == "" {
		// The usual chain, for pods with instance roles or injected env vars.
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.IAM{},
		})
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     creds,
		Secure:    !cfg.Insecure,
		Transport: transport,
		Region:    cfg.Region,
		// Auto picks virtual-host style for AWS, Google and Aliyun endpoints
		// and path style for everything else (SeaweedFS, MinIO, IPs), where
		// bucket subdomains usually do not resolve.
		BucketLookup: minio.BucketLookupAuto,
		MaxRetries:   s3Attempts,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: s3 client for %s: %w", cfg.Endpoint, err)
	}
	s := &S3{client: client, bucket: cfg.Bucket, prefix: normalizePrefix(cfg.Prefix)}
	if cfg.CreateBucket {
		if err := s.ensureBucket(ctx, cfg.Region); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func normalizePrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

func (s *S3) ensureBucket(ctx context.Context, region string) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.wrapErr(ctx, "check bucket", s.bucket, err)
	}
	if exists {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code == minio.BucketAlreadyOwnedByYou || resp.Code == "BucketAlreadyExists") {
		// Another replica created it first.
		return nil
	}
	return s.wrapErr(ctx, "create bucket", s.bucket, err)
}

// Put uploads r. A single PUT or an aborted multipart upload leaves no object
// behind when r fails, which is what makes Put atomic here.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	r = ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		r = newExactReader(r, size)
	}
	rec := &errRecorder{r: r}
	r = rec
	switch {
	case size == 0:
		// minio-go sends no body for an empty object without reading r, so
		// check here that r is empty.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("blob: put %q: %w", key, err)
		}
		r = bytes.NewReader(nil)
	case size < 0:
		// Most objects (images) are far smaller than a part: reading up to one
		// part first turns them into one PUT of known size instead of a
		// three-request multipart upload with a part-sized buffer.
		head, err := io.ReadAll(io.LimitReader(r, s3PartSize+1))
		if err != nil {
			return fmt.Errorf("blob: put %q: %w", key, err)
		}
		if len(head) <= s3PartSize {
			r, size = bytes.NewReader(head), int64(len(head))
		} else {
			r = io.MultiReader(bytes.NewReader(head), r)
		}
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, r, size, minio.PutObjectOptions{
		PartSize:    s3PartSize,
		ContentType: "application/octet-stream",
	})
	if err != nil && rec.err != nil {
		// The HTTP layer may flatten the reader's error into its own text;
		// report the reader's so that callers can test for it.
		return fmt.Errorf("blob: put %q: %w", key, rec.err)
	}
	return s.wrapErr(ctx, "put", key, err)
}

// errRecorder remembers the first error other than io.EOF its reader returns.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// Get issues one GET and returns its response body, so that a missing key is
// reported here and the content is one version even if the key is being
// overwritten. (minio-go's Client.GetObject instead sends a HEAD, then a GET
// conditional on the HEAD's ETag, which fails mid-read under an overwrite.)
// Reading the body fails once ctx is done.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrapErr(ctx, "get", key, err)
	}
	return body, nil
}

// Stat issues a HEAD request.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.wrapErr(ctx, "stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// Delete removes the object; S3 itself treats a missing key as success.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	return s.wrapErr(ctx, "delete", key, err)
}

// List pages through ListObjectsV2, which returns keys in byte order.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	return s.list(ctx, prefix, false, fn)
}

// ListAll is List with the keys this store's Put could not have written
// too: a backslash, a double or trailing slash, bytes that are not UTF-8.
// Another tool may have put them in the bucket, and a reader of the whole
// bucket (an import of a prefix) should say so rather than pass them over
// without a word. Get refuses them with ErrInvalidKey.
func (s *S3) ListAll(ctx context.Context, prefix string, fn func(Info) error) error {
	return s.list(ctx, prefix, true, fn)
}

func (s *S3) list(ctx context.Context, prefix string, all bool, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	// Cancelling stops minio-go's paging when fn ends the listing early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, opts) {
		if obj.Err != nil {
			return s.wrapErr(ctx, "list", prefix, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if !all && ValidateKey(key) != nil {
			// Not something Put could have written, e.g. a "dir/" marker
			// made by another tool; it is not an object of this store.
			continue
		}
		if err := fn(Info{Key: key, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	// minio-go ends the listing silently when the context is done.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: list %q: %w", prefix, err)
	}
	return nil
}

// Ping checks that the bucket exists and the credentials can see it.
func (s *S3) Ping(ctx context.Context) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.wrapErr(ctx, "ping", s.bucket, err)
	}
	if !exists {
		return fmt.Errorf("blob: s3 bucket %q does not exist at %s; create it or set -blob.s3.create-bucket",
			s.bucket, s.client.EndpointURL().Host)
	}
	return nil
}

// wrapErr maps S3 errors to this package's sentinels and otherwise keeps the
// S3 error in the chain (inspect it with errors.As and minio.ErrorResponse).
func (s *S3) wrapErr(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.Code == minio.NoSuchKey {
		return fmt.Errorf("blob: %s %q: %w", op, key, ErrNotFound)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		// The HTTP client does not always keep the context's error in the
		// chain; callers need it to tell cancellation from failure.
		return fmt.Errorf("blob: s3 %s %q: %w: %w", op, key, ctxErr, err)
	}
	return fmt.Errorf("blob: s3 %s %q (bucket %s): %w", op, key, s.bucket, markFull(err))
}
