package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
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
}

func (f *connFlags) register(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) {
	addr := defaultAddr
	if v, ok := lookupEnv("SHOAL_ADDR"); ok && v != "" {
		addr = v
	}
	fs.StringVar(&f.addr, "addr", addr, "gRPC address of the Shoal server (env SHOAL_ADDR)")
	fs.DurationVar(&f.timeout, "timeout", 0,
		"bound on the whole command, e.g. 30s; 0 for the command's own (predict 1m, models 10m, the rest 24h)")
}

// dialOptions are the options of every client connection, built from the
// global flags.
func (f *connFlags) dialOptions() ([]grpc.DialOption, error) {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	}, nil
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

// call connects to --addr and runs fn within --timeout, or within bound when
// --timeout is 0. A failed call comes back as an rpcError.
func (f *connFlags) call(ctx context.Context, bound time.Duration, fn func(context.Context, *grpc.ClientConn) error) error {
	if f.timeout > 0 {
		bound = f.timeout
	}
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
