package blob_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/shoalml/shoal/internal/storage/blob"
)

// TestIsUnavailable: every call to an S3 server nobody listens on fails
// soon, as UNAVAILABLE; so do the server's own 503 answers. Missing keys
// and refused credentials are neither unavailable nor full.
func TestIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	s, err := blob.NewS3(t.Context(), blob.S3Config{Endpoint: closed, Bucket: "shoal", AccessKey: "a", SecretKey: "b", Region: "us-east-1", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Put":  func() error { return s.Put(t.Context(), "k", bytes.NewReader([]byte("x")), 1) },
		"Get":  func() error { _, err := s.Get(t.Context(), "k"); return err },
		"Stat": func() error { _, err := s.Stat(t.Context(), "k"); return err },
		"List": func() error { return s.List(t.Context(), "", func(blob.Info) error { return nil }) },
		"Ping": func() error { return s.Ping(t.Context()) },
	}
	for name, call := range calls {
		began := time.Now()
		err := call()
		took := time.Since(began)
		if !blob.IsUnavailable(err) || blob.IsDiskFull(err) {
			t.Errorf("%s to a closed port = %v; want it unavailable", name, err)
		}
		t.Logf("%s: %s", name, took)
		if took > 5*time.Second {
			t.Errorf("%s to a closed port took %s to fail; want a fast failure", name, took)
		}
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<Error><Code>SlowDown</Code><Message>busy</Message></Error>`)
	}))
	t.Cleanup(srv.Close)
	busy, err := blob.NewS3(t.Context(), blob.S3Config{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Bucket: "shoal", AccessKey: "a", SecretKey: "b", Region: "us-east-1", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := busy.Stat(t.Context(), "k"); !blob.IsUnavailable(err) {
		t.Errorf("Stat from a server answering 503 SlowDown = %v; want it unavailable", err)
	}

	for _, tt := range []struct {
		name string
		err  error
	}{
		{"not found", fmt.Errorf("x: %w", blob.ErrNotFound)},
		{"denied", minio.ErrorResponse{Code: "AccessDenied", StatusCode: http.StatusForbidden}},
		{"nil", nil},
	} {
		if blob.IsUnavailable(tt.err) || blob.IsDiskFull(tt.err) {
			t.Errorf("%s: IsUnavailable/IsDiskFull(%v) = true; want false", tt.name, tt.err)
		}
	}
}

// TestLocalDiskFull: a write that fails for lack of space is marked full.
func TestLocalDiskFull(t *testing.T) {
	s, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	full := &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	err = s.Put(t.Context(), "k", errReader{full}, -1)
	if !blob.IsDiskFull(err) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Put with a write failing ENOSPC = %v; want IsDiskFull, with the cause kept", err)
	}
	if err := s.Put(t.Context(), "k", errReader{errors.New("boom")}, -1); blob.IsDiskFull(err) {
		t.Errorf("Put with another failure = %v; want it not full", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
