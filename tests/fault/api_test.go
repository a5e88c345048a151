package fault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
)

// importLocal imports a server folder into dataset, calling progress (if
// set) with every progress event until it returns true, which stops
// listening (the import goes on, or dies with the process).
func importLocal(ctx context.Context, c datasetpb.DatasetServiceClient, dataset, dir string, progress func(*datasetpb.ImportProgress) bool) (*datasetpb.ImportCounts, error) {
	stream, err := c.ImportImages(ctx, &datasetpb.ImportImagesRequest{
		Dataset: dataset,
		Source:  &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: dir}},
	})
	if err != nil {
		return nil, err
	}
	return importEvents(stream.Recv, progress)
}

// importEvents reads an import's events until Done or an error.
func importEvents(recv func() (*datasetpb.ImportImagesResponse, error), progress func(*datasetpb.ImportProgress) bool) (*datasetpb.ImportCounts, error) {
	for {
		ev, err := recv()
		if err != nil {
			return nil, err
		}
		switch e := ev.GetEvent().(type) {
		case *datasetpb.ImportImagesResponse_Done:
			return e.Done, nil
		case *datasetpb.ImportImagesResponse_Progress:
			if progress != nil && progress(e.Progress) {
				return e.Progress.GetCounts(), nil
			}
		}
	}
}

// createDataset creates a dataset, accepting one that exists.
func createDataset(ctx context.Context, t *testing.T, c datasetpb.DatasetServiceClient, name string) {
	t.Helper()
	_, err := c.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: name})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreateDataset(%s) = %v", name, err)
	}
}

// importDemo creates dataset name, imports the demo tree into it and takes
// snapshot 1.
func importDemo(ctx context.Context, t *testing.T, s *shoal, name string) {
	t.Helper()
	createDataset(ctx, t, s.Dataset, name)
	counts, err := importLocal(ctx, s.Dataset, name, demoTree(t), nil)
	if err != nil {
		t.Fatalf("ImportImages(%s) = %v", name, err)
	}
	if counts.GetAdded()+counts.GetDuplicates() != demoImages {
		t.Fatalf("ImportImages(%s) = %v; want %d images added or already there", name, counts, demoImages)
	}
	if _, err := s.Dataset.CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: name}); err != nil {
		t.Fatalf("CreateSnapshot(%s) = %v", name, err)
	}
}

// trainSpec is a short, seeded small-cnn job on the ONNX Runtime backend.
func trainSpec(dataset, model string, epochs int32) *trainerpb.JobSpec {
	return &trainerpb.JobSpec{
		Dataset: dataset, SnapshotVersion: 1, Model: model, Architecture: "small-cnn",
		Epochs: epochs, BatchSize: 32, Seed: 11, Backend: "onnx",
		Promotion: trainerpb.PromotionPolicy_PROMOTION_POLICY_NEVER,
	}
}

func startJob(ctx context.Context, t *testing.T, c trainerpb.TrainerServiceClient, spec *trainerpb.JobSpec) string {
	t.Helper()
	resp, err := c.StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: proto.CloneOf(spec)})
	if err != nil {
		t.Fatalf("StartTraining(%s) = %v", spec.GetModel(), err)
	}
	return resp.GetJob().GetId()
}

func finalJobState(s trainerpb.JobState) bool {
	switch s {
	case trainerpb.JobState_JOB_STATE_SUCCEEDED, trainerpb.JobState_JOB_STATE_FAILED, trainerpb.JobState_JOB_STATE_CANCELLED:
		return true
	}
	return false
}

// watchJob follows a job's events from after (0: all) and calls fn with
// each; it returns when fn returns true or the job reaches a final state,
// with the sequence of the last event seen.
func watchJob(ctx context.Context, c trainerpb.TrainerServiceClient, id string, after int64, fn func(*trainerpb.WatchJobResponse) bool) (int64, error) {
	stream, err := c.WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: id, AfterSequence: after})
	if err != nil {
		return after, err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return after, nil
		}
		if err != nil {
			return after, err
		}
		after = ev.GetSequence()
		if fn != nil && fn(ev) {
			return after, nil
		}
		if st := ev.GetState(); st != nil && finalJobState(st.GetState()) {
			return after, nil
		}
	}
}

