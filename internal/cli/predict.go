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
	"google.golang.org/protobuf/encoding/protojson"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

const predictUsage = `Usage: shoal predict [flags] IMAGE...

Classifies images (JPEG, PNG, GIF, WebP, BMP) with a model the server's Inference
service serves: by default the production version of its default model.

--protocol=oip preprocesses the images here, with the version's input spec
from the Registry (--registry-addr), and sends tensors through the Open
Inference Protocol's ModelInfer, as a KServe or Triton client would; its
probabilities match --protocol=shoal (the server's Predict) on the same images.

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
	protocol := fs.String("protocol", "shoal", "shoal (Predict: the server decodes) or oip (ModelInfer with tensors preprocessed here)")
	registryAddr := fs.String("registry-addr", "", "gRPC address of the Registry, for --protocol=oip; empty for --addr")
	format := fs.String("format", "table", "table, or json (a shoal.inference.v1.PredictResponse)")
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
	if *format != "table" && *format != "json" {
		return fmt.Errorf("predict: --format=%q: want table or json", *format)
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
		var resp *inferencepb.PredictResponse
		var err error
		switch *protocol {
		case "shoal":
			resp, err = inferencepb.NewInferenceServiceClient(conn).Predict(ctx, req)
		case "oip":
			reg := conn
			if *registryAddr != "" && *registryAddr != *addr {
				if reg, err = dial(*registryAddr); err != nil {
					return fmt.Errorf("--registry-addr=%q: %w", *registryAddr, err)
				}
				defer reg.Close()
			}
			resp, err = predictOIP(ctx, oippb.NewGRPCInferenceServiceClient(conn), registrypb.NewRegistryServiceClient(reg), req)
		default:
			return fmt.Errorf("predict: --protocol=%q: want shoal or oip", *protocol)
		}
		if err != nil {
			return err
		}
		if *format == "json" {
			b, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, string(b))
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
