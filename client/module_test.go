package client_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// userProgram is code in another module, as a user writes it after
// `go get github.com/shoalml/shoal/client`: it may import the SDK and the
// generated packages, never internal/.
const userProgram = `package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"

	"github.com/shoalml/shoal/client"
)

func main() {
	c, err := client.New(os.Args[1], client.WithToken(os.Getenv("SHOAL_TOKEN")), client.WithTLS(client.TLS{CAFile: "ca.pem"}))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	resp, err := c.PredictFiles(ctx, os.Args[2:], client.Model("fashion"), client.TopK(3))
	if e, ok := errors.AsType[*client.Error](err); ok && errors.Is(err, client.ErrNotFound) {
		fmt.Println(e.Code, e.Message)
	}
	fmt.Println(resp.GetModel())
	job, err := c.Trainer().StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{Dataset: "d"}})
	if err != nil {
		panic(err)
	}
	for ev, err := range c.WatchJob(ctx, job.GetJob().GetId()) {
		fmt.Println(ev.GetSequence(), err)
	}
	_, _ = c.UploadDir(ctx, "d", ".", client.Progress(func(sent, total int64) {}))
}
`

// The SDK builds from another module that requires this one (replaced by
// this checkout, as a published version would be fetched), offline, from
// the module cache this module's own build filled.
func TestUsableFromAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module of its own")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ourMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go [0-9.]+$`).Find(ourMod)
	// What `go get` writes into a user's go.mod: this module, and the
	// versions of its dependencies it selects. With them listed, the build
	// needs no go.mod beyond the module cache's (GOPROXY=off); without,
	// Go would look up the go.mod files of old dependencies' dependencies.
	requires := regexp.MustCompile(`(?ms)^require \(.*?^\)$`).FindAll(ourMod, -1)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/shoaluser\n\n" + string(goLine) + "\n\n" +
			"require github.com/shoalml/shoal v0.0.0-00010101000000-000000000000\n\n" +
			string(bytes.Join(requires, []byte("\n\n"))) + "\n\n" +
			"replace github.com/shoalml/shoal => " + root + "\n",
		// The replaced module's dependencies are this module's, so its
		// checksums are the ones they need.
		"go.sum":  string(sum),
		"main.go": userProgram,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goBin, "build", "-o", filepath.Join(dir, "shoaluser"), ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build in a module that requires github.com/shoalml/shoal = %v:\n%s", err, out)
	}
}
