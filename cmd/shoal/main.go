// Command shoal is Shoal's one binary: `shoal serve` runs the platform (all
// services, or the --target subset), and the other subcommands are clients.
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
	"github.com/shoalml/shoal/internal/demodata"
)

const usage = `Shoal: train, register and serve image classifiers over gRPC and REST.

Usage:
  shoal serve [flags]      run the platform (see shoal serve --help)
  shoal models <command>   list, show, upload, promote and delete model versions (see shoal models help)
  shoal dataset <command>  create, import, upload, stats, snapshot and list datasets (see shoal dataset help)
  shoal predict IMAGE...   classify images with a served model (see shoal predict --help)
  shoal train --dataset D  train a model on a dataset, --follow to watch it (see shoal train --help)
  shoal demo-data [flags]  write the offline Fashion-MNIST demo tree (see shoal demo-data --help)
  shoal version            print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "shoal:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "models":
		return cli.Models(ctx, args[1:], stdout, stderr)
	case "dataset":
		return cli.Dataset(ctx, args[1:], stdout, stderr)
	case "predict":
		return cli.Predict(ctx, args[1:], stdout, stderr)
	case "train":
		return cli.Train(ctx, args[1:], stdout, stderr)
	case "demo-data":
		return demodata.Run(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, buildinfo.Version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shoal serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg app.Config
	cfg.RegisterFlags(fs)
	printConfig := fs.Bool("print-config", false, "print the effective configuration as YAML and exit")
	checkConfig := fs.Bool("check-config", false, "validate the configuration and exit (0 when valid)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: shoal serve [flags]\n\nEvery flag can also be set in the YAML file given by --config.file (keys nested at each '.')\nor as an environment variable (SHOAL_ + the flag name in upper case, '.' and '-' as '_').\nPrecedence: defaults < file < environment < flags.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := config.Load(fs, args, os.LookupEnv); err != nil {
		return err
	}
	if *printConfig {
		return config.Print(stdout, fs, app.Secret, "print-config", "check-config")
	}
	log := app.NewLogger(cfg, stderr)
	app.SetGRPCLogger(log)
	a, err := app.New(cfg, log, buildinfo.Version())
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
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
