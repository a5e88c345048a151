package fault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
)

// TestKillDuringTraining kills the process with SIGKILL at three points of
// a training job: between epochs, after the evaluation (while the model is
// exported and registered) and after registration (before the job records
// its end). After a restart the job resumes from its checkpoint and ends
// with exactly the test metrics of an uninterrupted run of the same spec,
// registered once.
func TestKillDuringTraining(t *testing.T) {
	needFault(t)
	s := newShoal(t, "shoal", "--dataset.import-roots="+filepath.Dir(demoTree(t)))
	s.Start()
	ctx := stepCtx(t, 15*time.Minute)
	importDemo(ctx, t, s, "fm")

	const epochs = 3
	began := time.Now()
	ref := waitJob(ctx, t, s.Trainer, startJob(ctx, t, s.Trainer, trainSpec("fm", "reference", epochs)))
	if ref.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("reference job: %s %q", ref.GetState(), ref.GetError())
	}
	t.Logf("uninterrupted job: %s, test accuracy %.4f", time.Since(began).Round(time.Millisecond), ref.GetTestMetrics().GetTestAccuracy())

	for _, tc := range []struct {
		name string
		// Either event (a WatchJob event) or logged (a log line of the
		// server) is the kill point.
		event  func(*trainerpb.WatchJobResponse) bool
		logged func(model string) func(logLine) bool
	}{
		{name: "between epochs", event: func(ev *trainerpb.WatchJobResponse) bool { return ev.GetEpoch().GetEpoch() == 2 }},
		{name: "after evaluation", event: func(ev *trainerpb.WatchJobResponse) bool { return ev.GetEvaluation() != nil }},
		{name: "after registration", logged: func(model string) func(logLine) bool {
			return func(l logLine) bool { return l.msg() == "version created" && l.str("model") == model }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The kill must land before the job ends; on a machine so
			// loaded that the job outruns the log reader, try again.
			var model, id string
			var restart time.Duration
			var began time.Time
			for attempt := 1; ; attempt++ {
				model = fmt.Sprintf("resumed-%s-%d", strings.ReplaceAll(tc.name, " ", "-"), attempt)
				if tc.logged != nil {
					s.KillOnLog(tc.logged(model))
				}
				id = startJob(ctx, t, s.Trainer, trainSpec("fm", model, epochs))
				if tc.event != nil {
					killed := false
					if _, err := watchJob(ctx, s.Trainer, id, 0, func(ev *trainerpb.WatchJobResponse) bool {
						killed = tc.event(ev)
						return killed
					}); err != nil || !killed {
						t.Fatalf("WatchJob(%s) ended (%v) before the kill point", id, err)
					}
					s.Kill()
				} else if err := s.WaitExit(ctx); err != nil {
					t.Fatal(err)
				}
				restart = s.Start()
				began = time.Now()
				j, err := s.Trainer.GetJob(ctx, &trainerpb.GetJobRequest{JobId: id})
				if err != nil {
					t.Fatalf("GetJob(%s) after the restart = %v", id, err)
				}
				if !finalJobState(j.GetJob().GetState()) {
					break
				}
				if attempt == 3 {
					t.Fatalf("job %s had ended (%s) before the kill landed, 3 times", id, j.GetJob().GetState())
				}
				t.Logf("attempt %d: the job had ended before the kill landed; again", attempt)
			}
			job := waitJob(ctx, t, s.Trainer, id)
			t.Logf("restart %s; the job ended %s later", restart.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
			if job.GetState() != trainerpb.JobState_JOB_STATE_SUCCEEDED {
				t.Fatalf("job after the kill: %s %q; want SUCCEEDED", job.GetState(), job.GetError())
			}
			if err := sameMetrics(job.GetTestMetrics(), ref.GetTestMetrics()); err != nil {
				t.Errorf("resumed job's metrics differ from the uninterrupted run's: %v", err)
			}
			var got []int32
			for i, e := range job.GetEpochs() {
				got = append(got, e.GetEpoch())
				if w := ref.GetEpochs()[min(i, len(ref.GetEpochs())-1)]; e.GetValAccuracy() != w.GetValAccuracy() || e.GetTrainLoss() != w.GetTrainLoss() {
					t.Errorf("epoch %d: train loss %v, val accuracy %v; uninterrupted %v, %v", e.GetEpoch(), e.GetTrainLoss(), e.GetValAccuracy(), w.GetTrainLoss(), w.GetValAccuracy())
				}
			}
			if len(got) != epochs {
				t.Errorf("job epochs %v; want each of 1..%d once", got, epochs)
			}
			vs, err := s.Registry.ListVersions(ctx, &registrypb.ListVersionsRequest{Model: model})
			if err != nil {
				t.Fatalf("ListVersions(%s) = %v", model, err)
			}
			if n := len(vs.GetVersions()); n != 1 || job.GetResult().GetVersion() != vs.GetVersions()[0].GetVersion() {
				t.Errorf("model %s has %d versions; want 1, the job's result %v", model, n, job.GetResult())
			}
		})
	}
	s.Stop()
	takeInventory(t, localBackends(s.dir)).requireClean(t, "after the killed jobs")
}

