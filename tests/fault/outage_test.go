package fault

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// outageLength is how long a storage server stays away.
const outageLength = 30 * time.Second

func TestPostgresOutage(t *testing.T) {
	needOutages(t)
	pg := startPostgres(t)
	s := newShoal(t, "shoal", "--dataset.import-roots="+filepath.Dir(demoTree(t)), "--dataset.import-workers=1")
	b := backends{DB: pg.DB(), Blob: localBackends(s.dir).Blob}
	s.args = append(s.args, b.flags()...)
	s.Start()
	ctx := stepCtx(t, 10*time.Minute)
	served := servedModel(ctx, t, s)

	// The outage begins while a job trains (after its first epoch) and an
	// import runs (after its first committed batch).
	spec := trainSpec("fm", "fashion", 6)
	spec.Promotion = trainerpb.PromotionPolicy_PROMOTION_POLICY_ALWAYS
	job := startJob(ctx, t, s.Trainer, spec)
	if _, err := watchJob(ctx, s.Trainer, job, 0, func(ev *trainerpb.WatchJobResponse) bool { return ev.GetEpoch() != nil }); err != nil {
		t.Fatalf("WatchJob = %v", err)
	}
	createDataset(ctx, t, s.Dataset, "fm2")
	imp, err := s.Dataset.ImportImages(ctx, &datasetpb.ImportImagesRequest{
		Dataset: "fm2", Source: &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: demoTree(t)}},
	})
	if err != nil {
		t.Fatalf("ImportImages = %v", err)
	}
	if _, err := importEvents(imp.Recv, func(p *datasetpb.ImportProgress) bool { return p.GetCounts().GetAdded() > 0 }); err != nil {
		t.Fatalf("ImportImages = %v", err)
	}
	pred := startPredicting(s, demoSample(t, "Bag"))

	stopped := time.Now()
	pg.Stop()
	down := time.Now()
	t.Logf("PostgreSQL stopped in %s", down.Sub(stopped).Round(time.Millisecond))
	_, err = importEvents(imp.Recv, nil)
	importEnded := max(0, time.Since(down)) // 0: it ended while the server was stopping
	code, msg := codeAndMessage(err)
	t.Logf("the running import ended %s after the server was down: %s %q", importEnded.Round(time.Millisecond), code, msg)
	if code != codes.Unavailable || importEnded > failFast {
		t.Errorf("the running import ended with %s %q after %s; want UNAVAILABLE within %s", code, msg, importEnded.Round(time.Millisecond), failFast)
	}
	flip, body := readiness(ctx, t, s, http.StatusServiceUnavailable)
	t.Logf("/readyz answered 503 %s after the stop: %q", flip.Round(time.Millisecond), body)
	if !strings.Contains(body, "db: failing") {
		t.Errorf("/readyz = %q; want it to name the failing db check", body)
	}
	checkUnavailable(t, runProbes(ctx, databaseProbes(s, job, served)), "database")

	time.Sleep(time.Until(stopped.Add(outageLength)))
	restarted := time.Now()
	pg.Start()
	back, _ := readiness(ctx, t, s, http.StatusOK)
	t.Logf("PostgreSQL back after %s; /readyz answered 200 %s later", restarted.Sub(stopped).Round(time.Millisecond), back.Round(time.Millisecond))
	for _, r := range runProbes(ctx, databaseProbes(s, job, served)) {
		if r.code != codes.OK && r.code != codes.AlreadyExists {
			t.Errorf("after the outage: %s; want it to work again", r)
		}
	}

	counts, err := importLocal(ctx, s.Dataset, "fm2", demoTree(t), nil)
	if err != nil || counts.GetAdded()+counts.GetDuplicates() != demoImages {
		t.Errorf("the import re-run after the outage = %v, %v; want all %d images there", counts, err, demoImages)
	}
	j := waitJob(ctx, t, s.Trainer, job)
	t.Logf("the job that trained through the outage: %s %q, version %v", j.GetState(), j.GetError(), j.GetResult())
	if j.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Errorf("the job that trained through the outage ended %s %q; want SUCCEEDED", j.GetState(), j.GetError())
	} else if err := waitFor(ctx, "Inference to serve the promoted version", func() bool {
		resp, err := predictFile(ctx, s.Inference, demoSample(t, "Bag"))
		return err == nil && resp.GetVersion() == j.GetResult().GetVersion()
	}); err != nil {
		t.Error(err)
	}
	if n := len(j.GetEpochs()); n != int(spec.Epochs) {
		t.Errorf("the job reports %d epochs; want %d (none lost to the outage)", n, spec.Epochs)
	}
	pred.Stop(t)
	s.Stop()
	takeInventory(t, b).requireClean(t, "after the PostgreSQL outage")
}

