// Package server builds Shoal's two listeners' servers: the gRPC server
// (reflection, health, interceptors) and the HTTP server (grpc-gateway,
// health and readiness probes, Prometheus metrics).
package server

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/shoalml/shoal/internal/tlsfiles"
)

// Config configures the gRPC and HTTP servers.
type Config struct {
	GRPCAddress     string
	HTTPAddress     string
	MaxMessageBytes int
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout bounds reading an HTTP request's headers, and
	// ReadBodyTimeout its body: the whole body, or for the upload streams
	// (which may run for hours) the wait between two reads. A client that
	// trickles them holds a connection and, on the inference routes, a
	// slot of the gateway's bound.
	ReadHeaderTimeout time.Duration
	ReadBodyTimeout   time.Duration
	// IdleTimeout closes a kept-alive HTTP connection that sends no next
	// request for that long: without it, idle connections stayed open for
	// ever, and enough of them use up the process's open files.
	IdleTimeout time.Duration
	CORSOrigins string
	Pprof       bool
	// GRPCTLS and HTTPTLS are the listeners' TLS files; empty: plaintext.
	GRPCTLS tlsfiles.Server
	HTTPTLS tlsfiles.Server
}

// MiB is a mebibyte.
const MiB = 1 << 20

// RegisterFlags registers the server flags with their defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddress, "grpc.listen-address", ":9090", "address the gRPC server listens on")
	fs.StringVar(&c.HTTPAddress, "http.listen-address", ":8080", "address the HTTP server (REST gateway, /healthz, /readyz, /metrics, UI) listens on")
	fs.IntVar(&c.MaxMessageBytes, "grpc.max-message-bytes", 64*MiB, "largest gRPC message (and REST body; REST upload streams are bounded per message, at twice this) accepted or sent, in bytes; photos must fit")
	fs.DurationVar(&c.ShutdownDelay, "server.shutdown-delay", 0, "how long to keep serving after health turns NOT_SERVING on shutdown, so load balancers stop routing here first")
	fs.DurationVar(&c.ShutdownTimeout, "server.shutdown-timeout", 15*time.Second, "how long in-flight requests may take to finish on shutdown before they are cut off")
	fs.DurationVar(&c.ReadHeaderTimeout, "http.read-header-timeout", 10*time.Second, "longest an HTTP request's headers may take to arrive")
	// A minute: a 64 MiB body (the default message limit) arrives within it
	// at 1.1 MB/s, a 10 MB photo at 170 kB/s.
	fs.DurationVar(&c.ReadBodyTimeout, "http.read-body-timeout", time.Minute,
		"longest an HTTP request's body may take to arrive (for the REST upload streams: the longest wait between two of its reads); slower bodies get 408")
	fs.DurationVar(&c.IdleTimeout, "http.idle-timeout", 2*time.Minute, "how long a kept-alive HTTP connection may wait for its next request before it is closed")
	fs.StringVar(&c.CORSOrigins, "http.cors-origins", "", "comma-separated origins allowed to call the REST API from a browser (\"*\" for any); empty disables CORS")
	for _, l := range []struct {
		name string
		tls  *tlsfiles.Server
	}{{"grpc", &c.GRPCTLS}, {"http", &c.HTTPTLS}} {
		fs.StringVar(&l.tls.CertFile, l.name+".tls-cert-file", "", "PEM certificate chain of the "+l.name+" listener; with its key, the listener speaks TLS only (the files are read again when they change)")
		fs.StringVar(&l.tls.KeyFile, l.name+".tls-key-file", "", "PEM private key of the "+l.name+" listener's certificate")
		fs.StringVar(&l.tls.ClientCAFile, l.name+".tls-client-ca-file", "", "PEM CAs whose client certificates the "+l.name+" listener requires (mutual TLS); empty: no client certificates")
	}
	fs.BoolVar(&c.Pprof, "http.pprof", false, "serve Go's runtime profiles (net/http/pprof) under /debug/pprof/ on the HTTP listener; for diagnosing, not for open networks")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	for name, addr := range map[string]string{"grpc.listen-address": c.GRPCAddress, "http.listen-address": c.HTTPAddress} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("--%s=%q is not host:port (for example :9090 or 127.0.0.1:9090)", name, addr))
		}
	}
	if c.MaxMessageBytes < 4*MiB {
		errs = append(errs, fmt.Errorf("--grpc.max-message-bytes=%d is too small: photos need at least %d (4 MiB)", c.MaxMessageBytes, 4*MiB))
	}
	errs = append(errs, c.GRPCTLS.Validate("grpc"), c.HTTPTLS.Validate("http"))
	if c.ReadHeaderTimeout <= 0 || c.ReadBodyTimeout <= 0 || c.IdleTimeout <= 0 {
		errs = append(errs, errors.New("--http.read-header-timeout, --http.read-body-timeout and --http.idle-timeout must be positive"))
	}
	if c.ShutdownDelay < 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--server.shutdown-delay must be >= 0 and --server.shutdown-timeout > 0"))
	}
	return errors.Join(errs...)
}