// TestKillDuringImport kills the process twice in the middle of a
// server-folder import, each time once a batch of rows has been committed;
// re-running the same import after each restart converges: the dataset
// holds every file of the tree exactly once, and every blob the killed
// runs stored is referenced.
func TestKillDuringImport(t *testing.T) {
	needFault(t)
	// One decoder makes the import slow enough to be killed halfway.
	s := newShoal(t, "shoal", "--dataset.import-roots="+filepath.Dir(demoTree(t)), "--dataset.import-workers=1")
	s.Start()
	ctx := stepCtx(t, 5*time.Minute)
	createDataset(ctx, t, s.Dataset, "fm")

	var stored int64
	for kill := 1; kill <= 2; kill++ {
		var at *datasetpb.ImportCounts
		_, err := importLocal(ctx, s.Dataset, "fm", demoTree(t), func(p *datasetpb.ImportProgress) bool {
			if p.GetCounts().GetAdded() == 0 {
				return false
			}
			at = p.GetCounts()
			s.Kill()
			return true
		})
		if err != nil || at == nil {
			t.Fatalf("import %d ended (%v) before a batch was committed", kill, err)
		}
		s.Start()
		stats, err := s.Dataset.GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: "fm"})
		if err != nil {
			t.Fatalf("GetDatasetStats after kill %d = %v", kill, err)
		}
		t.Logf("kill %d: import reported %v; %d images stored after the restart", kill, at, stats.GetImageCount())
		if n := stats.GetImageCount(); n <= stored || n >= demoImages {
			t.Fatalf("after kill %d the dataset holds %d images; want more than %d and fewer than %d (a kill halfway)", kill, n, stored, demoImages)
		}
		stored = stats.GetImageCount()
	}

	counts, err := importLocal(ctx, s.Dataset, "fm", demoTree(t), nil)
	if err != nil {
		t.Fatalf("ImportImages after the kills = %v", err)
	}
	if counts.GetAdded() != demoImages-stored || counts.GetDuplicates() != stored || counts.GetRejected() != 0 || counts.GetConflicts() != 0 {
		t.Errorf("ImportImages after the kills = %v; want %d added and %d duplicates", counts, demoImages-stored, stored)
	}
	stats, err := s.Dataset.GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: "fm"})
	if err != nil || stats.GetImageCount() != demoImages {
		t.Errorf("GetDatasetStats = %d images, %v; want %d", stats.GetImageCount(), err, demoImages)
	}
	s.Stop()
	inv := takeInventory(t, localBackends(s.dir))
	inv.requireClean(t, "after the killed imports")
	if inv.Images != demoImages || inv.Blobs != demoImages {
		t.Errorf("stores hold %d image rows and %d blobs; want %d of each", inv.Images, inv.Blobs, demoImages)
	}
	// Puts cut off by the kills left staged files; the restarts, finding
	// no other user of the store, removed them.
	if inv.Staged != 0 {
		t.Errorf("%d staged files of cut-off Puts are left in the blob store; want none", inv.Staged)
	}
}

