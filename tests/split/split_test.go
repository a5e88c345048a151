package split

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/demodata"
	"github.com/shoalml/shoal/internal/storage/blob"
)

// TestSplitTopology takes README's scaled-mode steps through the gateway
// of the compose file's topology, killing a trainer and an inference
// replica and restarting PostgreSQL on the way.
func TestSplitTopology(t *testing.T) {
	needSplit(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	began := time.Now()
	phase := func(name string, since time.Time) { t.Logf("%-44s %6.1fs", name, time.Since(since).Seconds()) }

	step := time.Now()
	srcBucket, demo := uploadDemo(ctx, t)
	phase("demo tree in a bucket of its own", step)

	step = time.Now()
	top := startTopology(ctx, t)
	var names []string
	for _, p := range top.all() {
		names = append(names, p.name)
	}
	phase(fmt.Sprintf("started %s", strings.Join(names, ", ")), step)

	step = time.Now()
	top.userPath(ctx, t, srcBucket, demo)
	phase("dataset, bucket import, snapshot (CLI and REST)", step)

	step = time.Now()
	top.trainThroughATrainerKill(ctx, t)
	phase("training with --follow, its trainer killed", step)

	step = time.Now()
	samples := top.promoteAndPredict(ctx, t, demo)
	phase("promotion, predictions over REST and gRPC", step)

	step = time.Now()
	top.killInferenceUnderLoad(ctx, t, samples)
	phase("an inference replica killed under load", step)

	step = time.Now()
	top.restartPostgres(ctx, t, samples)
	phase("PostgreSQL restarted", step)

	step = time.Now()
	top.stop()
	phase("every process stopped with SIGTERM", step)
	phase("total", began)
}

// uploadDemo writes the 1,306-image demo tree and copies it into a fresh
// bucket of the S3 server under fashion-mnist/, laid out split/Label/file.
func uploadDemo(ctx context.Context, t *testing.T) (bucket, dir string) {
	t.Helper()
	dir = filepath.Join(workRoot, "demo")
	if _, err := demodata.Generate(ctx, demodata.Options{Out: dir}); err != nil {
		t.Fatalf("demo tree: %v (scripts/setup-demo-data.sh installs its source)", err)
	}
	s3 := testS3(t)
	bucket = fmt.Sprintf("shoal-split-photos-%d", time.Now().UnixNano())
	store, err := blob.NewS3(ctx, blob.S3Config{Endpoint: s3.endpoint, Bucket: bucket, AccessKey: s3.accessKey, SecretKey: s3.secretKey,
		Region: "us-east-1", Insecure: true, CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	work := make(chan string)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for path := range work {
				b, err := os.ReadFile(path)
				if err == nil {
					rel, _ := filepath.Rel(dir, path)
					err = store.Put(ctx, "fashion-mnist/"+filepath.ToSlash(rel), bytes.NewReader(b), int64(len(b)))
				}
				errs <- err
			}
		})
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("putting the demo tree into bucket %s: %v", bucket, err)
		}
	}
	return bucket, dir
}

