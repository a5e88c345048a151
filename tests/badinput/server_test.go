package badinput

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"gorm.io/gorm"

	oippb "github.com/shoalml/shoal/gen/inference"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/app/apptest"
	"github.com/shoalml/shoal/internal/badinput"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// server is one Shoal process (every service and the gateway, in this test
// binary) and what the test needs to drive and inspect it.
type server struct {
	cfg      app.Config
	dir      string
	grpcAddr string
	http     string // base URL
	token    string
	conn     *grpc.ClientConn

	dataset   datasetpb.DatasetServiceClient
	inference inferencepb.InferenceServiceClient
	oip       oippb.GRPCInferenceServiceClient
	registry  registrypb.RegistryServiceClient
	health    healthpb.HealthClient

	importRoot string
	// source is the bucket bucket-prefix imports read, written with the S3
	// client itself (keys Shoal would not write included); nil without an
	// S3 server.
	source       *minio.Client
	sourceBucket string

	db    *gorm.DB   // the server's database, opened again for counting
	blobs blob.Store // the server's blob store, for counting
	// countRows counts every table's rows in one query (built once).
	countRows string

	log *logBuffer
}

// envS3Required makes a missing S3 server a failure rather than a skip of
// the bucket-prefix path.
const envS3Required = "SHOAL_TEST_S3_REQUIRED"

// s3Config is the test S3 server's settings for bucket, or ok=false when
// the environment names no server (scripts/s3server.sh start sets it).
func s3Config(bucket string) (blob.S3Config, bool) {
	endpoint := os.Getenv("SHOAL_TEST_S3_ENDPOINT")
	if endpoint == "" {
		return blob.S3Config{}, false
	}
	return blob.S3Config{
		Endpoint: endpoint, Bucket: bucket,
		AccessKey: os.Getenv("SHOAL_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("SHOAL_TEST_S3_SECRET_KEY"),
		Region: os.Getenv("SHOAL_TEST_S3_REGION"), Insecure: os.Getenv("SHOAL_TEST_S3_SECURE") == "",
		CreateBucket: true,
	}, true
}

// logBuffer keeps the server's log lines for a failure's message.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.b.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// startServer runs a whole Shoal process with the limits the kinds are
// sized against, with its blobs in a bucket of the test S3 server when
// there is one (bucket-prefix imports need the S3 backend), and uploads
// the model the predict paths run.
func startServer(t *testing.T, tune func(*app.Config)) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a whole process through every kind of bad input (about 20 s; 50 s with -race)")
	}
	onnxtest.Runtime(t) // skips (or fails, when required) without ONNX Runtime
	dir := t.TempDir()
	var cfg app.Config
	cfg.RegisterFlags(flag.NewFlagSet("badinput", flag.ContinueOnError))
	cfg.LogLevel = "warn"
	cfg.DB.DSN = filepath.Join(dir, "shoal.db")
	if os.Getenv(dbtest.EnvPostgres) != "" {
		// PostgreSQL when the test environment has it (make test does):
		// the deployment at scale, and far quicker under -race than SQLite,
		// whose engine is Go code the race detector instruments.
		cfg.DB = dbtest.Config(t, db.Postgres)
	}
	cfg.Blob.Local.Dir = filepath.Join(dir, "blobs")
	cfg.Auth.AdminTokenFile = filepath.Join(dir, "admin-token")
	cfg.Server.ShutdownTimeout = 10 * time.Second
	cfg.Server.MaxMessageBytes = badinput.MaxMessageBytes
	cfg.Trainer.WorkDir = filepath.Join(dir, "trainer")
	cfg.Registry.UploadDir = filepath.Join(dir, "uploads")
	cfg.Inference.DefaultModel = "fish"
	cfg.Inference.MaxImageBytes = badinput.MaxImageBytes
	cfg.Dataset.MaxImageBytes = badinput.MaxImageBytes
	cfg.Dataset.MaxArchiveBytes = badinput.MaxArchiveBytes
	cfg.Dataset.MaxArchiveEntries = badinput.MaxArchiveEntries
	s := &server{dir: dir, importRoot: filepath.Join(dir, "import"), log: &logBuffer{}}
	cfg.Dataset.ImportRoots = s.importRoot
	for _, d := range []string{s.importRoot, cfg.Registry.UploadDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	suffix := randomSuffix()
	if s3, ok := s3Config("shoal-badinput-" + suffix); ok {
		cfg.Blob.Backend = blob.BackendS3
		cfg.Blob.S3 = s3
		src := s3
		src.Bucket = "shoal-badinput-src-" + suffix
		if _, err := blob.NewS3(t.Context(), src); err != nil { // creates the bucket
			t.Fatalf("create the source bucket: %v", err)
		}
		c, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Secure: !s3.Insecure, Region: s3.Region})
		if err != nil {
			t.Fatal(err)
		}
		s.source, s.sourceBucket = c, src.Bucket
		t.Cleanup(func() { removeBuckets(t, s3, s3.Bucket, src.Bucket) })
	}
	if tune != nil {
		tune(&cfg)
	}
	s.cfg = cfg

	t.Cleanup(func() { // runs after the process has stopped
		if t.Failed() {
			t.Logf("server log (last lines):\n%s", s.log.tail(40))
		}
	})
	p := apptest.Start(t, cfg, s.log)
	s.grpcAddr, s.http, s.token = p.GRPCAddr, p.HTTPURL, p.Admin
	if s.token == "" {
		t.Fatalf("no admin token in %s", cfg.Auth.AdminTokenFile)
	}
	s.conn = s.dial(t, grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20))
	s.dataset = datasetpb.NewDatasetServiceClient(s.conn)
	s.inference = inferencepb.NewInferenceServiceClient(s.conn)
	s.oip = oippb.NewGRPCInferenceServiceClient(s.conn)
	s.registry = registrypb.NewRegistryServiceClient(s.conn)
	s.health = healthpb.NewHealthClient(s.conn)

	var err error
	if s.db, err = db.Open(t.Context(), cfg.DB, nil); err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := s.db.DB()
	t.Cleanup(func() { sqlDB.Close() })
	if s.blobs, err = blob.Open(t.Context(), cfg.Blob); err != nil {
		t.Fatal(err)
	}
	s.uploadModel(t)
	return s
}

