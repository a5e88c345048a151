package registry_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/services/registry"
)

var fish = []string{"Catfish", "Gold Fish", "Mudfish", "Mullet", "Tilapia"}

// TestVersionsFromTrainerAndUpload: a version as the Trainer registers it
// and one uploaded by hand both come back with their metadata, and the
// artifact downloads byte for byte and is in the blob store at the key the
// version gives.
func TestVersionsFromTrainerAndUpload(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{})
		ctx := t.Context()

		trained := spec("fish", fish...)
		trained.Metrics = &registrypb.Metrics{
			ValAccuracy: 0.91, ValLoss: 0.3, TestAccuracy: 0.9, TestLoss: 0.35, TestExamples: 10,
			PerClass:        []*registrypb.ClassMetrics{{Label: "Catfish", Precision: 1, Recall: 0.5, F1: 0.667, Support: 2}},
			ConfusionMatrix: &registrypb.ConfusionMatrix{Size: 5, Counts: make([]int64, 25)},
		}
		trained.HyperParameters = map[string]string{"learning_rate": "0.001", "epochs": "10"}
		trained.Lineage = &registrypb.Lineage{Dataset: "fish", SnapshotVersion: 3, JobId: "job-1"}
		trained.Architecture, trained.Creator = "small-cnn", "trainer"
		artifact := classifier(5, 1)
		trained.ArtifactSizeBytes, trained.ArtifactSha256 = int64(len(artifact)), sha(artifact)
		v1 := mustUpload(t, e.client, trained, artifact)
		if v1.GetVersion() != 1 || v1.GetArtifact().GetSha256() != sha(artifact) || v1.GetArtifact().GetSizeBytes() != int64(len(artifact)) {
			t.Errorf("CreateVersion() = %v; want version 1 with the artifact's sha256 and size", v1)
		}

		// A hand-made model: NHWC, softmax in the graph, other tensor names.
		own := onnxtest.Classifier{Input: "images", Output: "probs", Channels: 3, Height: 8, Width: 8, Classes: 5, NHWC: true, Softmax: true}.Bytes()
		up := spec("fish")
		up.InputSpec.Layout = registrypb.TensorLayout_TENSOR_LAYOUT_NHWC
		up.InputSpec.OutputIsProbabilities = true
		up.Lineage = &registrypb.Lineage{Parent: &registrypb.VersionRef{Model: "fish", Version: 1}}
		up.Creator, up.Architecture = "alice", "resnet18"
		v2 := mustUpload(t, e.client, up, own)
		if v2.GetVersion() != 2 || !slices.Equal(v2.GetLabels(), fish) {
			t.Errorf("CreateVersion(upload) = version %d labels %v; want 2 with the model's labels", v2.GetVersion(), v2.GetLabels())
		}
		if in := v2.GetInputSpec(); in.GetInputName() != "images" || in.GetOutputName() != "probs" || in.GetResizeMode() != registrypb.ResizeMode_RESIZE_MODE_STRETCH {
			t.Errorf("upload input spec = %v; want names resolved from the graph and resize mode made explicit", in)
		}

		got, err := e.client.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "fish", Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetVersion().GetMetrics(), trained.GetMetrics()) || !proto.Equal(got.GetVersion().GetLineage(), trained.GetLineage()) ||
			got.GetVersion().GetHyperParameters()["learning_rate"] != "0.001" || got.GetVersion().GetCreator() != "trainer" ||
			got.GetVersion().GetInputSpec().GetLayout() != registrypb.TensorLayout_TENSOR_LAYOUT_NCHW {
			t.Errorf("GetVersion(fish/1) = %v; want the trainer's metrics, lineage, hyper-parameters and NCHW", got.GetVersion())
		}
		got2, err := e.client.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "fish", Version: 2})
		if err != nil || got2.GetVersion().GetLineage().GetParent().GetVersion() != 1 || got2.GetVersion().GetCreator() != "alice" {
			t.Errorf("GetVersion(fish/2) = %v, %v; want the upload's lineage and creator", got2, err)
		}

		m, err := e.client.GetModel(ctx, &registrypb.GetModelRequest{Name: "fish"})
		if err != nil || m.GetModel().GetLatestVersion() != 2 || !slices.Equal(m.GetModel().GetLabels(), fish) {
			t.Errorf("GetModel(fish) = %v, %v; want latest 2 and the labels", m, err)
		}

		for _, tt := range []struct {
			version int64
			want    []byte
		}{{1, artifact}, {2, own}} {
			stream, err := e.client.DownloadArtifact(ctx, &registrypb.DownloadArtifactRequest{Model: "fish", Version: tt.version})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			first := true
			for {
				msg, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("DownloadArtifact(%d).Recv() = %v", tt.version, err)
				}
				if first && (msg.GetSizeBytes() != int64(len(tt.want)) || msg.GetSha256() != sha(tt.want)) {
					t.Errorf("first message size %d sha %s; want %d %s", msg.GetSizeBytes(), msg.GetSha256(), len(tt.want), sha(tt.want))
				}
				first = false
				buf.Write(msg.GetChunk())
			}
			if !bytes.Equal(buf.Bytes(), tt.want) {
				t.Errorf("DownloadArtifact(%d) = %d bytes; want the %d uploaded", tt.version, buf.Len(), len(tt.want))
			}

			v, err := e.client.GetVersion(ctx, &registrypb.GetVersionRequest{Model: "fish", Version: tt.version})
			if err != nil {
				t.Fatal(err)
			}
			key := v.GetVersion().GetArtifact().GetBlobKey()
			r, err := e.blobs.Get(ctx, key)
			if err != nil {
				t.Fatalf("blobs.Get(%q) = %v; want the artifact of version %d at its blob_key", key, err, tt.version)
			}
			stored, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(stored, tt.want) {
				t.Errorf("blobs.Get(%q) = %d bytes, %v; want the %d uploaded", key, len(stored), err, len(tt.want))
			}
		}
	})
}

