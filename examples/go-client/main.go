// Command go-client shows Shoal's generated Go SDK: it sends images to
// Inference's Predict in one request (the server batches them) and prints
// each one's best labels, then lists the model's versions from the Registry.
//
//	go run ./examples/go-client --addr localhost:9090 --model fashion shoe.jpg bag.png
//
// Predictions are open to anonymous callers by default; the Registry needs a
// token with the read scope: --token, or SHOAL_TOKEN.
//
// Any language works the same way from the contracts in proto/ (add its
// plugin to buf.gen.yaml), or over REST from gen/openapi/shoal.swagger.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
)

func main() {
	addr := flag.String("addr", "localhost:9090", "Shoal's gRPC address")
	model := flag.String("model", "", "model to ask (empty: the server's default)")
	topK := flag.Int("top-k", 3, "labels per image")
	token := flag.String("token", os.Getenv("SHOAL_TOKEN"), "API token (default $SHOAL_TOKEN)")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: go-client [--addr HOST:PORT] [--model M] [--top-k K] IMAGE...")
	}

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if *token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*token)
	}

	req := &inferencepb.PredictRequest{Model: *model, TopK: int32(*topK)}
	for _, name := range flag.Args() {
		b, err := os.ReadFile(name)
		if err != nil {
			log.Fatal(err)
		}
		req.Images = append(req.Images, b)
	}
	resp, err := inferencepb.NewInferenceServiceClient(conn).Predict(ctx, req)
	if err != nil {
		log.Fatalf("Predict: %v", err) // e.g. InvalidArgument for a file that is not an image
	}
	for i, r := range resp.GetResults() {
		fmt.Printf("%s:", flag.Arg(i))
		for _, l := range r.GetLabels() {
			fmt.Printf(" %s %.4f", l.GetLabel(), l.GetProbability())
		}
		fmt.Println()
	}
	fmt.Printf("answered by %s v%d\n", resp.GetModel(), resp.GetVersion())

	versions, err := registrypb.NewRegistryServiceClient(conn).ListVersions(ctx, &registrypb.ListVersionsRequest{Model: resp.GetModel()})
	if err != nil {
		log.Fatalf("ListVersions: %v", err)
	}
	for _, v := range versions.GetVersions() {
		fmt.Printf("%s v%d: %s, test accuracy %.4f, aliases %v\n", v.GetModel(), v.GetVersion(), v.GetArchitecture(),
			v.GetMetrics().GetTestAccuracy(), v.GetAliases())
	}
}
