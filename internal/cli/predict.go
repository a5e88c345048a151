package cli

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

func (p *program) predictCmd() *cobra.Command {
	var model, alias, protocol, registryAddr string
	var version int64
	var topK int
	cmd := &cobra.Command{
		Use:   "predict IMAGE...",
		Short: "Classify images with a served model",
		Long: `Classifies images (JPEG, PNG, GIF, WebP, BMP) with a model the server's Inference
service serves: by default the production version of its default model.

--protocol=oip preprocesses the images here, with the version's input spec
from the Registry (--registry-addr), and sends tensors through the Open
Inference Protocol's ModelInfer, as a KServe or Triton client would; its
probabilities match --protocol=shoal (the server's Predict) on the same images.`,
		Args: rangeArgs(1, -1),
	}
	out := addOutputFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model name; empty for the server's default model (--inference.default-model)")
	f.Int64Var(&version, "version", 0, "version number; 0 serves the alias")
	f.StringVar(&alias, "alias", "", "alias to serve when --version is 0; empty for production")
	f.IntVar(&topK, "top-k", 3, "labels to show per image")
	f.StringVar(&protocol, "protocol", "shoal", "shoal (Predict: the server decodes) or oip (ModelInfer with tensors preprocessed here)")
	f.StringVar(&registryAddr, "registry-addr", "", "gRPC address of the Registry, for --protocol=oip; empty for --addr")
	f.Var(out, "format", "the same as --output")
	_ = f.MarkHidden("format")
	cmd.RunE = func(cmd *cobra.Command, files []string) error {
		p.deprecated(cmd, "format", "-o/--output")
		if topK < 1 {
			return usagef("--top-k=%d: must be at least 1", topK)
		}
		if protocol != "shoal" && protocol != "oip" {
			return usagef("--protocol=%q: want shoal or oip", protocol)
		}
		req := &inferencepb.PredictRequest{Model: model, Version: version, Alias: alias, TopK: int32(topK)}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			req.Images = append(req.Images, b)
		}
		return p.conn.call(cmd.Context(), quickTimeout, func(ctx context.Context, conn *grpc.ClientConn) error {
			var resp *inferencepb.PredictResponse
			var err error
			if protocol == "oip" {
				reg := conn
				if registryAddr != "" && registryAddr != p.conn.addr {
					if reg, err = p.conn.dial(registryAddr); err != nil {
						return err
					}
					defer reg.Close()
				}
				resp, err = predictOIP(ctx, oippb.NewGRPCInferenceServiceClient(conn), registrypb.NewRegistryServiceClient(reg), req)
			} else {
				resp, err = inferencepb.NewInferenceServiceClient(conn).Predict(ctx, req)
			}
			if err != nil {
				return err
			}
			if out.structured() {
				return out.print(p.env.Stdout, resp)
			}
			return printPrediction(p.env, files, resp)
		})
	}
	return cmd
}

func printPrediction(env *Env, files []string, resp *inferencepb.PredictResponse) error {
	t := resp.GetTimings()
	fmt.Fprintf(env.Stdout, "%s v%d  (batch %d; preprocess %s, queue %s, compute %s, total %s)\n",
		resp.GetModel(), resp.GetVersion(), t.GetBatchSize(), t.GetPreprocess().AsDuration(), t.GetQueue().AsDuration(),
		t.GetCompute().AsDuration(), t.GetTotal().AsDuration())
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tLABEL\tPROBABILITY")
	for i, r := range resp.GetResults() {
		name := files[i]
		for _, l := range r.GetLabels() {
			fmt.Fprintf(tw, "%s\t%s\t%.4f\n", name, l.GetLabel(), l.GetProbability())
			name = ""
		}
	}
	return tw.Flush()
}