// servedModel imports the demo tree as dataset fm, trains the default
// model on it, promotes it and waits until Inference serves it; it returns
// the version.
func servedModel(ctx context.Context, t *testing.T, s *shoal) int64 {
	t.Helper()
	importDemo(ctx, t, s, "fm")
	spec := trainSpec("fm", "fashion", 2)
	spec.Promotion = trainerpb.PromotionPolicy_PROMOTION_POLICY_ALWAYS
	j := waitJob(ctx, t, s.Trainer, startJob(ctx, t, s.Trainer, spec))
	if j.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("training the served model: %s %q", j.GetState(), j.GetError())
	}
	v := j.GetResult().GetVersion()
	if err := waitFor(ctx, "Inference to serve the trained model", func() bool {
		resp, err := predictFile(ctx, s.Inference, demoSample(t, "Bag"))
		return err == nil && resp.GetVersion() == v
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// databaseProbes are calls of every service that need the database.
func databaseProbes(s *shoal, job string, served int64) []probe {
	return []probe{
		{"Dataset.GetDataset", func(ctx context.Context) error {
			_, err := s.Dataset.GetDataset(ctx, &datasetpb.GetDatasetRequest{Name: "fm"})
			return err
		}},
		{"Dataset.ListImages", func(ctx context.Context) error {
			_, err := s.Dataset.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: "fm", PageSize: 10})
			return err
		}},
		{"Dataset.CreateDataset", func(ctx context.Context) error {
			_, err := s.Dataset.CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "probe"})
			return err
		}},
		{"Registry.ListVersions", func(ctx context.Context) error {
			_, err := s.Registry.ListVersions(ctx, &registrypb.ListVersionsRequest{Model: "fashion"})
			return err
		}},
		{"Registry.SetAlias", func(ctx context.Context) error {
			_, err := s.Registry.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fashion", Alias: "probe", Version: served})
			return err
		}},
		{"Trainer.GetJob", func(ctx context.Context) error {
			_, err := s.Trainer.GetJob(ctx, &trainerpb.GetJobRequest{JobId: job})
			return err
		}},
		{"Trainer.ListJobs", func(ctx context.Context) error {
			_, err := s.Trainer.ListJobs(ctx, &trainerpb.ListJobsRequest{})
			return err
		}},
	}
}

// TestS3Outage stops the process's S3 server for 30 s while an import
// runs, a training job trains and predictions are served, and promotes a
// version that is not loaded yet while the server is away; then starts it
// again on the same ports. While it is away: calls that need blobs fail
// within seconds with UNAVAILABLE, /readyz answers 503, every prediction
// is answered by the loaded version. When it is back, without a restart of
// Shoal: /readyz answers 200, the import re-run converges, the job ends,
// and Inference serves the version promoted during the outage.
func TestS3Outage(t *testing.T) {
	needOutages(t)
	s3 := startS3(t)
	s := newShoal(t, "shoal", "--dataset.import-roots="+filepath.Dir(demoTree(t)), "--dataset.import-workers=1")
	b := backends{DB: localBackends(s.dir).DB, Blob: blob.Config{Backend: blob.BackendS3, S3: s3.Config("shoal")}}
	s.args = append(s.args, b.flags()...)
	s.Start()
	ctx := stepCtx(t, 10*time.Minute)
	served := servedModel(ctx, t, s)

	// A second version, stored but not served: production moves to it
	// while the blob store is away.
	spec := trainSpec("fm", "fashion", 2)
	spec.Seed = 12
	next := waitJob(ctx, t, s.Trainer, startJob(ctx, t, s.Trainer, spec))
	if next.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("training the second version: %s %q", next.GetState(), next.GetError())
	}

	// The outage begins while a job trains and an import runs.
	spec = trainSpec("fm", "fashion", 6)
	job := startJob(ctx, t, s.Trainer, spec)
	if _, err := watchJob(ctx, s.Trainer, job, 0, func(ev *trainerpb.WatchJobResponse) bool { return ev.GetEpoch() != nil }); err != nil {
		t.Fatalf("WatchJob = %v", err)
	}
	createDataset(ctx, t, s.Dataset, "fm2")
	imp, err := s.Dataset.ImportImages(ctx, &datasetpb.ImportImagesRequest{
		Dataset: "fm2", Source: &datasetpb.ImportImagesRequest_Local{Local: &datasetpb.LocalSource{Path: demoTree(t)}},
	})
	if err != nil {
		t.Fatalf("ImportImages = %v", err)
	}
	if _, err := importEvents(imp.Recv, func(p *datasetpb.ImportProgress) bool { return p.GetCounts().GetAdded() > 0 }); err != nil {
		t.Fatalf("ImportImages = %v", err)
	}
	pred := startPredicting(s, demoSample(t, "Bag"))

	stopped := time.Now()
	s3.Stop()
	down := time.Now()
	t.Logf("the S3 server stopped in %s", down.Sub(stopped).Round(time.Millisecond))
	_, err = importEvents(imp.Recv, nil)
	importEnded := max(0, time.Since(down)) // 0: it ended while the server was stopping
	code, msg := codeAndMessage(err)
	t.Logf("the running import ended %s after the server was down: %s %q", importEnded.Round(time.Millisecond), code, msg)
	if code != codes.Unavailable || importEnded > failFast || !strings.Contains(msg, "blob store") {
		t.Errorf("the running import ended with %s %q after %s; want UNAVAILABLE naming the blob store within %s", code, msg, importEnded.Round(time.Millisecond), failFast)
	}
	flip, body := readiness(ctx, t, s, http.StatusServiceUnavailable)
	t.Logf("/readyz answered 503 %s after the stop: %q", flip.Round(time.Millisecond), body)
	if !strings.Contains(body, "blob: failing") {
		t.Errorf("/readyz = %q; want it to name the failing blob check", body)
	}
	checkUnavailable(t, runProbes(ctx, blobProbes(s, next.GetResult().GetVersion())), "blob store")
	if _, err := s.Registry.SetAlias(ctx, &registrypb.SetAliasRequest{Model: "fashion", Alias: "production", Version: next.GetResult().GetVersion()}); err != nil {
		t.Fatalf("SetAlias during the outage = %v; want it to work (it needs only the database)", err)
	}

	time.Sleep(time.Until(stopped.Add(outageLength)))
	restarted := time.Now()
	s3.Start()
	back, _ := readiness(ctx, t, s, http.StatusOK)
	t.Logf("the S3 server back after %s; /readyz answered 200 %s later", restarted.Sub(stopped).Round(time.Millisecond), back.Round(time.Millisecond))
	for _, r := range runProbes(ctx, blobProbes(s, next.GetResult().GetVersion())) {
		if r.code != codes.OK {
			t.Errorf("after the outage: %s; want it to work again", r)
		}
	}
	began := time.Now()
	if err := waitFor(ctx, "Inference to serve the version promoted during the outage", func() bool {
		resp, err := predictFile(ctx, s.Inference, demoSample(t, "Bag"))
		return err == nil && resp.GetVersion() == next.GetResult().GetVersion()
	}); err != nil {
		t.Error(err)
	}
	t.Logf("the version promoted during the outage served %s after the S3 server was back", time.Since(began).Round(time.Millisecond))

	counts, err := importLocal(ctx, s.Dataset, "fm2", demoTree(t), nil)
	if err != nil || counts.GetAdded()+counts.GetDuplicates() != demoImages {
		t.Errorf("the import re-run after the outage = %v, %v; want all %d images there", counts, err, demoImages)
	}
	j := waitJob(ctx, t, s.Trainer, job)
	t.Logf("the job that trained through the outage: %s %q, version %v", j.GetState(), j.GetError(), j.GetResult())
	if j.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED || len(j.GetEpochs()) != int(spec.Epochs) {
		t.Errorf("the job that trained through the outage ended %s %q with %d epochs; want SUCCEEDED with %d", j.GetState(), j.GetError(), len(j.GetEpochs()), spec.Epochs)
	}
	pred.Stop(t)
	s.Stop()
	takeInventory(t, b).requireClean(t, "after the S3 outage")
	_ = served
}

