package trainer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/demodata"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
)

// BenchmarkDemoJob runs a job with the default settings on the 1,306-image
// demo tree (`shoal demo-data`, from Debian's dataset-fashion-mnist) served
// by a fake Dataset service, and reports its wall time from StartTraining
// to the registered version (decoding, training, evaluation, export and
// verification included) and its test accuracy. Run it with -benchtime=1x.
func BenchmarkDemoJob(b *testing.B) {
	needsTraining(b)
	onnxtest.Runtime(b)
	dir := b.TempDir()
	if _, err := demodata.Generate(b.Context(), demodata.Options{Source: demodata.DefaultSource, Out: dir}); err != nil {
		b.Skipf("demo tree not available (apt-get install dataset-fashion-mnist): %v", err)
	}
	ds := &fakeDataset{name: "fashion"}
	splits := map[string]datasetpb.Split{"train": datasetpb.Split_SPLIT_TRAIN, "test": datasetpb.Split_SPLIT_TEST}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 3 { // split/Label/file; NOTICE.md is not an image
			return nil
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ds.images = append(ds.images, fakeImage{split: splits[parts[0]], label: parts[1], content: content})
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, dbtest.Config(b, db.SQLite), envOptions{dataset: ds})
	for range b.N {
		start := time.Now()
		job, _ := runJob(b, e, &trainerpb.JobSpec{Dataset: "fashion", Seed: 1})
		b.ReportMetric(time.Since(start).Seconds(), "wall-s")
		b.ReportMetric(job.GetTestMetrics().GetTestAccuracy()*100, "test-acc-%")
		b.Logf("%d images, %d epochs, test accuracy %.1f%%, %.1f s, load %s", len(ds.images), len(job.GetEpochs()),
			job.GetTestMetrics().GetTestAccuracy()*100, time.Since(start).Seconds(), loadAverage())
	}
}

// loadAverage is the 1-minute load average, for figures measured on a
// shared machine.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(data))[0]
}
