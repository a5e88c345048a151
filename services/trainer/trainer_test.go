package trainer_test

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/ml"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

func TestStartTrainingRejectsBadSpecs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		e := newEnv(t, cfg, envOptions{noRun: true})
		oneLabel := &fakeDataset{name: "mono", images: synthetic([]string{"only"}, 4, 2)}
		e1 := newEnv(t, cfg, envOptions{noRun: true, dataset: oneLabel})
		noTrain := &fakeDataset{name: "gap", images: append(synthetic([]string{"a", "b"}, 4, 2), fakeImage{split: datasetpb.Split_SPLIT_TEST, label: "c"})}
		e2 := newEnv(t, cfg, envOptions{noRun: true, dataset: noTrain})
		for _, tc := range []struct {
			name string
			env  *env
			spec *trainerpb.JobSpec
			want codes.Code
		}{
			{"no spec", e, nil, codes.InvalidArgument},
			{"no dataset", e, &trainerpb.JobSpec{}, codes.InvalidArgument},
			{"unknown architecture", e, &trainerpb.JobSpec{Dataset: "shapes", Architecture: "vgg99"}, codes.InvalidArgument},
			{"negative epochs", e, &trainerpb.JobSpec{Dataset: "shapes", Epochs: -1}, codes.InvalidArgument},
			{"negative batch", e, &trainerpb.JobSpec{Dataset: "shapes", BatchSize: -8}, codes.InvalidArgument},
			{"negative learning rate", e, &trainerpb.JobSpec{Dataset: "shapes", LearningRate: -0.1}, codes.InvalidArgument},
			{"image too small", e, &trainerpb.JobSpec{Dataset: "shapes", ImageSize: 4}, codes.InvalidArgument},
			{"image too large", e, &trainerpb.JobSpec{Dataset: "shapes", ImageSize: 4096}, codes.InvalidArgument},
			{"two channels", e, &trainerpb.JobSpec{Dataset: "shapes", Channels: 2}, codes.InvalidArgument},
			{"validation fraction", e, &trainerpb.JobSpec{Dataset: "shapes", ValidationFraction: 0.9}, codes.InvalidArgument},
			{"unknown backend", e, &trainerpb.JobSpec{Dataset: "shapes", Backend: "tpu"}, codes.InvalidArgument},
			{"unknown optimizer", e, &trainerpb.JobSpec{Dataset: "shapes", Optimizer: 9}, codes.InvalidArgument},
			{"unknown schedule", e, &trainerpb.JobSpec{Dataset: "shapes", Schedule: 9}, codes.InvalidArgument},
			{"negative weight decay", e, &trainerpb.JobSpec{Dataset: "shapes", WeightDecay: -1e-4}, codes.InvalidArgument},
			{"NaN weight decay", e, &trainerpb.JobSpec{Dataset: "shapes", WeightDecay: math.NaN()}, codes.InvalidArgument},
			{"negative crop scale", e, &trainerpb.JobSpec{Dataset: "shapes", Augmentation: &trainerpb.Augmentation{CropMinScale: -0.5}}, codes.InvalidArgument},
			{"crop scale above 1", e, &trainerpb.JobSpec{Dataset: "shapes", Augmentation: &trainerpb.Augmentation{CropMinScale: 1.5}}, codes.InvalidArgument},
			{"jitter of 1", e, &trainerpb.JobSpec{Dataset: "shapes", Augmentation: &trainerpb.Augmentation{ColorJitter: 1}}, codes.InvalidArgument},
			{"negative jitter", e, &trainerpb.JobSpec{Dataset: "shapes", Augmentation: &trainerpb.Augmentation{ColorJitter: -0.1}}, codes.InvalidArgument},
			{"negative patience", e, &trainerpb.JobSpec{Dataset: "shapes", EarlyStoppingPatience: -1}, codes.InvalidArgument},
			{"base version without a number", e, &trainerpb.JobSpec{Dataset: "shapes", BaseVersion: &registrypb.VersionRef{Model: "m"}}, codes.InvalidArgument},
			{"unknown base version", e, &trainerpb.JobSpec{Dataset: "shapes", BaseVersion: &registrypb.VersionRef{Model: "m", Version: 1}}, codes.NotFound},
			{"unknown dataset", e, &trainerpb.JobSpec{Dataset: "nope"}, codes.NotFound},
			{"unknown snapshot", e, &trainerpb.JobSpec{Dataset: "shapes", SnapshotVersion: 7}, codes.NotFound},
			{"one label", e1, &trainerpb.JobSpec{Dataset: "mono"}, codes.FailedPrecondition},
			{"label without training images", e2, &trainerpb.JobSpec{Dataset: "gap"}, codes.FailedPrecondition},
		} {
			_, err := tc.env.client.StartTraining(t.Context(), &trainerpb.StartTrainingRequest{Spec: tc.spec})
			wantCode(t, "StartTraining("+tc.name+")", err, tc.want)
			if tc.want == codes.InvalidArgument && !strings.Contains(status.Convert(err).Message(), "spec") {
				t.Errorf("StartTraining(%s) = %v; want the field named", tc.name, err)
			}
		}
	})
}