// rest calls the gateway's REST API with the admin token.
func (top *topology) rest(ctx context.Context, method, path, body string) (int, string) {
	top.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+top.gw.httpAddr+path, strings.NewReader(body))
	if err != nil {
		top.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+top.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		top.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// userPath: create the dataset over REST, import it from the bucket
// prefix and snapshot it with the CLI over the gateway's gRPC port.
func (top *topology) userPath(ctx context.Context, t *testing.T, srcBucket, demo string) {
	t.Helper()
	if code, body := top.rest(ctx, http.MethodPost, "/v1/datasets", `{"name":"fashion"}`); code != http.StatusOK {
		t.Fatalf("POST /v1/datasets = %d %s; want 200", code, body)
	}
	top.mustCLI(ctx, "dataset", "import", "fashion", "--bucket", srcBucket, "--prefix", "fashion-mnist/")
	stats, err := datasetpb.NewDatasetServiceClient(top.conn).GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: "fashion"})
	if err != nil {
		t.Fatalf("GetDatasetStats through the gateway = %v", err)
	}
	if want := countFiles(t, demo); stats.GetImageCount() != int64(want) {
		t.Fatalf("fashion holds %d images after the bucket import; want the demo tree's %d", stats.GetImageCount(), want)
	}
	if out := top.mustCLI(ctx, "dataset", "snapshot", "fashion"); !strings.Contains(out, "1") {
		t.Errorf("shoal dataset snapshot fashion printed %q; want snapshot 1", out)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Count(filepath.ToSlash(strings.TrimPrefix(path, dir)), "/") == 3 {
			n++ // split/Label/file
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// trainThroughATrainerKill follows a job with `shoal train --follow` and
// kills the trainer running it (SIGKILL) after its first epoch: the other
// trainer takes it over once the lease has lapsed, resumes it from the
// checkpoint in the blob store, and the CLI follows it to its end.
func (top *topology) trainThroughATrainerKill(ctx context.Context, t *testing.T) {
	t.Helper()
	const epochs = 12
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, err := top.cli(ctx, "train", "--dataset", "fashion", "--snapshot", "1", "--epochs", fmt.Sprint(epochs),
			"--batch-size", "32", "--model", "fashion", "--follow")
		done <- result{out, errOut, err}
	}()

	jobs := trainerpb.NewTrainerServiceClient(top.conn)
	var id string
	for id == "" {
		resp, err := jobs.ListJobs(ctx, &trainerpb.ListJobsRequest{})
		if err != nil {
			t.Fatalf("ListJobs through the gateway = %v", err)
		}
		if len(resp.GetJobs()) > 0 {
			id = resp.GetJobs()[0].GetId()
			break
		}
		select {
		case r := <-done:
			t.Fatalf("shoal train --follow ended before its job was listed: %v\n%s%s", r.err, r.out, r.errOut)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	watch, err := jobs.WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatalf("WatchJob(%s) through the gateway ended before epoch 1: %v", id, err)
		}
		if ev.GetEpoch().GetEpoch() >= 1 {
			break
		}
	}
	runs := func(l logLine) bool { return l.msg() == "running training job" && l.str("job") == id }
	var holder, other *proc
	for _, p := range top.procs["trainer"] {
		if p.logged(runs) {
			holder = p
		} else {
			other = p
		}
	}
	if holder == nil || other == nil {
		t.Fatalf("no single trainer logged running job %s", id)
	}
	holder.kill()
	killed := time.Now()
	t.Logf("killed %s (%s) after epoch 1 of job %s", holder.name, holder.killing(), id)

	if _, err := other.waitLog(ctx, runs); err != nil {
		t.Fatalf("%s never took job %s over: %v", other.name, id, err)
	}
	t.Logf("%s took the job over %.1fs after the kill (lease %s)", other.name, time.Since(killed).Seconds(), trainerLease)
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("shoal train --follow still runs at the test's deadline")
	}
	if r.err != nil {
		t.Fatalf("shoal train --follow through a trainer kill = %v; want exit 0\nstdout:\n%s\nstderr:\n%s", r.err, r.out, r.errOut)
	}
	if !strings.Contains(r.out, "registered fashion version 1") {
		t.Errorf("shoal train --follow printed:\n%s\nwant it to follow the job to 'registered fashion version 1'", r.out)
	}

	// The job's history: after the takeover, the stored checkpoint was
	// restored and training went on from a later epoch than the first.
	replay, err := jobs.WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	restored, after := false, []int32{}
	seen := map[int32]bool{}
	for {
		ev, err := replay.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("WatchJob(%s) replay = %v", id, err)
		}
		if strings.HasPrefix(ev.GetLog().GetMessage(), "restored the job's last checkpoint") {
			restored, after = true, nil
		}
		if e := ev.GetEpoch().GetEpoch(); e > 0 {
			seen[e] = true
			if restored {
				after = append(after, e)
			}
		}
	}
	if !restored || len(after) == 0 || after[0] < 2 {
		t.Errorf("job %s: restored a checkpoint = %v, epochs after the last restore %v; want a restore, then epoch 2 or later", id, restored, after)
	}
	for e := int32(1); e <= epochs; e++ {
		if !seen[e] {
			t.Errorf("job %s never reported epoch %d", id, e)
		}
	}
}
