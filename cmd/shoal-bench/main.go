// Command shoal-bench measures Inference on a running Shoal server
// (scripts/bench-inference.sh starts one and calls it):
//
//	shoal-bench run --grpc ADDR --http ADDR --model NAME [flags]   measure and print Markdown
//	shoal-bench soak --pid PID --grpc ADDR --http ADDR [flags]         overload /predict; exit 1 when a criterion fails
//	shoal-bench refusals --http ADDR [flags]                        CPU a refused /predict costs (scripts/bench-refusals.sh)
//	shoal-bench coldstart --model NAME --http ADDR -- shoal serve ...  time starts until the model is ready
//	shoal-bench export --arch ARCH --size 224 --out FILE            write an untrained, batch-dynamic ONNX model
//	shoal-bench ports N                                             print N free TCP ports
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/shoalml/shoal/internal/bench"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/onnxrt"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoal-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: shoal-bench run|soak|refusals|coldstart|export|ports [flags]")
	}
	fs := flag.NewFlagSet("shoal-bench "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "run":
		var cfg bench.Config
		cfg.RegisterFlags(fs)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		r, err := bench.Run(ctx, cfg, os.Stderr)
		if err != nil {
			return err
		}
		r.Markdown(os.Stdout)
		return nil
	case "soak":
		var cfg bench.SoakConfig
		cfg.RegisterFlags(fs)
		profile := fs.String("cpuprofile", "", "write the generator's own CPU profile to this file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		if *profile != "" {
			f, err := os.Create(*profile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		r, err := bench.Soak(ctx, cfg, os.Stderr)
		if err != nil {
			return err
		}
		if cfg.SaturationOnly {
			fmt.Printf("throughput %.1f p50 %v p99 %v\n", r.Saturation.ImagesPerSecond, r.Saturation.P50, r.Saturation.P99)
			return nil
		}
		r.Markdown(os.Stdout)
		if !r.Passed() {
			return fmt.Errorf("soak: a criterion was not met (see the table)")
		}
		return nil
	case "refusals":
		var cfg bench.RefusalConfig
		cfg.RegisterFlags(fs)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		r, err := bench.MeasureRefusals(ctx, cfg)
		if err != nil {
			return err
		}
		r.Markdown(os.Stdout, cfg)
		return nil
	case "coldstart":
		var cfg bench.ColdStartConfig
		cfg.RegisterFlags(fs)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg.Command = fs.Args()
		if err := cfg.Validate(); err != nil {
			return err
		}
		r, err := bench.MeasureColdStart(ctx, cfg, os.Stderr)
		if err != nil {
			return err
		}
		r.Markdown(os.Stdout, cfg.Header)
		return nil
	case "export":
		var rt onnxrt.Config
		rt.RegisterFlags(fs)
		arch := fs.String("arch", "torchvision-resnet18", "torchvision-resnet18 (Conv nodes, as PyTorch exports it) or a Trainer architecture (see shoal train --help)")
		size := fs.Int("size", 224, "input height and width")
		channels := fs.Int("channels", 3, "input channels")
		classes := fs.Int("classes", 5, "output classes")
		out := fs.String("out", "", "ONNX file to write")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" {
			return fmt.Errorf("--out is required")
		}
		lib, err := rt.LibraryPath()
		if err != nil {
			return err
		}
		var b []byte
		if *arch == "torchvision-resnet18" {
			b, err = bench.ResNet18ONNX(*classes, 1)
		} else {
			b, err = bench.ExportUntrained(lib, *arch, ml.InputShape{Channels: *channels, Height: *size, Width: *size}, *classes, 1)
		}
		if err != nil {
			return err
		}
		return os.WriteFile(*out, b, 0o644)
	case "ports":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		n := 1
		if fs.NArg() > 0 {
			if _, err := fmt.Sscan(fs.Arg(0), &n); err != nil {
				return fmt.Errorf("ports N: %w", err)
			}
		}
		ports, err := bench.FreePorts(n)
		if err != nil {
			return err
		}
		for _, p := range ports {
			fmt.Println(p)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q: want run, soak, coldstart, export or ports", args[0])
}
