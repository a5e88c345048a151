package dataset

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// realS3 returns the test S3 server's settings with a new bucket, removed
// with its objects when t ends; it skips t without a server.
func realS3(t *testing.T) blob.S3Config {
	t.Helper()
	endpoint := os.Getenv("SHOAL_TEST_S3_ENDPOINT")
	if endpoint == "" {
		msg := "no real S3 server: eval \"$(scripts/s3server.sh start DIR)\" sets SHOAL_TEST_S3_*"
		if os.Getenv("SHOAL_TEST_S3_REQUIRED") == "1" {
			t.Fatal(msg + " (SHOAL_TEST_S3_REQUIRED=1 makes this an error)")
		}
		t.Skip(msg)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	cfg := blob.S3Config{
		Endpoint: endpoint, Bucket: "shoal-dataset-" + hex.EncodeToString(b),
		AccessKey: os.Getenv("SHOAL_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("SHOAL_TEST_S3_SECRET_KEY"),
		Region: os.Getenv("SHOAL_TEST_S3_REGION"), Insecure: os.Getenv("SHOAL_TEST_S3_SECURE") == "",
		CreateBucket: true,
	}
	if _, err := blob.NewS3(t.Context(), cfg); err != nil {
		t.Fatalf("create test bucket: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: !cfg.Insecure, Region: cfg.Region})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		objects := c.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true})
		for res := range c.RemoveObjects(ctx, cfg.Bucket, objects, minio.RemoveObjectsOptions{}) {
			t.Errorf("cleanup: remove %s: %v", res.ObjectName, res.Err)
		}
		if err := c.RemoveBucket(ctx, cfg.Bucket); err != nil {
			t.Errorf("cleanup: remove bucket %s: %v", cfg.Bucket, err)
		}
	})
	return cfg
}

// s3Env is a service whose blobs are in a real S3 bucket and which imports
// from other buckets of the same server, as the app wires it.
func s3Env(t *testing.T, dbcfg db.Config) (*env, blob.S3Config) {
	t.Helper()
	cfg := realS3(t)
	blobs, err := blob.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	open := func(ctx context.Context, bucket, prefix string) (blob.Store, error) {
		c := cfg
		c.Bucket, c.Prefix, c.CreateBucket = bucket, prefix, false
		return blob.NewS3(ctx, c)
	}
	return newEnv(t, envOpts{db: dbcfg, blobs: blobs, objectStore: open}), cfg
}

func TestImportObjectStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dbcfg db.Config) {
		e, _ := s3Env(t, dbcfg)
		// The source bucket, laid out as the original pipeline's was.
		src := realS3(t)
		srcStore, err := blob.NewS3(t.Context(), src)
		if err != nil {
			t.Fatal(err)
		}
		objects := map[string][]byte{
			"fish/train/Gold Fish/a.png": imagingtest.PNG(8, 8, 1),
			"fish/train/Gold Fish/b.jpg": imagingtest.JPEG(8, 8, 2),
			"fish/test/Shark/c.png":      imagingtest.PNG(8, 8, 3),
			"fish/test/Shark/bad.png":    []byte("not an image"),
			"fish/misc/Shark/d.png":      imagingtest.PNG(8, 8, 4),
			"fish/misc/Shark/e.png":      imagingtest.PNG(8, 8, 5),
			"fish/README.md":             []byte("about"),
			"fish/.git/HEAD":             []byte("ref: refs/heads/main"),
			"fish/train/.cache/f.png":    imagingtest.PNG(8, 8, 7),
			"other/train/X/z.png":        imagingtest.PNG(8, 8, 6),
		}
		for k, v := range objects {
			if err := srcStore.Put(t.Context(), k, strings.NewReader(string(v)), int64(len(v))); err != nil {
				t.Fatal(err)
			}
		}
		// Keys Shoal would not write, as a Windows tool writes them: refused
		// by name rather than passed over.
		raw, err := minio.New(src.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(src.AccessKey, src.SecretKey, ""), Secure: !src.Insecure, Region: src.Region})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string][]byte{`fish/train/Gold Fish\g.png`: imagingtest.PNG(8, 8, 8), `fish/test/Shark/h\i.png`: imagingtest.PNG(8, 8, 9)} {
			if _, err := raw.PutObject(t.Context(), src.Bucket, k, bytes.NewReader(v), int64(len(v)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		e.create(t, "fish")
		req := func(bucket, prefix string) *datasetpb.ImportImagesRequest {
			return &datasetpb.ImportImagesRequest{Dataset: "fish", Source: &datasetpb.ImportImagesRequest_ObjectStore{
				ObjectStore: &datasetpb.ObjectStoreSource{Bucket: bucket, Prefix: prefix}}}
		}
		r := e.importReq(t, req(src.Bucket, "fish/"))
		want := &datasetpb.ImportCounts{Seen: 7, Added: 3, Rejected: 4}
		if r.err != nil || !equalCounts(r.done, want) {
			t.Fatalf("import = %v, %v; want %v (rejections %v)", r.done, r.err, want, r.rejections)
		}
		if !strings.Contains(r.rejections["misc/"], "unknown split folder") || !strings.Contains(r.rejections["test/Shark/bad.png"], "not an image") ||
			!strings.Contains(r.rejections[`train/Gold Fish\g.png`], "its key holds a backslash") ||
			!strings.Contains(r.rejections[`test/Shark/h\i.png`], "its key holds a backslash") {
			t.Errorf("rejections = %v", r.rejections)
		}
		again := e.importReq(t, req(src.Bucket, "fish"))
		if again.err != nil || again.done.GetAdded() != 0 || again.done.GetDuplicates() != 3 {
			t.Errorf("second import = %v, %v; want 0 added, 3 duplicates", again.done, again.err)
		}
		wantCode(t, "import from a missing bucket", e.importReq(t, req("no-such-bucket-shoal", "")).err, codes.NotFound)
		wantCode(t, "import from an empty prefix", e.importReq(t, req(src.Bucket, "nothing-here")).err, codes.NotFound)
		wantCode(t, "import from a bad bucket name", e.importReq(t, req("Bad_Bucket", "")).err, codes.InvalidArgument)

		// The blobs went to the blob store's bucket, content-addressed.
		if n := countBlobs(t, e.blobs); n != 3 {
			t.Errorf("blobs = %d; want 3", n)
		}
	})
}