func TestQueuedJobsListGetAndCancel(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, cfg, envOptions{noRun: true, metrics: reg})
		wantMetric(t, reg, 0, "shoal_trainer_jobs", "state=queued")
		j := e.start(t, &trainerpb.JobSpec{Dataset: "shapes"})
		if j.GetState() != trainerpb.JobState_JOB_STATE_QUEUED || j.GetSpec().GetSnapshotVersion() != 1 ||
			j.GetSpec().GetArchitecture() != "small-cnn" || j.GetSpec().GetImageSize() != 28 || int(j.GetSpec().GetEpochs()) != ml.Defaults().Epochs {
			t.Errorf("StartTraining() = %v; want a queued job with defaults and snapshot 1", j)
		}
		var ids []string
		for range 4 {
			ids = append(ids, e.start(t, &trainerpb.JobSpec{Dataset: "shapes", Epochs: 1}).GetId())
		}
		// Pages of 2 cover all five jobs, newest first.
		var got []string
		tok := ""
		for {
			resp, err := e.client.ListJobs(t.Context(), &trainerpb.ListJobsRequest{PageSize: 2, PageToken: tok})
			if err != nil {
				t.Fatalf("ListJobs() = %v", err)
			}
			for _, j := range resp.GetJobs() {
				got = append(got, j.GetId())
			}
			if tok = resp.GetNextPageToken(); tok == "" {
				break
			}
		}
		if len(got) != 5 {
			t.Errorf("ListJobs pages = %d jobs; want 5", len(got))
		}

		wantMetric(t, reg, 5, "shoal_trainer_jobs", "state=queued")
		resp, err := e.client.CancelJob(t.Context(), &trainerpb.CancelJobRequest{JobId: ids[0]})
		if err != nil || resp.GetJob().GetState() != trainerpb.JobState_JOB_STATE_CANCELLED {
			t.Fatalf("CancelJob(queued) = %v, %v; want CANCELLED", resp, err)
		}
		wantMetric(t, reg, 4, "shoal_trainer_jobs", "state=queued")
		wantMetric(t, reg, 1, "shoal_trainer_jobs", "state=cancelled")
		wantMetric(t, reg, 0, "shoal_trainer_jobs", "state=running")
		wantMetric(t, reg, 1, "shoal_trainer_jobs_finished_total", "state=cancelled")
		wantMetric(t, reg, 0, "shoal_trainer_jobs_finished_total", "state=succeeded")
		_, err = e.client.CancelJob(t.Context(), &trainerpb.CancelJobRequest{JobId: ids[0]})
		wantCode(t, "CancelJob(cancelled)", err, codes.FailedPrecondition)
		_, err = e.client.CancelJob(t.Context(), &trainerpb.CancelJobRequest{JobId: "4b9d3a4e-0000-4000-8000-000000000000"})
		wantCode(t, "CancelJob(unknown)", err, codes.NotFound)
		_, err = e.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: "x"})
		wantCode(t, "GetJob(bad id)", err, codes.InvalidArgument)

		list, err := e.client.ListJobs(t.Context(), &trainerpb.ListJobsRequest{State: trainerpb.JobState_JOB_STATE_CANCELLED})
		if err != nil || len(list.GetJobs()) != 1 || list.GetJobs()[0].GetId() != ids[0] {
			t.Errorf("ListJobs(CANCELLED) = %v, %v; want just %s", list, err, ids[0])
		}
		list, err = e.client.ListJobs(t.Context(), &trainerpb.ListJobsRequest{Dataset: "other"})
		if err != nil || len(list.GetJobs()) != 0 {
			t.Errorf("ListJobs(dataset=other) = %v, %v; want none", list, err)
		}
		_, err = e.client.ListJobs(t.Context(), &trainerpb.ListJobsRequest{PageToken: "garbage"})
		wantCode(t, "ListJobs(bad token)", err, codes.InvalidArgument)

		// A cancelled job's history ends with its final state.
		evs, err := e.watch(t, ids[0], 0)
		if err != nil || len(evs) != 2 || evs[0].GetState().GetState() != trainerpb.JobState_JOB_STATE_QUEUED ||
			evs[1].GetState().GetState() != trainerpb.JobState_JOB_STATE_CANCELLED || evs[1].GetSequence() != 2 {
			t.Errorf("WatchJob(cancelled) = %v, %v; want QUEUED then CANCELLED", evs, err)
		}
	})
}