// waitJob waits for a job's final state and returns the job.
func waitJob(ctx context.Context, t *testing.T, c trainerpb.TrainerServiceClient, id string) *trainerpb.Job {
	t.Helper()
	if _, err := watchJob(ctx, c, id, 0, nil); err != nil {
		t.Fatalf("WatchJob(%s) = %v", id, err)
	}
	resp, err := c.GetJob(ctx, &trainerpb.GetJobRequest{JobId: id})
	if err != nil {
		t.Fatalf("GetJob(%s) = %v", id, err)
	}
	return resp.GetJob()
}

// sameMetrics compares the test metrics of two runs exactly: training is
// deterministic, so a resumed run must end where an uninterrupted one does.
func sameMetrics(a, b *registrypb.Metrics) error {
	switch {
	case a.GetTestAccuracy() != b.GetTestAccuracy():
		return fmt.Errorf("test accuracy %v, uninterrupted %v", a.GetTestAccuracy(), b.GetTestAccuracy())
	case a.GetTestLoss() != b.GetTestLoss():
		return fmt.Errorf("test loss %v, uninterrupted %v", a.GetTestLoss(), b.GetTestLoss())
	case !slices.Equal(a.GetConfusionMatrix().GetCounts(), b.GetConfusionMatrix().GetCounts()):
		return fmt.Errorf("confusion matrix %v, uninterrupted %v", a.GetConfusionMatrix().GetCounts(), b.GetConfusionMatrix().GetCounts())
	case a.GetValAccuracy() != b.GetValAccuracy() || a.GetValLoss() != b.GetValLoss():
		return fmt.Errorf("validation %v/%v, uninterrupted %v/%v", a.GetValAccuracy(), a.GetValLoss(), b.GetValAccuracy(), b.GetValLoss())
	}
	return nil
}

// uploadVersion streams an ONNX artifact to CreateVersion in chunks;
// afterChunk (if set) runs after each chunk is sent, with its index and
// whether it was the last.
func uploadVersion(ctx context.Context, c registrypb.RegistryServiceClient, spec *registrypb.VersionSpec, artifact []byte, chunk int, afterChunk func(i int, last bool)) (*registrypb.Version, error) {
	stream, err := c.CreateVersion(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: spec}}); err != nil {
		_, err = stream.CloseAndRecv()
		return nil, err
	}
	for i, r := 0, bytes.NewReader(artifact); r.Len() > 0; i++ {
		b := make([]byte, min(chunk, r.Len()))
		_, _ = io.ReadFull(r, b)
		if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: b}}); err != nil {
			break // the server answered early; CloseAndRecv has its status
		}
		if afterChunk != nil {
			afterChunk(i, r.Len() == 0)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	return resp.GetVersion(), nil
}

// predictFile classifies one image through gRPC Predict with the default
// model.
func predictFile(ctx context.Context, c inferencepb.InferenceServiceClient, image []byte) (*inferencepb.PredictResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Predict(ctx, &inferencepb.PredictRequest{Images: [][]byte{image}, TopK: 1})
}

// demoSample reads the first image of a test label of the demo tree.
func demoSample(t *testing.T, label string) []byte {
	t.Helper()
	dir := filepath.Join(demoTree(t), "test", label)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no sample in %s: %v", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// codeAndMessage is a status error's code and message, for checks and logs.
func codeAndMessage(err error) (codes.Code, string) {
	st := status.Convert(err)
	return st.Code(), st.Message()
}

// classifierLabels are the labels of the uploaded test classifiers.
var classifierLabels = []string{"a", "b", "c", "d", "e"}

// classifier is an ONNX model (Flatten + Gemm) for size×size RGB images;
// seed varies its weights and so its bytes (224 makes a 3 MB file).
func classifier(size int64, seed byte) ([]byte, *registrypb.VersionSpec) {
	data := onnxtest.Classifier{Channels: 3, Height: size, Width: size, Classes: int64(len(classifierLabels)), WeightsFromSeed: seed}.Bytes()
	sum := sha256.Sum256(data)
	return data, &registrypb.VersionSpec{
		Labels:            classifierLabels,
		InputSpec:         &registrypb.InputSpec{Channels: 3, Height: int32(size), Width: int32(size)},
		ArtifactSizeBytes: int64(len(data)),
		ArtifactSha256:    hex.EncodeToString(sum[:]),
		Creator:           "fault test",
	}
}
