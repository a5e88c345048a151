package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"google.golang.org/grpc"
	"gorm.io/gorm"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
	"github.com/shoalml/shoal/services/registry"
)

// env is one registry process under test, served by grpctest with Run
// going.
type env struct {
	client registrypb.RegistryServiceClient
	gdb    *gorm.DB
	blobs  blob.Store
	// streamsDone receives the method name each time a stream handler
	// returns, so tests can wait for the server side of a cut-off stream.
	streamsDone chan string
	stop        func() // stops Run, which ends open streams
	uploadDir   string
	addr        string // a TCP address serving the same server, for the CLI
	conn        *grpc.ClientConn
}

type envOptions struct {
	cfg   func(*registry.Config)
	blobs blob.Store // shared with another env, for two replicas
	ort   onnxrt.Config
}

func defaultConfig() registry.Config {
	var cfg registry.Config
	cfg.RegisterFlags(flag.NewFlagSet("registry", flag.ContinueOnError))
	return cfg
}

func newEnv(t *testing.T, dbCfg db.Config, opts envOptions) *env {
	t.Helper()
	onnxtest.Runtime(t)
	cfg := defaultConfig()
	cfg.UploadDir = t.TempDir()
	if opts.cfg != nil {
		opts.cfg(&cfg)
	}
	e := &env{gdb: dbtest.Open(t, dbCfg), blobs: opts.blobs, streamsDone: make(chan string, 100), uploadDir: cfg.UploadDir}
	if e.blobs == nil {
		e.blobs = testBlobs(t, dbCfg.Driver)
	}
	svc, err := registry.New(cfg, registry.Deps{Log: testlog.New(t), DB: e.gdb, Blobs: e.blobs, ONNXRuntime: opts.ort})
	if err != nil {
		t.Fatalf("registry.New() = %v", err)
	}
	done := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		e.streamsDone <- info.FullMethod
		return err
	}
	srv := grpctest.Start(t, svc, grpctest.Options{TCP: true, StreamInterceptors: []grpc.StreamServerInterceptor{done}})
	e.addr, e.conn, e.stop = srv.Addr, srv.Conn, srv.StopRun
	e.client = registrypb.NewRegistryServiceClient(srv.Conn)
	return e
}

// testBlobs is a local store for SQLite and, when SHOAL_TEST_S3_* names a
// real S3 server, an S3 bucket for the server databases (so CI covers both
// backends); otherwise local again.
func testBlobs(t *testing.T, driver db.Driver) blob.Store {
	t.Helper()
	endpoint := os.Getenv("SHOAL_TEST_S3_ENDPOINT")
	if driver == db.SQLite || endpoint == "" {
		if driver != db.SQLite && os.Getenv("SHOAL_TEST_S3_REQUIRED") == "1" {
			t.Fatal("SHOAL_TEST_S3_ENDPOINT is not set (SHOAL_TEST_S3_REQUIRED=1 makes this an error): run eval \"$(scripts/s3server.sh start DIR)\"")
		}
		s, err := blob.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// One bucket for all of this package's tests, each under its own
	// prefix: some S3 servers (SeaweedFS) allocate storage volumes per
	// bucket, and a bucket per test exhausts a small one.
	s, err := blob.NewS3(t.Context(), blob.S3Config{
		Endpoint:     endpoint,
		Bucket:       "shoal-registry-test",
		Prefix:       fmt.Sprintf("t%016x/", rand.Uint64()),
		AccessKey:    os.Getenv("SHOAL_TEST_S3_ACCESS_KEY"),
		SecretKey:    os.Getenv("SHOAL_TEST_S3_SECRET_KEY"),
		Region:       os.Getenv("SHOAL_TEST_S3_REGION"),
		Insecure:     os.Getenv("SHOAL_TEST_S3_SECURE") == "",
		CreateBucket: true,
	})
	if err != nil {
		t.Fatalf("blob.NewS3() = %v", err)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		_ = s.List(ctx, "", func(i blob.Info) error { return s.Delete(ctx, i.Key) })
	})
	return s
}

// blobKeys lists every stored key.
func (e *env) blobKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	if err := e.blobs.List(t.Context(), "", func(i blob.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatalf("List() = %v", err)
	}
	return keys
}

// count counts rows of a registry table.
func (e *env) count(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	if err := e.gdb.Table(table).Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// assertEmpty checks that nothing was stored: no model, version or
// artifact rows, no blobs and no upload left in the upload directory.
func (e *env) assertEmpty(t *testing.T) {
	t.Helper()
	for _, table := range []string{"registry_models", "registry_versions", "registry_artifacts"} {
		if n := e.count(t, table); n != 0 {
			t.Errorf("%s has %d rows; want 0", table, n)
		}
	}
	if keys := e.blobKeys(t); len(keys) != 0 {
		t.Errorf("blobs = %v; want none", keys)
	}
	if left, _ := os.ReadDir(e.uploadDir); len(left) != 0 {
		t.Errorf("upload dir has %d files left; want 0", len(left))
	}
}

// spec is a valid spec for a classifier of the given labels.
func spec(model string, labels ...string) *registrypb.VersionSpec {
	return &registrypb.VersionSpec{
		Model: model, Labels: labels,
		InputSpec: &registrypb.InputSpec{Channels: 3, Height: 8, Width: 8, Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}},
	}
}

// classifier is the ONNX model matching spec.
func classifier(classes int64, seed byte) []byte {
	return onnxtest.Classifier{Channels: 3, Height: 8, Width: 8, Classes: classes, WeightsFromSeed: seed}.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// upload streams spec and artifact in chunks of chunk bytes.
func upload(ctx context.Context, c registrypb.RegistryServiceClient, s *registrypb.VersionSpec, artifact []byte, chunk int) (*registrypb.Version, error) {
	stream, err := c.CreateVersion(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []*registrypb.CreateVersionRequest{{Payload: &registrypb.CreateVersionRequest_Spec{Spec: s}}}
	for r := bytes.NewReader(artifact); r.Len() > 0; {
		b := make([]byte, min(chunk, r.Len()))
		_, _ = io.ReadFull(r, b)
		msgs = append(msgs, &registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: b}})
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break // the server answered early; CloseAndRecv has its status
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	return resp.GetVersion(), nil
}

func mustUpload(t *testing.T, c registrypb.RegistryServiceClient, s *registrypb.VersionSpec, artifact []byte) *registrypb.Version {
	t.Helper()
	v, err := upload(t.Context(), c, s, artifact, 1000)
	if err != nil {
		t.Fatalf("CreateVersion(%s) = %v", s.GetModel(), err)
	}
	return v
}
