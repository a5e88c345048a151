// Command go-client shows Shoal's Go SDK (github.com/shoalml/shoal/client):
// it sends images to Inference's Predict in one request (the server batches
// them) and prints each one's best labels, then lists the model's versions
// from the Registry through the SDK's generated client.
//
//	go run ./examples/go-client --addr localhost:9090 --model fashion shoe.jpg bag.png
//
// Predictions are open to anonymous callers by default; the Registry needs a
// token with the read scope: --token, or SHOAL_TOKEN. A loopback address is
// spoken to in plaintext, any other over TLS (--ca-file for a private CA).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"

	"github.com/shoalml/shoal/client"
)

func main() {
	addr := flag.String("addr", "localhost:9090", "Shoal's gRPC address")
	model := flag.String("model", "", "model to ask (empty: the server's default)")
	topK := flag.Int("top-k", 3, "labels per image")
	token := flag.String("token", os.Getenv("SHOAL_TOKEN"), "API token (default $SHOAL_TOKEN)")
	caFile := flag.String("ca-file", "", "PEM CAs that sign the server's certificate (TLS)")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: go-client [--addr HOST:PORT] [--model M] [--top-k K] [--token T] [--ca-file CA] IMAGE...")
	}

	opts := []client.Option{client.WithToken(*token)}
	if *caFile != "" {
		opts = append(opts, client.WithTLS(client.TLS{CAFile: *caFile}))
	}
	c, err := client.New(*addr, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := c.PredictFiles(ctx, flag.Args(), client.Model(*model), client.TopK(*topK))
	switch {
	case errors.Is(err, client.ErrNotFound):
		log.Fatalf("no such model: %v", err)
	case errors.Is(err, client.ErrInvalidArgument):
		log.Fatalf("refused: %v", err) // e.g. a file that is not an image
	case err != nil:
		log.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		fmt.Printf("%s:", flag.Arg(i))
		for _, l := range r.GetLabels() {
			fmt.Printf(" %s %.4f", l.GetLabel(), l.GetProbability())
		}
		fmt.Println()
	}
	fmt.Printf("answered by %s v%d\n", resp.GetModel(), resp.GetVersion())

	versions, err := c.Registry().ListVersions(ctx, &registrypb.ListVersionsRequest{Model: resp.GetModel()})
	if errors.Is(err, client.ErrUnauthenticated) {
		log.Fatal("listing versions needs a token with the read scope: --token or SHOAL_TOKEN")
	} else if err != nil {
		log.Fatal(err)
	}
	for _, v := range versions.GetVersions() {
		fmt.Printf("%s v%d: %s, test accuracy %.4f, aliases %v\n", v.GetModel(), v.GetVersion(), v.GetArchitecture(),
			v.GetMetrics().GetTestAccuracy(), v.GetAliases())
	}
}