// TestCreateVersionRejects: bad input answers with the right code and
// stores nothing.
func TestCreateVersionRejects(t *testing.T) {
	good := classifier(5, 1)
	tests := []struct {
		name     string
		spec     *registrypb.VersionSpec
		artifact []byte
		noSpec   bool
		code     codes.Code
		msg      string
	}{
		{"not onnx", spec("fish", fish...), []byte("<html>definitely not a model</html>"), false, codes.InvalidArgument, "not an ONNX model"},
		{"output size disagrees with labels", spec("fish", fish[:3]...), good, false, codes.InvalidArgument, "5 classes"},
		{"duplicate labels", spec("fish", "Catfish", "Mullet", "Catfish", "Tilapia", "Mudfish"), good, false, codes.InvalidArgument, "appears twice"},
		{"no labels", spec("fish"), good, false, codes.InvalidArgument, "labels are required"},
		{"channels disagree", func() *registrypb.VersionSpec {
			s := spec("fish", fish...)
			s.InputSpec.Channels, s.InputSpec.Mean, s.InputSpec.Std = 1, nil, nil
			return s
		}(), good, false, codes.InvalidArgument, "channels dimension is 3"},
		{"layout disagrees", func() *registrypb.VersionSpec {
			s := spec("fish", fish...)
			s.InputSpec.Layout = registrypb.TensorLayout_TENSOR_LAYOUT_NHWC
			return s
		}(), good, false, codes.InvalidArgument, "NHWC"},
		{"unknown input name", func() *registrypb.VersionSpec {
			s := spec("fish", fish...)
			s.InputSpec.InputName = "pixels"
			return s
		}(), good, false, codes.InvalidArgument, `no input named "pixels"`},
		{"bad model name", spec("Fish!", fish...), good, false, codes.InvalidArgument, "lower-case"},
		{"no input spec", &registrypb.VersionSpec{Model: "fish", Labels: fish}, good, false, codes.InvalidArgument, "inputSpec is required"},
		{"sha256 mismatch", func() *registrypb.VersionSpec {
			s := spec("fish", fish...)
			s.ArtifactSha256 = sha([]byte("something else"))
			return s
		}(), good, false, codes.InvalidArgument, "corrupted"},
		{"size mismatch", func() *registrypb.VersionSpec {
			s := spec("fish", fish...)
			s.ArtifactSizeBytes = int64(len(good)) + 1
			return s
		}(), good, false, codes.InvalidArgument, "artifactSizeBytes"},
		{"declared over the limit", func() *registrypb.VersionSpec {
			s := spec("fish", fish...)
			s.ArtifactSizeBytes = 1 << 40
			return s
		}(), good, false, codes.ResourceExhausted, "max-artifact-bytes"},
		{"empty artifact", spec("fish", fish...), nil, false, codes.InvalidArgument, "no artifact"},
		{"chunk before spec", nil, good, true, codes.InvalidArgument, "first message"},
	}
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var err error
				if tt.noSpec {
					err = sendRaw(t, e, &registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: tt.artifact}})
				} else {
					_, err = upload(t.Context(), e.client, tt.spec, tt.artifact, 100)
				}
				if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.msg) {
					t.Errorf("CreateVersion() = %v; want %v containing %q", err, tt.code, tt.msg)
				}
				e.assertEmpty(t)
			})
		}
	})
}

