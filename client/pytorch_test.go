//go:build !race

// Imported models train on GoMLX's pure-Go backend, whose kernels trip
// checkptr under -race: scripts/test.sh runs this file without it.

package client_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"

	"github.com/shoalml/shoal/client"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/ml/mltest"
)

// TestFineTuningAPyTorchExport takes the path of a user whose model was
// trained elsewhere: a ResNet-18 exported by torch.onnx.export (opset 13,
// a dynamic batch) is uploaded to the Registry and fine-tuned on a
// dataset with other labels; the job completes, and the version it
// registers answers Predict. An export the import cannot train (SqueezeNet,
// whose classifier is a convolution) is refused by StartTraining itself.
func TestFineTuningAPyTorchExport(t *testing.T) {
	resnet := mltest.FindPyTorchExport(t, "resnet18-opset13-dyn-logits")
	squeezenet := mltest.FindPyTorchExport(t, "squeezenet-opset13-dyn-logits")
	s := serve(t, defaults(t))
	c := dial(t, s.addr, client.WithToken(s.admin))
	ctx := t.Context()

	if _, err := c.Dataset().CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "photos"}); err != nil {
		t.Fatal(err)
	}
	dir, _ := shapesTree(t, map[string]int{"train": 8, "test": 2})
	if _, err := c.UploadDir(ctx, "photos", dir); err != nil {
		t.Fatalf("UploadDir(photos) = %v", err)
	}
	upload := func(model string, e mltest.PyTorchExport) *registrypb.VersionRef {
		t.Helper()
		stream, err := c.Registry().CreateVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := range e.Classes {
			names = append(names, "species-"+string(rune('a'+i)))
		}
		spec := &registrypb.VersionSpec{Model: model, Labels: names, Architecture: e.Net, InputSpec: &registrypb.InputSpec{
			Channels: int32(e.Channels), Height: int32(e.Size), Width: int32(e.Size), Mean: e.Mean, Std: e.Std,
			ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW,
			InputName: e.Input, OutputName: e.Output, OutputIsProbabilities: e.Softmax,
		}}
		if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: spec}}); err != nil {
			t.Fatal(err)
		}
		data := e.Read(t)
		for len(data) > 0 {
			n := min(len(data), 1<<20)
			if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: data[:n]}}); err != nil {
				t.Fatal(err)
			}
			data = data[n:]
		}
		resp, err := stream.CloseAndRecv()
		if err != nil {
			t.Fatalf("CreateVersion(%s, the export %s) = %v", model, e.Name, err)
		}
		v := resp.GetVersion()
		return &registrypb.VersionRef{Model: v.GetModel(), Version: v.GetVersion()}
	}
	fish := upload("fish", resnet)
	squeeze := upload("squeeze", squeezenet)

	// Refused before a job exists, with the reason.
	_, err := c.Trainer().StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{Dataset: "photos", BaseVersion: squeeze}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no classification layer") {
		t.Errorf("StartTraining(base: SqueezeNet export) = %v; want FAILED_PRECONDITION naming the missing classification layer", err)
	}
	jobs, err := c.Trainer().ListJobs(ctx, &trainerpb.ListJobsRequest{})
	if err != nil || len(jobs.GetJobs()) != 0 {
		t.Errorf("ListJobs() = %v, %v; want no job after the refusal", jobs.GetJobs(), err)
	}

	started, err := c.Trainer().StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{
		Dataset: "photos", Model: "photos", BaseVersion: fish, Epochs: 2, BatchSize: 8, LearningRate: 1e-4, Seed: 1,
		Promotion: trainerpb.PromotionPolicy_PROMOTION_POLICY_NEVER,
	}})
	if err != nil {
		t.Fatalf("StartTraining(base: ResNet-18 export) = %v", err)
	}
	id := started.GetJob().GetId()
	var log []string
	var last *trainerpb.WatchJobResponse
	for ev, err := range c.WatchJob(ctx, id) {
		if err != nil {
			t.Fatalf("WatchJob(%s) = %v", id, err)
		}
		if l := ev.GetLog(); l != nil {
			log = append(log, l.GetMessage())
		}
		last = ev
	}
	if st := last.GetState(); st.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %s ended %v (%q); want SUCCEEDED; log:\n%s", id, st.GetState(), st.GetReason(), strings.Join(log, "\n"))
	}
	if l := strings.Join(log, "\n"); !strings.Contains(l, "new head") || !strings.Contains(l, "Identity") {
		t.Errorf("job log does not mention the new head and the Identity nodes rewritten:\n%s", l)
	}
	job, err := c.Trainer().GetJob(ctx, &trainerpb.GetJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	ref := job.GetJob().GetResult()
	v, err := c.Registry().GetVersion(ctx, &registrypb.GetVersionRequest{Model: ref.GetModel(), Version: ref.GetVersion()})
	if err != nil {
		t.Fatal(err)
	}
	if p := v.GetVersion().GetLineage().GetParent(); p.GetModel() != "fish" || p.GetVersion() != fish.GetVersion() || !slices.Equal(v.GetVersion().GetLabels(), sortedLabels()) {
		t.Errorf("registered version = %v; want the dataset's labels, fine-tuned from fish version %d", v.GetVersion(), fish.GetVersion())
	}

	images := [][]byte{imagingtest.PNG(28, 28, 901), imagingtest.PNG(40, 30, 902)}
	resp, err := c.Predict(ctx, images, client.Model(ref.GetModel()), client.Version(ref.GetVersion()), client.TopK(3))
	if err != nil {
		t.Fatalf("Predict(version %d) = %v", ref.GetVersion(), err)
	}
	for i, r := range resp.GetResults() {
		sum := 0.0
		for _, l := range r.GetLabels() {
			sum += float64(l.GetProbability())
			if !slices.Contains(labels, l.GetLabel()) {
				t.Errorf("image %d: label %q; want one of %v", i, l.GetLabel(), labels)
			}
		}
		if len(r.GetLabels()) != 3 || math.Abs(sum-1) > 1e-4 {
			t.Errorf("image %d: %v; want the 3 labels, probabilities summing to 1", i, r.GetLabels())
		}
	}
	if resp.GetVersion() != ref.GetVersion() || len(resp.GetResults()) != len(images) {
		t.Errorf("Predict() = version %d, %d results; want version %d, %d", resp.GetVersion(), len(resp.GetResults()), ref.GetVersion(), len(images))
	}
}

// sortedLabels are the shapes tree's labels as a dataset orders them.
func sortedLabels() []string {
	s := slices.Clone(labels)
	slices.Sort(s)
	return s
}
