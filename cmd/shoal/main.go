// Command shoal is Shoal's one binary: `shoal serve` runs the platform (all
// services, or the --target subset), and the other subcommands are clients
// (internal/cli).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoalml/shoal/internal/app"
	"github.com/shoalml/shoal/internal/buildinfo"
	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSEnv(), serveCommand())
	stop()
	os.Exit(code)
}

// run is main without the process: for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Run(ctx, args, cli.Env{Stdout: stdout, Stderr: stderr}, serveCommand())
}

func serveCommand() cli.Passthrough {
	return cli.Passthrough{
		Name:  "serve",
		Short: "Run the platform: all services, or the --target subset (see shoal serve --help)",
		Run:   serve,
	}
}

const serveUsage = `Usage: shoal serve [flags]

Every flag can also be set in the YAML file given by --config.file (keys nested at each '.')
or as an environment variable (SHOAL_ + the flag name in upper case, '.' and '-' as '_').
Precedence: defaults < file < environment < flags.

Flags:
`

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shoal serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; help goes to stdout below
	var cfg app.Config
	cfg.RegisterFlags(fs)
	printConfig := fs.Bool("print-config", false, "print the effective configuration as YAML and exit")
	checkConfig := fs.Bool("check-config", false, "validate the configuration and exit (0 when valid)")
	if err := config.Load(fs, args, os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, serveUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return cli.UsageError(fmt.Errorf("%w (see shoal serve --help)", err))
	}
	if *printConfig {
		return config.Print(stdout, fs, app.Secret, "print-config", "check-config")
	}
	log := app.NewLogger(cfg, stderr)
	app.SetGRPCLogger(log)
	a, err := app.New(cfg, log, buildinfo.Version())
	if err != nil {
		return cli.UsageError(fmt.Errorf("invalid configuration:\n%w", err))
	}
	if *checkConfig {
		fmt.Fprintln(stdout, "configuration is valid")
		return nil
	}
	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", cfg.Server.GRPCAddress)
	if err != nil {
		return fmt.Errorf("grpc listener: %w", err)
	}
	httpLis, err := lc.Listen(ctx, "tcp", cfg.Server.HTTPAddress)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("http listener: %w", err)
	}
	return a.Run(ctx, app.Listeners{GRPC: grpcLis, HTTP: httpLis})
}
