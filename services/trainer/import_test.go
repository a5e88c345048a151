package trainer_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/ml/mltest"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// serveAccuracy runs a registered version's ONNX file in ONNX Runtime on the
// dataset's test images, preprocessed by its input spec as Inference does,
// and returns the top-1 accuracy.
func serveAccuracy(t *testing.T, e *env, ds *fakeDataset, ref *registrypb.VersionRef) float64 {
	t.Helper()
	v := e.version(t, ref)
	e.registry.mu.Lock()
	data := e.registry.artifacts[v.GetVersion()-1]
	e.registry.mu.Unlock()
	spec, err := imaging.SpecFromProto(v.GetInputSpec())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := onnxrt.Load(onnxrt.Config{})
	if err != nil {
		t.Fatal(err)
	}
	in := v.GetInputSpec()
	k := len(v.GetLabels())
	c := onnxrt.Classifier{Input: in.GetInputName(), Output: in.GetOutputName(), Classes: k,
		Image: onnxrt.Image{Channels: spec.Channels, Height: spec.Height, Width: spec.Width}}
	sess, err := rt.NewSession(data, c, []int{1}, onnxrt.SessionOptions{})
	if err != nil {
		t.Fatalf("loading version %d in ONNX Runtime: %v", ref.GetVersion(), err)
	}
	defer sess.Close()
	right, n := 0, 0
	for _, img := range ds.images {
		if img.split != datasetpb.Split_SPLIT_TEST {
			continue
		}
		decoded, _, err := imaging.Decode(img.content, imaging.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if err := imaging.Preprocess(decoded, spec, sess.Input()); err != nil {
			t.Fatal(err)
		}
		out, err := sess.Run(1)
		if err != nil {
			t.Fatalf("running version %d: %v", ref.GetVersion(), err)
		}
		best := 0
		for i := range out {
			if out[i] > out[best] {
				best = i
			}
		}
		n++
		if v.GetLabels()[best] == img.label {
			right++
		}
	}
	return float64(right) / float64(n)
}

// TestFineTuningImportedONNX fine-tunes ONNX classifiers uploaded by a user
// (built as PyTorch exports them), with the same labels and with a new
// head, and refuses the ones it cannot import.
func TestFineTuningImportedONNX(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	cfg := dbtest.Config(t, db.SQLite)
	e := newEnv(t, cfg, envOptions{})
	labels := []string{"bottom", "left", "top"} // the synthetic dataset's, sorted.
	in := &registrypb.InputSpec{
		Channels: 1, Height: 16, Width: 16, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH,
		Mean: []float32{0.3}, Std: []float32{0.3}, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW,
		InputName: "input", OutputName: "output", OutputIsProbabilities: true,
	}
	classifier := mltest.Classifier{Channels: 1, Size: 16, Classes: 3, Input: "input", Output: "output", Softmax: true, Seed: 4}
	random, err := classifier.Build()
	if err != nil {
		t.Fatal(err)
	}
	untrained := e.registry.upload("tiny", labels, in, "tiny-cnn", random)

	// Fine-tuning the uploaded (untrained) classifier: the job trains the
	// imported graph and registers it with the base's input spec.
	job, evs := runJob(t, e, &trainerpb.JobSpec{Dataset: "shapes", Model: "tiny", Epochs: 4, BatchSize: 8, LearningRate: 1e-2, Seed: 1, BaseVersion: untrained})
	if l := logs(evs); !strings.Contains(l, "imported from ONNX") || !strings.Contains(l, "Gemm") {
		t.Errorf("job log does not mention the import and its head:\n%s", l)
	}
	trained := e.version(t, job.GetResult())
	if p := trained.GetLineage().GetParent(); p.GetModel() != "tiny" || p.GetVersion() != untrained.GetVersion() {
		t.Errorf("lineage parent = %v; want %v", p, untrained)
	}
	if got := trained.GetInputSpec(); got.GetInputName() != "input" || got.GetOutputName() != "output" || !slices.Equal(got.GetMean(), in.Mean) ||
		!slices.Equal(got.GetStd(), in.Std) || got.GetHeight() != 16 || !got.GetOutputIsProbabilities() || trained.GetArchitecture() != "tiny-cnn" {
		t.Errorf("fine-tuned version = %v; want the base's input spec and architecture", trained)
	}
	acc := serveAccuracy(t, e, e.dataset, job.GetResult())
	t.Logf("fine-tuned upload served by ONNX Runtime: test accuracy %.2f", acc)
	if acc < 0.75 {
		t.Errorf("fine-tuned version served by ONNX Runtime: test accuracy %.2f; want >= 0.75", acc)
	}

	// A model trained elsewhere (the file just trained, uploaded by a
	// user): at a rate too small to learn, the first epoch starts where it
	// ended; the untrained upload stays near chance.
	e.registry.mu.Lock()
	pretrained := e.registry.artifacts[trained.GetVersion()-1]
	e.registry.mu.Unlock()
	uploaded := e.registry.upload("pretrained", labels, in, "", pretrained)
	slow := func(ref *registrypb.VersionRef) float64 {
		job, _ := runJob(t, e, &trainerpb.JobSpec{Dataset: "shapes", Model: "tuned", Epochs: 1, BatchSize: 8, LearningRate: 1e-7, Seed: 2, BaseVersion: ref})
		return job.GetEpochs()[0].GetValAccuracy()
	}
	tuned, fresh := slow(uploaded), slow(untrained)
	t.Logf("first-epoch validation accuracy at rate 1e-7: from the trained upload %.2f, from the untrained one %.2f", tuned, fresh)
	if !(tuned >= 0.75 && tuned >= fresh+0.3) {
		t.Errorf("first-epoch validation accuracy: from the trained upload %.2f, from the untrained one %.2f; want >= 0.75 and far above", tuned, fresh)
	}

	// Other labels: a new head in place of the Gemm. The first service's
	// workers stop first: they share the database and do not know "two".
	e.stop()
	two := &fakeDataset{name: "two", images: synthetic([]string{"left", "top"}, 16, 4)}
	e2 := newEnv(t, cfg, envOptions{dataset: two, reg: e.registry, blobs: e.blobs})
	job, evs = runJob(t, e2, &trainerpb.JobSpec{Dataset: "two", Epochs: 5, BatchSize: 8, LearningRate: 1e-2, Seed: 1, BaseVersion: uploaded})
	if l := logs(evs); !strings.Contains(l, "new head") {
		t.Errorf("job log does not mention the new head:\n%s", l)
	}
	if v := e.version(t, job.GetResult()); len(v.GetLabels()) != 2 || v.GetArchitecture() != "onnx" {
		t.Errorf("fine-tuned version = %v; want 2 labels, architecture onnx", v)
	}
	acc = serveAccuracy(t, e, two, job.GetResult())
	t.Logf("new-head version served by ONNX Runtime: test accuracy %.2f", acc)
	if acc < 0.75 {
		t.Errorf("new-head version served by ONNX Runtime: test accuracy %.2f; want >= 0.75", acc)
	}

	// Uploads that cannot be fine-tuned are refused before a job is queued.
	bad := func(c mltest.Classifier) []byte {
		data, err := c.Build()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	leaky, floor, sigmoid := classifier, classifier, classifier
	leaky.Activation = "LeakyRelu"
	floor.Activation = "Floor"
	sigmoid.Softmax, sigmoid.Tail = false, "Sigmoid"
	for _, tc := range []struct {
		name string
		ref  *registrypb.VersionRef
		spec *trainerpb.JobSpec
		want codes.Code
		msg  string
	}{
		{name: "op the importer lacks", ref: e.registry.upload("leaky", labels, in, "", bad(leaky)), want: codes.FailedPrecondition, msg: "LeakyRelu"},
		{name: "op without a gradient", ref: e.registry.upload("floor", labels, in, "", bad(floor)), want: codes.FailedPrecondition, msg: "no gradient for the operator Floor"},
		{name: "no recognisable head", ref: e.registry.upload("sigmoid", labels, in, "", bad(sigmoid)), want: codes.FailedPrecondition, msg: "no classification layer"},
		{name: "not ONNX", ref: e.registry.upload("junk", labels, in, "", []byte("not a model")), want: codes.FailedPrecondition, msg: "not an ONNX model"},
		{name: "labels differ from the head", ref: e.registry.upload("mislabelled", []string{"a", "b"}, in, "", random), want: codes.FailedPrecondition, msg: "2 labels"},
		{name: "other architecture", ref: uploaded, spec: &trainerpb.JobSpec{Architecture: "small-cnn"}, want: codes.InvalidArgument, msg: "imported ONNX model"},
		{name: "other input size", ref: uploaded, spec: &trainerpb.JobSpec{ImageSize: 28}, want: codes.InvalidArgument, msg: "spec.imageSize"},
	} {
		spec := tc.spec
		if spec == nil {
			spec = &trainerpb.JobSpec{}
		}
		spec.Dataset, spec.BaseVersion = "shapes", tc.ref
		_, err := e.client.StartTraining(t.Context(), &trainerpb.StartTrainingRequest{Spec: spec})
		wantCode(t, "StartTraining("+tc.name+")", err, tc.want)
		if err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("StartTraining(%s) = %v; want a message naming %q", tc.name, err, tc.msg)
		}
	}
}

// TestStartTrainingRefusesPyTorchExports: exports of PyTorch the import
// cannot train are refused by StartTraining, with the reason, and no job
// is queued: SqueezeNet, whose classifier is a convolution, and a network
// with LeakyReLU, an operator onnx-gomlx does not convert.
func TestStartTrainingRefusesPyTorchExports(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{})
	for _, tc := range []struct{ export, msg string }{
		{"squeezenet-opset13-dyn-logits", `no classification layer found: the output "output" comes from a Flatten node`},
		{"leakycnn-opset13-dyn-logits", `unimplemented ONNX op "LeakyRelu"`},
	} {
		x := mltest.FindPyTorchExport(t, tc.export)
		in := &registrypb.InputSpec{
			Channels: int32(x.Channels), Height: int32(x.Size), Width: int32(x.Size), Mean: x.Mean, Std: x.Std,
			ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW,
			InputName: x.Input, OutputName: x.Output, OutputIsProbabilities: x.Softmax,
		}
		labels := []string{"a", "b", "c", "d", "e"}[:x.Classes]
		ref := e.registry.upload(x.Net, labels, in, x.Net, x.Read(t))
		_, err := e.client.StartTraining(t.Context(), &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{Dataset: "shapes", BaseVersion: ref}})
		wantCode(t, "StartTraining(base: "+tc.export+")", err, codes.FailedPrecondition)
		if err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("StartTraining(base: %s) = %v; want a message naming %q", tc.export, err, tc.msg)
		}
	}
	jobs, err := e.client.ListJobs(t.Context(), &trainerpb.ListJobsRequest{})
	if err != nil || len(jobs.GetJobs()) != 0 {
		t.Errorf("ListJobs() = %v, %v; want no job", jobs.GetJobs(), err)
	}
}