func sendRaw(t *testing.T, e *env, msgs ...*registrypb.CreateVersionRequest) error {
	stream, err := e.client.CreateVersion(t.Context())
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			break
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

// TestCreateVersionLimits: over the size limit, and a stream cut off
// midway, store nothing; labels must match an existing model's.
func TestCreateVersionLimits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{cfg: func(c *registry.Config) { c.MaxArtifactBytes = 4096 }})
		big := onnxtest.Classifier{Channels: 3, Height: 16, Width: 16, Classes: 5}.Bytes() // 15 KiB of weights
		_, err := upload(t.Context(), e.client, spec("fish", fish...), big, 1000)
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("CreateVersion(%d bytes, limit 4096) = %v; want ResourceExhausted", len(big), err)
		}
		<-e.streamsDone
		e.assertEmpty(t)

		// Cut off midway: the spec and part of the file, then the client
		// goes away.
		ctx, cancel := context.WithCancel(t.Context())
		stream, err := e.client.CreateVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		small := classifier(5, 1)
		if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Spec{Spec: spec("fish", fish...)}}); err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&registrypb.CreateVersionRequest{Payload: &registrypb.CreateVersionRequest_Chunk{Chunk: small[:len(small)/2]}}); err != nil {
			t.Fatal(err)
		}
		cancel()
		if method := <-e.streamsDone; !strings.HasSuffix(method, "/CreateVersion") {
			t.Fatalf("stream done = %s; want CreateVersion", method)
		}
		e.assertEmpty(t)

		// Labels of an existing model cannot change.
		mustUpload(t, e.client, spec("fish", fish...), small)
		other := slices.Clone(fish)
		other[0], other[1] = other[1], other[0]
		if _, err := upload(t.Context(), e.client, spec("fish", other...), small, 1000); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "differ") {
			t.Errorf("CreateVersion(reordered labels) = %v; want InvalidArgument 'differ'", err)
		}
		if n := e.count(t, "registry_versions"); n != 1 {
			t.Errorf("versions = %d; want 1", n)
		}
	})
}

// TestConcurrentCreateVersion: uploads racing on one (new) model get
// distinct, consecutive numbers.
func TestConcurrentCreateVersion(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{})
		const n = 6
		var wg sync.WaitGroup
		numbers := make([]int64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				v, err := upload(t.Context(), e.client, spec("fish", fish...), classifier(5, byte(i%2)), 500)
				numbers[i], errs[i] = v.GetVersion(), err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("upload #%d = %v", i, err)
			}
		}
		slices.Sort(numbers)
		if want := []int64{1, 2, 3, 4, 5, 6}; !slices.Equal(numbers, want) {
			t.Errorf("version numbers = %v; want %v", numbers, want)
		}
		// Two distinct files among six versions: two blobs.
		if keys := e.blobKeys(t); len(keys) != 2 {
			t.Errorf("blobs = %v; want 2 (content-addressed)", keys)
		}
	})
}

// TestUploadWithoutRuntime: without ONNX Runtime the registry still starts
// and serves, but refuses uploads, saying how to install it.
func TestUploadWithoutRuntime(t *testing.T) {
	cfg := dbtest.Config(t, db.SQLite)
	e := newEnv(t, cfg, envOptions{ort: onnxrt.Config{Library: filepath.Join(t.TempDir(), "missing.so")}})
	_, err := upload(t.Context(), e.client, spec("fish", fish...), classifier(5, 1), 1000)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "setup-onnxruntime.sh") {
		t.Errorf("CreateVersion() = %v; want FailedPrecondition naming the setup script", err)
	}
	if _, err := e.client.ListModels(t.Context(), &registrypb.ListModelsRequest{}); err != nil {
		t.Errorf("ListModels() = %v; want the rest of the service up", err)
	}
	e.assertEmpty(t)
}

// TestDeleteRacesUploadOfSameBytes: deleting the last version that uses
// some bytes while the same bytes are uploaded again never leaves the new
// version without its blob.
func TestDeleteRacesUploadOfSameBytes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{})
		artifact := classifier(5, 7)
		prev := mustUpload(t, e.client, spec("fish", fish...), artifact).GetVersion()
		for range 5 {
			var wg sync.WaitGroup
			var next int64
			wg.Go(func() {
				if _, err := e.client.DeleteVersion(t.Context(), &registrypb.DeleteVersionRequest{Model: "fish", Version: prev}); err != nil {
					t.Errorf("DeleteVersion(%d) = %v", prev, err)
				}
			})
			wg.Go(func() {
				v, err := upload(t.Context(), e.client, spec("fish"), artifact, 1000)
				if err != nil {
					t.Errorf("CreateVersion() = %v", err)
				}
				next = v.GetVersion()
			})
			wg.Wait()
			if keys := e.blobKeys(t); len(keys) != 1 {
				t.Fatalf("after deleting %d while uploading %d: blobs = %v; want the one artifact", prev, next, keys)
			}
			prev = next
		}
	})
}
