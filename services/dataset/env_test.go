package dataset

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
)

// env is a dataset service served by grpctest, with an import root under a
// temporary directory.
type env struct {
	client datasetpb.DatasetServiceClient
	svc    *Service
	blobs  blob.Store
	root   string // the configured import root
	addr   string // a TCP address of the same server, for the CLI
	conn   *grpc.ClientConn
}

type envOpts struct {
	db          db.Config
	blobs       blob.Store
	cfg         func(*Config)
	objectStore func(ctx context.Context, bucket, prefix string) (blob.Store, error)
	// maxMessage, when set, is the server's grpc.max-message-bytes.
	maxMessage int
}

func defaultConfig() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	return c
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if o.db.Driver == "" {
		o.db = dbtest.Config(t, db.SQLite)
	}
	if o.blobs == nil {
		var err error
		if o.blobs, err = blob.NewLocal(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	cfg := defaultConfig()
	cfg.ImportRoots = root
	cfg.MaxImageBytes = 1 << 20
	cfg.MaxImagePixels = 4 << 20
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	svc, err := New(cfg, Deps{Log: testlog.New(t), DB: dbtest.Open(t, o.db), Blobs: o.blobs, ObjectStore: o.objectStore})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	// Run's daily orphan sweep stays off: the sweep's tests call it
	// themselves.
	srv := grpctest.Start(t, svc, grpctest.Options{TCP: true, NoRun: true, MaxMessageBytes: o.maxMessage})
	return &env{client: datasetpb.NewDatasetServiceClient(srv.Conn), svc: svc, blobs: o.blobs, root: root, addr: srv.Addr, conn: srv.Conn}
}

func (e *env) create(t testing.TB, name string) {
	t.Helper()
	if _, err := e.client.CreateDataset(t.Context(), &datasetpb.CreateDatasetRequest{Name: name}); err != nil {
		t.Fatalf("CreateDataset(%q) = %v", name, err)
	}
}

// importResult is everything an ImportImages stream said.
type importResult struct {
	done       *datasetpb.ImportCounts
	rejections map[string]string // path -> reason
	progress   int
	err        error
}

func (e *env) importLocal(t testing.TB, dataset, path string) importResult {
	t.Helper()
	return e.importReq(t, &datasetpb.ImportImagesRequest{Dataset: dataset,
		Source: &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: path}}})
}

func (e *env) importReq(t testing.TB, req *datasetpb.ImportImagesRequest) importResult {
	t.Helper()
	stream, err := e.client.ImportImages(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	res := importResult{rejections: map[string]string{}}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if res.done == nil {
				t.Fatalf("ImportImages ended without a done event")
			}
			return res
		}
		if err != nil {
			res.err = err
			return res
		}
		switch ev := msg.GetEvent().(type) {
		case *datasetpb.ImportImagesResponse_Progress:
			res.progress++
		case *datasetpb.ImportImagesResponse_Rejection:
			res.rejections[ev.Rejection.GetPath()] = ev.Rejection.GetReason()
		case *datasetpb.ImportImagesResponse_Done:
			res.done = ev.Done
		}
	}
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s = %v; want code %s", what, err, code)
	}
}

// writeFile writes data at root/rel, making folders.
func writeFile(t testing.TB, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// failingStore is a blob.Store whose Puts fail after the first n, as a
// storage outage in the middle of an import.
type failingStore struct {
	blob.Store
	left atomic.Int64
}

var errOutage = errors.New("storage outage (test)")

func (f *failingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if f.left.Add(-1) < 0 {
		return errOutage
	}
	return f.Store.Put(ctx, key, r, size)
}

func countBlobs(t testing.TB, s blob.Store) int {
	t.Helper()
	n := 0
	if err := s.List(t.Context(), blobKeyPrefix, func(blob.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func countRows(t testing.TB, e *env, dataset string) int64 {
	t.Helper()
	resp, err := e.client.GetDataset(t.Context(), &datasetpb.GetDatasetRequest{Name: dataset})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDataset().GetImageCount()
}