func TestListArchitectures(t *testing.T) {
	e := newEnv(t, dbtest.Config(t, db.SQLite), envOptions{noRun: true})
	resp, err := e.client.ListArchitectures(t.Context(), &trainerpb.ListArchitecturesRequest{})
	if err != nil || len(resp.GetArchitectures()) < 3 || resp.GetArchitectures()[0].GetName() != "small-cnn" {
		t.Fatalf("ListArchitectures() = %v, %v; want small-cnn first and at least 3", resp, err)
	}
	params := map[string]int64{}
	for _, a := range resp.GetArchitectures() {
		params[a.GetName()] = a.GetParameters()
	}
	t.Logf("trainable parameters: %v", params)
	// small-cnn by hand: conv 3x3x1x16, batch norm 2x16, conv 3x3x16x32,
	// batch norm 2x32, dense 7*7*32x128 + 128, head 128x10 + 10.
	if got, want := params["small-cnn"], int64(9*16+2*16+9*16*32+2*32+7*7*32*128+128+128*10+10); got != want {
		t.Errorf("small-cnn parameters = %d; want %d", got, want)
	}
	// ResNet-18 has 11.2 million with a 10-class head (11.7 with 1,000).
	if got := params["resnet18"]; got < 11_000_000 || got > 11_300_000 {
		t.Errorf("resnet18 parameters = %d; want about 11.2 million", got)
	}
	// The defaults are what StartTraining fills in, so a client can show them.
	d := resp.GetDefaults()
	if d.GetDataset() != "" || d.GetModel() != "" || d.GetArchitecture() != "small-cnn" || d.GetImageSize() != 28 ||
		d.GetEpochs() != int32(ml.Defaults().Epochs) || d.GetBatchSize() != int32(ml.Defaults().BatchSize) ||
		d.GetLearningRate() != ml.Defaults().LearningRate || d.GetValidationFraction() != 0.2 ||
		d.GetSchedule() != trainerpb.LearningRateSchedule_LEARNING_RATE_SCHEDULE_COSINE ||
		d.GetOptimizer() != trainerpb.Optimizer_OPTIMIZER_ADAM || !d.GetAugmentation().GetHorizontalFlip() ||
		d.GetPromotion() != trainerpb.PromotionPolicy_PROMOTION_POLICY_NEVER {
		t.Errorf("ListArchitectures().defaults = %v; want the spec StartTraining fills in", d)
	}
	if !(params["small-cnn"] < params["small-cnn-wide"] && params["resnet-small"] < params["resnet18"]) {
		t.Errorf("parameters = %v; want wide > small-cnn and resnet18 > resnet-small", params)
	}
}

