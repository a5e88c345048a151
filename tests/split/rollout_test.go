package split

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/cli"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// TestSplitRollout promotes versions with `shoal models promote --wait`
// through the gateway of the compose file's topology: it returns only once
// both inference replicas serve the version (each is asked directly, on its
// own gRPC port, right after), fails naming both and their load error when
// neither can load one, and stops waiting for a replica killed mid-way once
// its lease lapses.
func TestSplitRollout(t *testing.T) {
	needSplit(t)
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	top := startTopology(ctx, t)
	model := "fashion" // the replicas' default model: they follow its production alias
	var versions []*registrypb.Version
	for seed := range byte(4) {
		versions = append(versions, top.uploadClassifier(ctx, t, model, seed))
	}
	replicas := top.procs["inference"]
	if len(replicas) != 2 {
		t.Fatalf("the compose file runs %d inference replicas; the test wants 2", len(replicas))
	}

	for _, v := range []int64{1, 2} {
		out := top.mustCLI(ctx, "models", "promote", model, fmt.Sprint(v), "--wait", "--timeout", "2m")
		for _, p := range replicas {
			if m := p.served(ctx, t, model); m != v {
				t.Fatalf("%s serves %s v%d right after promote --wait returned:\n%s\nwant v%d", p.name, model, m, out, v)
			}
			if want := replicaLine(p.pid(), fmt.Sprintf("serving version %d", v)); !want.MatchString(out) {
				t.Errorf("shoal models promote %s %d --wait printed:\n%s\nwant %q for %s", model, v, out, want, p.name)
			}
		}
		if !strings.Contains(out, "served by every replica that follows it (2 replicas)") {
			t.Errorf("shoal models promote %s %d --wait printed:\n%s\nwant both replicas counted", model, v, out)
		}
	}

	// Version 3's artifact is taken from the bucket: neither replica can
	// load it, and the command says so for each, with the reason.
	s3 := top.s3
	store, err := blob.NewS3(ctx, blob.S3Config{Endpoint: s3.endpoint, Bucket: top.bucket, AccessKey: s3.accessKey, SecretKey: s3.secretKey,
		Region: "us-east-1", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, versions[2].GetArtifact().GetBlobKey()); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := top.cli(ctx, "models", "promote", model, "3", "--wait", "--timeout", "2m")
	if code := exitCode(err); code != cli.ExitConflict || !strings.Contains(errOut, "2 of 2 replicas did not load version 3") ||
		strings.Count(errOut, "artifact is missing") != 2 || strings.Count(errOut, "still serving version 2") != 2 {
		t.Errorf("shoal models promote %s 3 --wait with its artifact gone = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d naming both replicas and why",
			model, code, out, errOut, cli.ExitConflict)
	}
	for _, p := range replicas {
		if m := p.served(ctx, t, model); m != 2 {
			t.Errorf("%s serves %s v%d after version 3 failed to load; want v2", p.name, model, m)
		}
	}

	// A replica killed (no goodbye) holds the rollout up until its lease
	// lapses, then drops out of it.
	victim, survivor := replicas[0], replicas[1]
	victim.kill()
	killed := time.Now()
	out = top.mustCLI(ctx, "models", "promote", model, "4", "--wait", "--timeout", "2m")
	if m := survivor.served(ctx, t, model); m != 4 {
		t.Fatalf("%s serves %s v%d right after promote --wait returned:\n%s\nwant v4", survivor.name, model, m, out)
	}
	if want := replicaLine(victim.pid(), "gone"); !want.MatchString(out) || !strings.Contains(out, "(1 replica)") {
		t.Errorf("shoal models promote %s 4 --wait after killing %s printed:\n%s\nwant %q and the survivor alone counted", model, victim.name, out, want)
	}
	t.Logf("promote --wait returned %.1fs after %s was killed", time.Since(killed).Seconds(), victim.name)
	top.stop()
}

// uploadClassifier registers a small ONNX classifier for the demo tree's
// 28×28 grayscale images as the next version of model, through the
// gateway.
func (top *topology) uploadClassifier(ctx context.Context, t *testing.T, model string, seed byte) *registrypb.Version {
	t.Helper()
	stream, err := registrypb.NewRegistryServiceClient(top.conn).CreateVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	labels := []string{"T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	_ = stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: &registrypb.VersionSpec{
		Model: model, Labels: labels, InputSpec: &registrypb.InputSpec{Channels: 1, Height: 28, Width: 28},
	}}})
	_ = stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{
		Chunk: onnxtest.Classifier{Channels: 1, Height: 28, Width: 28, Classes: int64(len(labels)), WeightsFromSeed: seed}.Bytes()}})
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("CreateVersion(%s) through the gateway = %v", model, err)
	}
	return resp.GetVersion()
}

// served is the version replica p serves for model's production alias,
// asked of p itself on its own gRPC port (0: none).
func (p *proc) served(ctx context.Context, t *testing.T, model string) int64 {
	t.Helper()
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := inferencepb.NewInferenceServiceClient(conn).ListLoadedModels(ctx, &inferencepb.ListLoadedModelsRequest{})
	if err != nil {
		t.Fatalf("ListLoadedModels on %s = %v", p.name, err)
	}
	for _, m := range resp.GetModels() {
		if m.GetModel() == model && m.GetReady() && slices.Contains(m.GetAliases(), "production") {
			return m.GetVersion()
		}
	}
	return 0
}

// replicaLine matches a rollout's line about the replica of process pid:
// its default name is the host name, the process id and four random
// characters.
func replicaLine(pid int, rest string) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`-%d-[A-Z2-7]{4}: %s`, pid, regexp.QuoteMeta(rest)))
}

// pid is the process id of p's current process.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// exitCode is a finished command's exit code (0 for a nil error, -1 when it
// did not run).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