// TestKillDuringUpload kills the process while a client uploads a model
// version (CreateVersion, a 3 MB ONNX file): halfway through the stream,
// at eight moments spread over the server's check-and-store work after the
// last chunk, and right after the Registry committed the version. After
// each restart the version either does not exist at all or exists whole:
// its artifact has the uploaded SHA-256 and Inference serves it.
func TestKillDuringUpload(t *testing.T) {
	needFault(t)
	s := newShoal(t, "shoal")
	s.Start()
	ctx := stepCtx(t, 5*time.Minute)
	const model, chunk = "uploaded", 256 << 10

	// Two whole uploads; the second (ONNX Runtime warm) measures the
	// server's work after the last chunk.
	var work time.Duration
	for seed := range 2 {
		data, spec := classifier(224, byte(seed))
		spec.Model = model
		var lastChunk time.Time
		if _, err := uploadVersion(ctx, s.Registry, spec, data, chunk, func(_ int, last bool) {
			if last {
				lastChunk = time.Now()
			}
		}); err != nil {
			t.Fatalf("CreateVersion = %v", err)
		}
		work = time.Since(lastChunk)
	}
	t.Logf("an upload of a 3 MB model: %s from the last chunk to the answer", work.Round(time.Microsecond))

	type killPoint struct {
		name       string
		afterChunk func(i int, last bool) // arms the kill
		logged     func(logLine) bool
	}
	points := []killPoint{{name: "halfway through the stream", afterChunk: func(i int, _ bool) {
		if i == 5 { // of 12 chunks
			s.Signal(syscall.SIGKILL)
		}
	}}}
	const spread = 8
	for k := range spread {
		delay := work * time.Duration(k) / spread
		points = append(points, killPoint{name: fmt.Sprintf("%s after the last chunk", delay.Round(time.Microsecond)), afterChunk: func(_ int, last bool) {
			if last {
				time.AfterFunc(delay, func() { s.Signal(syscall.SIGKILL) })
			}
		}})
	}
	points = append(points, killPoint{name: "after the commit", logged: func(l logLine) bool { return l.msg() == "version created" }})

	stored := 0
	for i, p := range points {
		before := versionsOf(ctx, t, s, model)
		// Each upload is a new file: another size makes other bytes.
		data, spec := classifier(int64(223-i), 0)
		spec.Model = model
		if p.logged != nil {
			s.KillOnLog(p.logged)
		}
		v, err := uploadVersion(ctx, s.Registry, spec, data, chunk, p.afterChunk)
		if err == nil {
			t.Logf("%s: the upload finished (version %d) before the kill landed", p.name, v.GetVersion())
		}
		if err := s.WaitExit(ctx); err != nil {
			t.Fatal(err)
		}
		s.Start()
		after := versionsOf(ctx, t, s, model)
		switch len(after) - len(before) {
		case 0:
			t.Logf("%s: no version stored", p.name)
		case 1:
			stored++
			nv := after[len(after)-1]
			if nv.GetArtifact().GetSha256() != spec.GetArtifactSha256() || nv.GetArtifact().GetSizeBytes() != int64(len(data)) {
				t.Errorf("%s: version %d has artifact %s (%d bytes); uploaded %s (%d bytes)", p.name, nv.GetVersion(),
					nv.GetArtifact().GetSha256(), nv.GetArtifact().GetSizeBytes(), spec.GetArtifactSha256(), len(data))
			}
			resp, err := s.Inference.Predict(ctx, &inferencepb.PredictRequest{Model: model, Version: nv.GetVersion(), Images: [][]byte{demoSample(t, "Bag")}})
			if err != nil || resp.GetVersion() != nv.GetVersion() {
				t.Errorf("%s: Predict(version %d) = %v, %v; want it served", p.name, nv.GetVersion(), resp, err)
			}
			t.Logf("%s: version %d stored whole", p.name, nv.GetVersion())
		default:
			t.Errorf("%s: %d versions before the kill, %d after", p.name, len(before), len(after))
		}
	}
	t.Logf("%d of %d killed uploads stored their version", stored, len(points))
	s.Stop()
	// A kill that lands between storing an artifact blob and committing
	// its rows leaves the blob, which the next start removes (below):
	// such blobs are expected here, any other problem is not.
	inv := takeInventory(t, localBackends(s.dir))
	var leftovers int
	inv.Problems = slices.DeleteFunc(inv.Problems, func(p string) bool {
		orphan := strings.HasPrefix(p, "orphan blob registry/artifacts/") && strings.HasSuffix(p, ": no version references it")
		if orphan {
			leftovers++
		}
		return orphan
	})
	inv.requireClean(t, "after the killed uploads")
	if leftovers > 0 {
		t.Logf("the killed uploads left %d artifact blobs no version references, for the next start to remove", leftovers)
	}

	// A kill between storing the blob and committing the rows leaves an
	// artifact blob that no row names; the random kills above rarely land
	// in that window, so the leftover is made here as it would be left,
	// and the next start must remove it.
	leftover, _ := classifier(32, 1)
	sum := sha256.Sum256(leftover)
	key := filepath.Join(s.dir, "data", "blobs", "registry", "artifacts", "sha256", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(key, leftover, 0o644); err != nil {
		t.Fatal(err)
	}
	from := s.mark()
	s.Start()
	swept, err := s.waitLog(ctx, from, func(l logLine) bool { return l.msg() == "removed orphan artifact blobs" })
	if err != nil {
		t.Fatalf("no orphan sweep after the restart: %v", err)
	}
	if n, _ := swept["count"].(float64); n != float64(leftovers+1) {
		t.Errorf("the sweep removed %v artifact blobs; want %d (the killed uploads' %d and the one made here)", swept["count"], leftovers+1, leftovers)
	}
	// The kills during the stream left the received part of the upload
	// in the upload folder; the restarts removed it.
	if left := filesIn(t, filepath.Join(s.dir, "uploads")); len(left) != 0 {
		t.Errorf("the upload folder holds %v after the restarts; want nothing", left)
	}
	s.Stop()
	takeInventory(t, localBackends(s.dir)).requireClean(t, "after the restart's sweep")
}

// versionsOf lists a model's versions, oldest first; none when the model
// does not exist.
func versionsOf(ctx context.Context, t *testing.T, s *shoal, model string) []*registrypb.Version {
	t.Helper()
	resp, err := s.Registry.ListVersions(ctx, &registrypb.ListVersionsRequest{Model: model, PageSize: 1000})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("ListVersions(%s) = %v", model, err)
	}
	return resp.GetVersions()
}