// dial connects to the gRPC listener with the admin token on every call
// (a client's own connection: the server-side limits apply to it).
func (s *server) dial(t *testing.T, opts ...grpc.CallOption) *grpc.ClientConn {
	t.Helper()
	auth := "Bearer " + s.token
	conn, err := grpc.NewClient(s.grpcAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(opts...),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
			return invoker(metadata.AppendToOutgoingContext(ctx, "authorization", auth), method, req, reply, cc, o...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(metadata.AppendToOutgoingContext(ctx, "authorization", auth), desc, cc, method, o...)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func randomSuffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// removeBuckets empties and removes the test's buckets.
func removeBuckets(t *testing.T, cfg blob.S3Config, buckets ...string) {
	ctx := context.Background()
	c, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: !cfg.Insecure, Region: cfg.Region})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, b := range buckets {
		objects := c.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true})
		for res := range c.RemoveObjects(ctx, b, objects, minio.RemoveObjectsOptions{}) {
			t.Errorf("cleanup: remove %s/%s: %v", b, res.ObjectName, res.Err)
		}
		if err := c.RemoveBucket(ctx, b); err != nil {
			t.Errorf("cleanup: remove bucket %s: %v", b, err)
		}
	}
}

// uploadModel stores version 1 of the model "fish", which every predict
// path names.
func (s *server) uploadModel(t *testing.T) {
	t.Helper()
	stream, err := s.registry.CreateVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	spec := &registrypb.VersionSpec{Model: "fish", Labels: badinput.ModelLabels, InputSpec: modelInput()}
	if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: spec}}); err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: badinput.Model.Bytes()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("CreateVersion(fish) = %v", err)
	}
}

func modelInput() *registrypb.InputSpec {
	return &registrypb.InputSpec{Channels: 3, Height: 8, Width: 8, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.5, 0.5}}
}

