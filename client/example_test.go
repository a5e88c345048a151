package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"

	"github.com/shoalml/shoal/client"
)

// Classify two images with the production version of the model "fashion".
func Example() {
	c, err := client.New("localhost:9090", client.WithToken(os.Getenv("SHOAL_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	files := []string{"shoe.png", "bag.png"}
	resp, err := c.PredictFiles(ctx, files, client.Model("fashion"), client.TopK(3))
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		best := r.GetLabels()[0]
		fmt.Printf("%s: %s %.3f\n", files[i], best.GetLabel(), best.GetProbability())
	}
	fmt.Printf("answered by %s v%d\n", resp.GetModel(), resp.GetVersion())
}

// A server on another machine, over mutual TLS.
func ExampleNew_tls() {
	c, err := client.New("shoal.example.com:9090",
		client.WithToken(os.Getenv("SHOAL_TOKEN")),
		client.WithTLS(client.TLS{CAFile: "ca.pem", CertFile: "client.pem", KeyFile: "client-key.pem"}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Errors match the sentinel of their gRPC code. Nothing listens on port 1
// here, so the call fails as a lost server does.
func Example_errors() {
	c, err := client.New("127.0.0.1:1")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_, err = c.Predict(context.Background(), [][]byte{[]byte("an image")}, client.Model("fashion"))
	switch {
	case errors.Is(err, client.ErrNotFound):
		fmt.Println("no such model")
	case errors.Is(err, client.ErrUnauthenticated), errors.Is(err, client.ErrPermissionDenied):
		fmt.Println("check the token")
	case errors.Is(err, client.ErrUnavailable):
		fmt.Println("server unavailable; try again later")
	}
	if e, ok := errors.AsType[*client.Error](err); ok {
		fmt.Println("code:", e.Code)
	}
	// Output:
	// server unavailable; try again later
	// code: Unavailable
}

// Upload a folder laid out Label/file, holding a fifth of it out as the
// test split, then freeze it in a snapshot and train on it.
func ExampleClient_UploadDir() {
	c, err := client.New("localhost:9090", client.WithToken(os.Getenv("SHOAL_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if _, err := c.Dataset().CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "pets"}); err != nil && !errors.Is(err, client.ErrAlreadyExists) {
		log.Fatal(err)
	}
	resp, err := c.UploadDir(ctx, "pets", "./photos",
		client.Split(datasetpb.Split_SPLIT_TRAIN), client.TestFraction(0.2),
		client.Progress(func(sent, total int64) { fmt.Fprintf(os.Stderr, "\r%d/%d", sent, total) }))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("added %d, duplicates %d, rejected %d\n", resp.GetCounts().GetAdded(), resp.GetCounts().GetDuplicates(), resp.GetCounts().GetRejected())
	for _, r := range resp.GetRejections() {
		fmt.Printf("refused %s: %s\n", r.GetPath(), r.GetReason())
	}
	snap, err := c.Dataset().CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: "pets"})
	if err != nil {
		log.Fatal(err)
	}
	job, err := c.Trainer().StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{
		Dataset: "pets", SnapshotVersion: snap.GetSnapshot().GetVersion(), Model: "pets", Epochs: 10,
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("job", job.GetJob().GetId())
}

// Follow a training job to its end; a restart of the server on the way
// does not interrupt the loop.
func ExampleClient_WatchJob() {
	c, err := client.New("localhost:9090", client.WithToken(os.Getenv("SHOAL_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for ev, err := range c.WatchJob(context.Background(), "JOB_ID") {
		if err != nil {
			log.Fatal(err)
		}
		switch {
		case ev.GetEpoch() != nil:
			e := ev.GetEpoch()
			fmt.Printf("epoch %d: train loss %.4f, val accuracy %.4f\n", e.GetEpoch(), e.GetTrainLoss(), e.GetValAccuracy())
		case ev.GetRegistered() != nil:
			fmt.Printf("registered %s v%d\n", ev.GetRegistered().GetModel(), ev.GetRegistered().GetVersion())
		case ev.GetState() != nil:
			fmt.Println("state:", ev.GetState().GetState(), ev.GetState().GetReason())
		}
	}
}

// The generated clients cover every other call, on the same connection
// and token: here the Registry's versions of a model.
func ExampleClient_Registry() {
	c, err := client.New("localhost:9090", client.WithToken(os.Getenv("SHOAL_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	resp, err := c.Registry().ListVersions(context.Background(), &registrypb.ListVersionsRequest{Model: "fashion"})
	if errors.Is(err, client.ErrNotFound) {
		log.Fatal("no model fashion yet")
	} else if err != nil {
		log.Fatal(err)
	}
	for _, v := range resp.GetVersions() {
		fmt.Printf("v%d %s aliases %v\n", v.GetVersion(), v.GetArchitecture(), v.GetAliases())
	}
}
