package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
)

const predictUsage = `Usage: shoal predict [flags] IMAGE...

Classifies images (JPEG, PNG, GIF, WebP, BMP) with a model the server's Inference
service serves: by default the production version of its default model.

Flags:
`

// Predict runs `shoal predict IMAGE... [--model M --version V --alias A --top-k K]`.
func Predict(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shoal predict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, predictUsage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "localhost:9090", "gRPC address of a Shoal server running inference")
	timeout := fs.Duration("timeout", time.Minute, "bound on the whole command")
	model := fs.String("model", "", "model name; empty for the server's default model (--inference.default-model)")
	version := fs.Int64("version", 0, "version number; 0 serves the alias")
	alias := fs.String("alias", "", "alias to serve when --version is 0; empty for production")
	topK := fs.Int("top-k", 3, "labels to show per image")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return fmt.Errorf("predict: at least one IMAGE is required")
	}
	if *topK < 1 {
		return fmt.Errorf("predict: --top-k=%d: must be at least 1", *topK)
	}
	req := &inferencepb.PredictRequest{Model: *model, Version: *version, Alias: *alias, TopK: int32(*topK)}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("predict: %w", err)
		}
		req.Images = append(req.Images, b)
	}
	return call(ctx, *addr, *timeout, func(ctx context.Context, conn *grpc.ClientConn) error {
		resp, err := inferencepb.NewInferenceServiceClient(conn).Predict(ctx, req)
		if err != nil {
			return err
		}
		t := resp.GetTimings()
		fmt.Fprintf(stdout, "%s v%d  (batch %d; preprocess %s, queue %s, compute %s, total %s)\n",
			resp.GetModel(), resp.GetVersion(), t.GetBatchSize(), t.GetPreprocess().AsDuration(), t.GetQueue().AsDuration(),
			t.GetCompute().AsDuration(), t.GetTotal().AsDuration())
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tLABEL\tPROBABILITY")
		for i, r := range resp.GetResults() {
			name := files[i]
			for _, l := range r.GetLabels() {
				fmt.Fprintf(tw, "%s\t%s\t%.4f\n", name, l.GetLabel(), l.GetProbability())
				name = ""
			}
		}
		return tw.Flush()
	})
}