// authed adds the admin token to a request.
func (s *server) authed(req *http.Request) *http.Request {
	req.Header.Set("Authorization", "Bearer "+s.token)
	return req
}

// alive checks that the process answers its liveness probe and gRPC
// health.
func (s *server) alive(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.http+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET /healthz: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz = %d; want 200", resp.StatusCode)
	}
	h, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("Health.Check() = %v, %v; want SERVING", h.GetStatus(), err)
	}
	return nil
}

// inventory is what is stored: the rows of every table, and which of a
// case's candidate blob keys exist. Blobs are content-addressed, so the
// only blobs a case can add are those named after the SHA-256 of bytes it
// sent; checking those keys is as exact as listing the store, and costs the
// same however many blobs there are (a listing of the S3 bucket grows with
// every case). One full listing at the end (auditBlobs) checks the rest.
type inventory struct {
	rows  map[string]int64
	blobs map[string]bool // candidate key -> stored
}

// audited tables change on every call by design (the audit trail records
// refusals too), so they are left out of the comparison.
var audited = []string{"auth_audit_events"}

func (s *server) inventory(ctx context.Context, candidates []string) (inventory, error) {
	inv := inventory{rows: map[string]int64{}, blobs: map[string]bool{}}
	if s.countRows == "" {
		list := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
		if s.cfg.DB.Driver == db.Postgres {
			list = "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
		}
		var tables []string
		if err := s.db.WithContext(ctx).Raw(list).Scan(&tables).Error; err != nil {
			return inv, err
		}
		var q []string
		for _, tbl := range tables {
			if !slices.Contains(audited, tbl) {
				q = append(q, fmt.Sprintf("SELECT '%s' AS name, COUNT(*) AS n FROM %s", tbl, tbl))
			}
		}
		s.countRows = strings.Join(q, " UNION ALL ")
	}
	var counts []struct {
		Name string
		N    int64
	}
	if err := s.db.WithContext(ctx).Raw(s.countRows).Scan(&counts).Error; err != nil {
		return inv, fmt.Errorf("count rows: %w", err)
	}
	for _, c := range counts {
		inv.rows[c.Name] = c.N
	}
	for _, key := range candidates {
		_, err := s.blobs.Stat(ctx, key)
		switch {
		case err == nil:
			inv.blobs[key] = true
		case errors.Is(err, blob.ErrNotFound):
			inv.blobs[key] = false
		default:
			return inv, fmt.Errorf("stat %s: %w", key, err)
		}
	}
	return inv, nil
}

// auditBlobs lists the whole blob store and checks that every blob is
// referenced by a row, or is one a refused import left (orphans): content
// stored ahead of its rows, which the orphan sweep removes.
func (s *server) auditBlobs(t *testing.T, orphans map[string]bool) {
	t.Helper()
	ctx := t.Context()
	var images, artifacts []string
	if err := s.db.WithContext(ctx).Raw("SELECT DISTINCT sha256 FROM dataset_images").Scan(&images).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.db.WithContext(ctx).Raw("SELECT sha256 FROM registry_artifacts").Scan(&artifacts).Error; err != nil {
		t.Fatal(err)
	}
	referenced := map[string]bool{}
	for _, sha := range images {
		referenced[imageKey(sha)] = true
	}
	for _, sha := range artifacts {
		referenced["registry/artifacts/sha256/"+sha] = true
	}
	n := 0
	err := s.blobs.List(ctx, "", func(info blob.Info) error {
		n++
		if !referenced[info.Key] && !orphans[info.Key] {
			t.Errorf("blob %s is referenced by no row, and no refused import left it", info.Key)
		}
		delete(referenced, info.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for key := range referenced {
		t.Errorf("a row references blob %s, which is not stored", key)
	}
	t.Logf("blob store: %d blobs, %d of them left by refused imports", n, len(orphans))
}

// imageKey is where the Dataset service stores an image with this SHA-256.
func imageKey(sha string) string { return "images/sha256/" + sha[:2] + "/" + sha }