func TestJobTrainsEvaluatesAndRegisters(t *testing.T) {
	needsTraining(t)
	onnxtest.Runtime(t)
	dbtest.Each(t, func(t *testing.T, cfg db.Config) {
		reg := prometheus.NewRegistry()
		e := newEnv(t, cfg, envOptions{metrics: reg})
		j := e.start(t, &trainerpb.JobSpec{Dataset: "shapes", Model: "shapes-cnn", Epochs: 2, BatchSize: 8, LearningRate: 3e-3, Seed: 1,
			Promotion: trainerpb.PromotionPolicy_PROMOTION_POLICY_IF_BETTER})
		// Two watchers at once: both see the whole history, in order.
		type result struct {
			evs []*trainerpb.WatchJobResponse
			err error
		}
		done := make(chan result, 2)
		for range 2 {
			go func() {
				evs, err := e.watch(t, j.GetId(), 0)
				done <- result{evs, err}
			}()
		}
		var evs []*trainerpb.WatchJobResponse
		for range 2 {
			r := <-done
			if r.err != nil {
				t.Fatalf("WatchJob() = %v", r.err)
			}
			evs = r.evs
		}
		last := evs[len(evs)-1]
		if last.GetState().GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
			t.Fatalf("last event = %v; want SUCCEEDED (events: %v)", last, evs)
		}
		var epochs, evals, registered int
		for i, ev := range evs {
			if i > 0 && ev.GetSequence() <= evs[i-1].GetSequence() {
				t.Errorf("event %d has sequence %d after %d", i, ev.GetSequence(), evs[i-1].GetSequence())
			}
			switch {
			case ev.GetEpoch() != nil:
				epochs++
			case ev.GetEvaluation() != nil:
				evals++
			case ev.GetRegistered() != nil:
				registered++
			}
		}
		if epochs != 2 || evals != 1 || registered != 1 {
			t.Errorf("events: %d epoch, %d evaluation, %d registered; want 2, 1, 1", epochs, evals, registered)
		}

		got, err := e.client.GetJob(t.Context(), &trainerpb.GetJobRequest{JobId: j.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		job := got.GetJob()
		if len(job.GetEpochs()) != 2 || job.GetResult().GetModel() != "shapes-cnn" || job.GetResult().GetVersion() != 1 ||
			job.GetTestMetrics().GetTestExamples() != 12 || job.GetEndTime() == nil || job.GetLastSequence() != last.GetSequence() {
			t.Errorf("GetJob() = %v; want 2 epochs, result shapes-cnn/1, 12 test examples", job)
		}
		if acc := job.GetTestMetrics().GetTestAccuracy(); acc < 0.6 {
			t.Errorf("test accuracy = %.3f; want >= 0.6 on an easy synthetic set", acc)
		}

		e.registry.mu.Lock()
		v := e.registry.versions[0]
		prod := e.registry.production["shapes-cnn"]
		e.registry.mu.Unlock()
		if l := v.GetLineage(); l.GetDataset() != "shapes" || l.GetSnapshotVersion() != 1 || l.GetJobId() != j.GetId() {
			t.Errorf("lineage = %v; want shapes/1/%s", l, j.GetId())
		}
		in := v.GetInputSpec()
		if in.GetInputName() != "images" || in.GetOutputName() != "probabilities" || !in.GetOutputIsProbabilities() ||
			in.GetChannels() != 1 || in.GetHeight() != 28 || in.GetLayout() != registrypb.TensorLayout_TENSOR_LAYOUT_NCHW || len(in.GetMean()) != 0 ||
			in.GetJpegDecode() != registrypb.JpegDecode_JPEG_DECODE_DCT_SCALED {
			t.Errorf("input spec = %v", in)
		}
		if len(v.GetLabels()) != 3 || v.GetCreator() != "trainer" || v.GetArchitecture() != "small-cnn" ||
			len(v.GetMetrics().GetConfusionMatrix().GetCounts()) != 9 || v.GetHyperParameters()["epochs"] != "2" {
			t.Errorf("version = %v", v)
		}
		if prod != 1 {
			t.Errorf("production = %d; want 1 (if-better with no production yet)", prod)
		}

		// Resuming from a sequence replays only what follows it.
		tail, err := e.watch(t, j.GetId(), last.GetSequence()-1)
		if err != nil || len(tail) != 1 || tail[0].GetSequence() != last.GetSequence() {
			t.Errorf("WatchJob(after=%d) = %v, %v; want just the final event", last.GetSequence()-1, tail, err)
		}
		_, err = e.client.CancelJob(t.Context(), &trainerpb.CancelJobRequest{JobId: j.GetId()})
		wantCode(t, "CancelJob(succeeded)", err, codes.FailedPrecondition)

		// The worker counts the job once its end is recorded, which
		// watchers may see first: stopping the workers waits for it.
		e.stop()
		wantMetric(t, reg, 1, "shoal_trainer_jobs_finished_total", "state=succeeded")
		wantMetric(t, reg, 1, "shoal_trainer_jobs", "state=succeeded")
		if n, _ := metricValue(t, reg, "shoal_trainer_images_total"); n == 0 || math.Mod(n, 8) != 0 {
			t.Errorf("shoal_trainer_images_total = %v; want whole batches of 8 over 2 epochs", n)
		}
		if _, ok := metricValue(t, reg, "shoal_trainer_job_progress_ratio", "job="+j.GetId()); ok {
			t.Errorf("shoal_trainer_job_progress_ratio{job=%s} still reported after the job ended", j.GetId())
		}
	})
}
