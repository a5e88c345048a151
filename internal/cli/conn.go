package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/tlsfiles"
)

// Where a client finds the server when neither --addr nor SHOAL_ADDR says.
const defaultAddr = "localhost:9090"

// Time bounds of a whole command when --timeout is 0: a prediction is quick,
// a model upload moves up to a few hundred megabytes, and imports, uploads
// and followed training jobs run as long as the data needs.
const (
	quickTimeout = time.Minute
	modelTimeout = 10 * time.Minute
	longTimeout  = 24 * time.Hour
)

// connFlags are the global flags that say how to reach a Shoal server. Every
// client connection is made by dial, from dialOptions: credentials (a token,
// TLS) belong there, with their flags and variables registered next to
// --addr's, and nowhere else.
type connFlags struct {
	addr    string
	timeout time.Duration
	token   string
	tls     tlsfiles.Client
}

// adminTokenFile is where `shoal serve` writes the admin token it creates
// on a new install (--auth.admin-token-file's default): the CLI on the same
// machine, in the same folder, uses it when no token is given.
const adminTokenFile = "data/admin-token"

func (f *connFlags) register(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) {
	env := func(name, def string) string {
		if v, ok := lookupEnv(name); ok && v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&f.addr, "addr", env("SHOAL_ADDR", defaultAddr), "gRPC address of the Shoal server (env SHOAL_ADDR)")
	fs.DurationVar(&f.timeout, "timeout", 0,
		"bound on the whole command, e.g. 30s; 0 for the command's own (predict 1m, models 10m, the rest 24h)")
	fs.StringVar(&f.token, "token", env("SHOAL_TOKEN", ""),
		"API token (env SHOAL_TOKEN; default for a server on this machine: ./"+adminTokenFile+" when present, which shoal serve writes on a new install)")
	tlsOn := false
	switch strings.ToLower(env("SHOAL_TLS", "")) {
	case "1", "true", "yes", "on":
		tlsOn = true
	}
	fs.BoolVar(&f.tls.Enabled, "tls", tlsOn, "speak TLS to the server, checking its certificate against the system's CAs (env SHOAL_TLS=1)")
	fs.StringVar(&f.tls.CAFile, "ca-file", env("SHOAL_CA_FILE", ""), "PEM CAs that sign the server's certificate; implies --tls (env SHOAL_CA_FILE)")
	fs.StringVar(&f.tls.CertFile, "cert-file", env("SHOAL_CERT_FILE", ""), "PEM client certificate, for servers that require one (mutual TLS); implies --tls")
	fs.StringVar(&f.tls.KeyFile, "key-file", env("SHOAL_KEY_FILE", ""), "PEM private key of --cert-file")
}

// secret is the token calls carry: --token (or SHOAL_TOKEN), else the admin
// token a local `shoal serve` wrote, else none (anonymous: prediction only,
// by default).
func (f *connFlags) secret() (string, error) {
	if f.token != "" {
		return strings.TrimSpace(f.token), nil
	}
	// The local admin token goes to a local server only: sent to whatever
	// --addr names, it would leak to any host a command is pointed at.
	if !auth.Loopback(f.addr) {
		return "", nil
	}
	b, err := os.ReadFile(adminTokenFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("reading the admin token ./%s: %w (give --token or SHOAL_TOKEN instead)", adminTokenFile, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// dialOptions are the options of every client connection, built from the
// global flags: the transport (TLS or not) and the token.
func (f *connFlags) dialOptions() ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	cfg, err := f.tls.Config()
	if err != nil {
		return nil, usagef("--tls/--ca-file/--cert-file: %v", err)
	}
	if cfg != nil {
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	}
	secret, err := f.secret()
	if err != nil {
		return nil, err
	}
	if secret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Bearer(secret)))
	}
	return opts, nil
}

// dial connects to addr (--addr, or another service's address such as
// predict's --registry-addr) with the global connection options.
func (f *connFlags) dial(addr string) (*grpc.ClientConn, error) {
	opts, err := f.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, usagef("--addr=%q: %v", addr, err)
	}
	return conn, nil
}

// bound is a command's time bound: --timeout, or def when it is 0.
func (f *connFlags) bound(def time.Duration) time.Duration {
	if f.timeout > 0 {
		return f.timeout
	}
	return def
}

// call connects to --addr and runs fn within --timeout, or within bound when
// --timeout is 0. A failed call comes back as an rpcError.
func (f *connFlags) call(ctx context.Context, bound time.Duration, fn func(context.Context, *grpc.ClientConn) error) error {
	bound = f.bound(bound)
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	conn, err := f.dial(f.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = fn(ctx, conn)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return fmt.Errorf("no answer within %s (--timeout): %w", bound, err)
	}
	if st, ok := status.FromError(err); ok {
		return &rpcError{st: st, addr: f.addr, timeout: bound}
	}
	return err
}