// TestKillDuringPromotion kills the process while SetAlias moves the
// production alias between two versions, at moments spread over the call
// and right after it committed. After each restart the alias names the old
// or the new version, never nothing, and Inference serves what it names.
func TestKillDuringPromotion(t *testing.T) {
	needFault(t)
	const model = "fashion" // the default model, whose production alias Inference follows
	s := newShoal(t, "shoal", "--inference.default-model="+model)
	s.Start()
	ctx := stepCtx(t, 5*time.Minute)
	var versions [2]int64
	for i := range versions {
		data, spec := classifier(28, byte(i))
		spec.Model = model
		v, err := uploadVersion(ctx, s.Registry, spec, data, 64<<10, nil)
		if err != nil {
			t.Fatalf("CreateVersion = %v", err)
		}
		versions[i] = v.GetVersion()
	}
	setAlias := func(v int64) error {
		_, err := s.Registry.SetAlias(ctx, &registrypb.SetAliasRequest{Model: model, Alias: "production", Version: v})
		return err
	}
	if err := setAlias(versions[0]); err != nil {
		t.Fatalf("SetAlias = %v", err)
	}
	began := time.Now()
	if err := setAlias(versions[1]); err != nil {
		t.Fatalf("SetAlias = %v", err)
	}
	took := time.Since(began)
	t.Logf("SetAlias takes %s", took.Round(time.Microsecond))
	serving := func() (int64, error) {
		resp, err := predictFile(ctx, s.Inference, demoSample(t, "Bag"))
		return resp.GetVersion(), err
	}

	current := versions[1]
	const spread = 6
	for k := 0; k <= spread; k++ {
		next := versions[0]
		if current == versions[0] {
			next = versions[1]
		}
		name := "after the commit"
		if k < spread {
			delay := took * time.Duration(k) / spread
			name = fmt.Sprintf("%s into the call", delay.Round(time.Microsecond))
			time.AfterFunc(delay, func() { s.Signal(syscall.SIGKILL) })
		} else {
			s.KillOnLog(func(l logLine) bool { return l.msg() == "alias set" })
		}
		err := setAlias(next)
		if err := s.WaitExit(ctx); err != nil {
			t.Fatal(err)
		}
		s.Start()
		m, gerr := s.Registry.GetModel(ctx, &registrypb.GetModelRequest{Name: model})
		if gerr != nil {
			t.Fatalf("GetModel after the kill = %v", gerr)
		}
		got, ok := m.GetModel().GetAliases()["production"]
		switch {
		case !ok:
			t.Errorf("%s: production names no version after the kill; want %d or %d", name, current, next)
		case got != current && got != next:
			t.Errorf("%s: production = %d after the kill; want %d or %d", name, got, current, next)
		}
		v, perr := serving()
		if perr != nil || v != got {
			t.Errorf("%s: Predict after the restart answers version %d (%v); production is %d", name, v, perr, got)
		}
		t.Logf("%s: SetAlias(%d) = %v; production is %d after the restart (was %d)", name, next, err, got, current)
		current = got
	}
	s.Stop()
	takeInventory(t, localBackends(s.dir)).requireClean(t, "after the killed promotions")
}
