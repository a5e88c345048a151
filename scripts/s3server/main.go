// Command s3server is the real S3 server Shoal's tests run against: the
// Versity S3 Gateway (versitygw) with its POSIX backend, embedded through its
// embedgw package, serving one directory on one loopback address.
// scripts/s3server.sh builds, starts and stops it.
//
//	SHOAL_S3SERVER_ACCESS_KEY=... SHOAL_S3SERVER_SECRET_KEY=... \
//	    s3server -addr 127.0.0.1:PORT -dir DIR
//
// Buckets are folders of DIR/buckets; object metadata lives in extended
// attributes, or in DIR/meta where the file system has none. The keys come
// from the environment so that they do not show in the process list. It
// exits with status 3 when the address is taken, so that the caller can
// retry on another port, and stops cleanly on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/versity/versitygw/backend/meta"
	"github.com/versity/versitygw/backend/posix"
	"github.com/versity/versitygw/embedgw"
)

const exitAddrInUse = 3

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("s3server: ")
	addr := flag.String("addr", "", "loopback `host:port` to serve S3 on (required)")
	dir := flag.String("dir", "", "`directory` for the buckets and their metadata (required)")
	flag.Parse()
	if err := run(*addr, *dir); err != nil {
		log.Print(err)
		if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
			os.Exit(exitAddrInUse)
		}
		os.Exit(1)
	}
}

func run(addr, dir string) error {
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if err := checkLoopback(addr); err != nil {
		return err
	}
	if dir == "" {
		return errors.New("-dir is required")
	}
	access, secret := os.Getenv("SHOAL_S3SERVER_ACCESS_KEY"), os.Getenv("SHOAL_S3SERVER_SECRET_KEY")
	if access == "" || secret == "" {
		return errors.New("SHOAL_S3SERVER_ACCESS_KEY and SHOAL_S3SERVER_SECRET_KEY must be set")
	}

	root, err := filepath.Abs(filepath.Join(dir, "buckets"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	var opts posix.PosixOpts
	store, err := metadataStore(root, filepath.Join(filepath.Dir(root), "meta"), &opts)
	if err != nil {
		return err
	}
	be, err := posix.New(root, store, opts)
	if err != nil {
		return fmt.Errorf("POSIX backend on %s: %w", root, err)
	}
	defer be.Shutdown()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Printf("serving S3 on %s from %s", addr, root)
	// KeepAlive stays off, as in versitygw's own command: with it on, after a
	// client abandons an upload midway the server reads the rest of the body
	// as a new request, answers 400 on the idle connection and closes it, and
	// the client's next request on that connection fails with a broken pipe.
	err = embedgw.RunVersityGW(ctx, be, &embedgw.Config{
		RootUserAccess:    access,
		RootUserSecret:    secret,
		Region:            "us-east-1",
		Ports:             []string{addr},
		MaxConnections:    10000,
		MaxRequests:       5000,
		MultipartMaxParts: 10000,
		Quiet:             true,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Print("stopped")
	return nil
}

// checkLoopback accepts only a numeric loopback address with a port: a test
// server with throwaway keys must not be reachable from the network.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("-addr %q: want a loopback host:port such as 127.0.0.1:9000", addr)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: the host must be a loopback IP address", addr)
	}
	return nil
}

// metadataStore keeps object metadata in extended attributes, versitygw's
// default, and falls back to sidecar files where the file system does not
// support user extended attributes (tmpfs before Linux 6.6, some overlays).
func metadataStore(root, sidecar string, opts *posix.PosixOpts) (meta.MetadataStorer, error) {
	xattrErr := meta.XattrMeta{}.Test(root)
	if xattrErr == nil {
		return meta.XattrMeta{}, nil
	}
	if err := os.MkdirAll(sidecar, 0o700); err != nil {
		return nil, err
	}
	sc, err := meta.NewSideCar(sidecar)
	if err != nil {
		return nil, fmt.Errorf("sidecar metadata in %s: %w", sidecar, err)
	}
	log.Printf("no extended attributes in %s (%v); metadata goes to %s", root, xattrErr, sidecar)
	opts.SideCarDir = sidecar
	return sc, nil
}