// blobProbes are calls of every service that need the blob store.
func blobProbes(s *shoal, unloaded int64) []probe {
	return []probe{
		{"Dataset.GetImageContent", func(ctx context.Context) error {
			resp, err := s.Dataset.ListImages(ctx, &datasetpb.ListImagesRequest{Dataset: "fm", PageSize: 1})
			if err != nil {
				return err
			}
			_, err = s.Dataset.GetImageContent(ctx, &datasetpb.GetImageContentRequest{Dataset: "fm", ImageId: resp.GetImages()[0].GetId()})
			return err
		}},
		{"Dataset.UploadImages", func(ctx context.Context) error {
			stream, err := s.Dataset.UploadImages(ctx)
			if err != nil {
				return err
			}
			_ = stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_Header{Header: &datasetpb.UploadHeader{Dataset: "fm2"}}})
			_ = stream.Send(&datasetpb.UploadImagesRequest{Payload: &datasetpb.UploadImagesRequest_File{File: &datasetpb.UploadFile{
				Split: datasetpb.Split_SPLIT_TRAIN, Label: "Bag", FileName: "new.png", Content: imagingtest.PNG(28, 28, 99),
			}}})
			_, err = stream.CloseAndRecv()
			return err
		}},
		{"Registry.DownloadArtifact", func(ctx context.Context) error {
			stream, err := s.Registry.DownloadArtifact(ctx, &registrypb.DownloadArtifactRequest{Model: "fashion", Version: 1})
			if err != nil {
				return err
			}
			for {
				if _, err := stream.Recv(); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		}},
		{"Registry.CreateVersion", func(ctx context.Context) error {
			data, spec := classifier(28, 42)
			spec.Model = "uploaded"
			_, err := uploadVersion(ctx, s.Registry, spec, data, 64<<10, nil)
			return err
		}},
		{"Inference.Predict of an unloaded version", func(ctx context.Context) error {
			_, err := s.Inference.Predict(ctx, &inferencepb.PredictRequest{Model: "fashion", Version: unloaded, Images: [][]byte{imagingtest.PNG(28, 28, 1)}})
			return err
		}},
	}
}
