package client_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authpb "github.com/shoalml/shoal/gen/shoal/auth/v1"
	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"

	"github.com/shoalml/shoal/client"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

var labels = []string{"left", "bottom", "top"}

// writeFiles writes files (slash-separated paths under root) and returns
// root.
func writeFiles(t *testing.T, root string, files map[string][]byte) string {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// shapesTree is a folder laid out split/Label/file: perSplit[split] images
// of each label, every one different, and files outside the layout.
func shapesTree(t *testing.T, perSplit map[string]int) (root string, images int) {
	t.Helper()
	files := map[string][]byte{
		"README.md":       []byte("not an image, and at the top: passed over"),
		".DS_Store":       []byte("hidden: passed over"),
		"train/stray.png": imagingtest.PNG(28, 28, 999), // no label folder: skipped
	}
	seed := 0
	for split, n := range perSplit {
		for _, l := range labels {
			for i := range n {
				seed++
				files[fmt.Sprintf("%s/%s/%02d.png", split, l, i)] = imagingtest.PNG(28, 28, seed)
				images++
			}
		}
	}
	return writeFiles(t, t.TempDir(), files), images
}

// TestAgainstShoal runs the SDK's paths against a whole Shoal: upload a
// folder, train on it while the connection is cut twice under WatchJob,
// predict with the trained version, and the errors callers handle.
func TestAgainstShoal(t *testing.T) {
	s := serve(t, defaults(t))
	p := newProxy(t, s.addr)
	admin := dial(t, p.addr(), client.WithToken(s.admin))

	if !t.Run("UploadDir", func(t *testing.T) { testUploadDir(t, admin) }) {
		t.FailNow()
	}
	var ref *registrypb.VersionRef
	if !t.Run("WatchJob", func(t *testing.T) { ref = testWatchJob(t, admin, p) }) {
		t.FailNow()
	}
	t.Run("Predict", func(t *testing.T) { testPredict(t, admin, ref) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, s, admin, ref) })
}

func testUploadDir(t *testing.T, c *client.Client) {
	ctx := t.Context()
	for _, name := range []string{"shapes", "flat"} {
		if _, err := c.Dataset().CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: name}); err != nil {
			t.Fatalf("CreateDataset(%s) = %v", name, err)
		}
	}
	dir, n := shapesTree(t, map[string]int{"train": 12, "test": 3})
	var skipped []string
	var progress [][2]int64
	resp, err := c.UploadDir(ctx, "shapes", dir,
		client.Skipped(func(p string) { skipped = append(skipped, p) }),
		client.Progress(func(sent, total int64) { progress = append(progress, [2]int64{sent, total}) }))
	if err != nil {
		t.Fatalf("UploadDir(shapes) = %v", err)
	}
	if got := resp.GetCounts(); got.GetAdded() != int64(n) || got.GetRejected() != 0 {
		t.Errorf("UploadDir(shapes) counts = %v; want %d added, none rejected", got, n)
	}
	if want := []string{"train/stray.png"}; !slices.Equal(skipped, want) {
		t.Errorf("UploadDir(shapes) skipped %q; want %q", skipped, want)
	}
	if len(progress) != n || progress[n-1] != [2]int64{int64(n), int64(n)} {
		t.Errorf("UploadDir(shapes) progress = %v; want %d calls ending at %d of %d", progress, n, n, n)
	}
	// The same folder again adds nothing: every image is already there.
	if resp, err := c.UploadDir(ctx, "shapes", dir); err != nil || resp.GetCounts().GetDuplicates() != int64(n) {
		t.Errorf("UploadDir(shapes) again = %v, %v; want %d duplicates", resp.GetCounts(), err, n)
	}

	// A folder laid out Label/file needs a split; then a test fraction
	// holds out some of it.
	flat := writeFiles(t, t.TempDir(), map[string][]byte{
		"left/a.png": imagingtest.PNG(28, 28, 501), "left/b.png": imagingtest.PNG(28, 28, 502),
		"top/c.png": imagingtest.PNG(28, 28, 503), "top/d.png": imagingtest.PNG(28, 28, 504),
	})
	_, err = c.UploadDir(ctx, "flat", flat)
	if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), "4 files at Label/file") || !strings.Contains(err.Error(), "client.Split") {
		t.Errorf("UploadDir(Label/file folder) = %v; want ErrInvalidArgument saying what it holds and naming client.Split", err)
	}
	_, err = c.UploadDir(ctx, "flat", flat, client.TestFraction(0.5))
	if !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("UploadDir(TestFraction without Split) = %v; want ErrInvalidArgument", err)
	}
	resp, err = c.UploadDir(ctx, "flat", flat, client.Split(datasetpb.Split_SPLIT_TRAIN), client.TestFraction(0.5))
	if err != nil || resp.GetCounts().GetAdded() != 4 {
		t.Fatalf("UploadDir(flat, Split train, TestFraction 0.5) = %v, %v; want 4 added", resp.GetCounts(), err)
	}
	stats, err := c.Dataset().GetDatasetStats(ctx, &datasetpb.GetDatasetStatsRequest{Dataset: "flat"})
	if err != nil {
		t.Fatal(err)
	}
	perSplit := map[datasetpb.Split]int64{}
	for _, lc := range stats.GetCounts() {
		perSplit[lc.GetSplit()] += lc.GetCount()
	}
	if perSplit[datasetpb.Split_SPLIT_TRAIN]+perSplit[datasetpb.Split_SPLIT_TEST] != 4 {
		t.Errorf("flat's counts = %v; want its 4 images in train and test", stats.GetCounts())
	}

	// An archive goes as it is.
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	img := imagingtest.PNG(28, 28, 600)
	if err := tw.WriteHeader(&tar.Header{Name: "validation/left/v.png", Mode: 0o644, Size: int64(len(img))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(img)
	tw.Close()
	archive := filepath.Join(writeFiles(t, t.TempDir(), map[string][]byte{"more.tar": tarball.Bytes()}), "more.tar")
	if resp, err := c.UploadArchive(ctx, "flat", archive); err != nil || resp.GetCounts().GetAdded() != 1 {
		t.Errorf("UploadArchive(more.tar) = %v, %v; want 1 added", resp.GetCounts(), err)
	}

	if _, err := c.UploadDir(ctx, "nope", dir); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("UploadDir(dataset nope) = %v; want ErrNotFound", err)
	}
	if _, err := c.Dataset().CreateSnapshot(ctx, &datasetpb.CreateSnapshotRequest{Dataset: "shapes"}); err != nil {
		t.Fatalf("CreateSnapshot(shapes) = %v", err)
	}
}

// testWatchJob trains on shapes and follows the job through the proxy,
// which cuts the connection at the first event (the job just queued) and
// again at the first epoch's: the loop must see every event of the job's
// history once, in order, to the final state. It returns the registered
// version.
func testWatchJob(t *testing.T, c *client.Client, p *proxy) *registrypb.VersionRef {
	ctx := t.Context()
	started, err := c.Trainer().StartTraining(ctx, &trainerpb.StartTrainingRequest{Spec: &trainerpb.JobSpec{
		Dataset: "shapes", SnapshotVersion: 1, Model: "shapes", Epochs: 3, BatchSize: 8, Seed: 1,
		Promotion: trainerpb.PromotionPolicy_PROMOTION_POLICY_NEVER,
	}})
	if err != nil {
		t.Fatalf("StartTraining() = %v", err)
	}
	id := started.GetJob().GetId()

	var seen []*trainerpb.WatchJobResponse
	cuts := 0
	var firstCut time.Time
	for ev, err := range c.WatchJob(ctx, id) {
		if err != nil {
			t.Fatalf("WatchJob(%s) after %d events = %v", id, len(seen), err)
		}
		seen = append(seen, ev)
		if cuts == 0 || (cuts == 1 && ev.GetEpoch() != nil) {
			if cuts == 0 {
				firstCut = time.Now()
			}
			p.cut()
			cuts++
		}
	}
	last := seen[len(seen)-1]
	if st := last.GetState().GetState(); st != trainerpb.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("WatchJob(%s) ended with %v (%q); want SUCCEEDED", id, last, last.GetState().GetReason())
	}
	if cuts != 2 || p.connections() < 3 {
		t.Errorf("the proxy cut %d times and saw %d connections; want 2 cuts and a connection after each", cuts, p.connections())
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].GetSequence() <= seen[i-1].GetSequence() {
			t.Fatalf("WatchJob yielded sequence %d after %d; want each event once, in order", seen[i].GetSequence(), seen[i-1].GetSequence())
		}
	}

	// Nothing was lost: the job's stored history, read afresh on the raw
	// client, holds exactly the events the loop saw, but for progress
	// events, of which the history keeps only the latest.
	stream, err := c.Trainer().WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	var history []int64
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break // the stream ends after the final state
		}
		if err != nil {
			t.Fatalf("WatchJob(%s) on the raw client: Recv() = %v; want events, then io.EOF", id, err)
		}
		if ev.GetProgress() == nil {
			history = append(history, ev.GetSequence())
		}
	}
	var watched []int64
	epochs := 0
	var ref *registrypb.VersionRef
	for _, ev := range seen {
		if ev.GetProgress() == nil {
			watched = append(watched, ev.GetSequence())
		}
		if ev.GetEpoch() != nil {
			epochs++
		}
		if r := ev.GetRegistered(); r != nil {
			ref = r
		}
	}
	if !slices.Equal(watched, history) {
		t.Errorf("WatchJob yielded events %v (progress aside); the job's history holds %v", watched, history)
	}
	if epochs != 3 || ref == nil {
		t.Fatalf("WatchJob yielded %d epochs and registered version %v; want 3 and a version", epochs, ref)
	}
	// The first cut came mid-job: the job ended after it.
	if end := last.GetTime().AsTime(); !end.After(firstCut) {
		t.Errorf("the job ended at %v, before the first cut at %v; want the cut mid-job", end, firstCut)
	}
	return ref
}

func testPredict(t *testing.T, c *client.Client, ref *registrypb.VersionRef) {
	ctx := t.Context()
	dir := t.TempDir()
	var paths []string
	var images [][]byte
	for i, l := range labels {
		paths = append(paths, filepath.Join(dir, l+".png"))
		images = append(images, imagingtest.PNG(28, 28, 700+i))
		if err := os.WriteFile(paths[i], images[i], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := []client.PredictOption{client.Model(ref.GetModel()), client.Version(ref.GetVersion()), client.TopK(2)}
	fromFiles, err := c.PredictFiles(ctx, paths, opts...)
	if err != nil {
		t.Fatalf("PredictFiles(%d files) = %v", len(paths), err)
	}
	if fromFiles.GetModel() != ref.GetModel() || fromFiles.GetVersion() != ref.GetVersion() || len(fromFiles.GetResults()) != len(paths) {
		t.Fatalf("PredictFiles() = %s v%d with %d results; want %s v%d with %d", fromFiles.GetModel(), fromFiles.GetVersion(),
			len(fromFiles.GetResults()), ref.GetModel(), ref.GetVersion(), len(paths))
	}
	fromBytes, err := c.Predict(ctx, images, opts...)
	if err != nil {
		t.Fatalf("Predict(%d images) = %v", len(images), err)
	}
	for i, r := range fromFiles.GetResults() {
		ls, again := r.GetLabels(), fromBytes.GetResults()[i].GetLabels()
		if len(ls) != 2 || len(again) != 2 || !slices.Contains(labels, ls[0].GetLabel()) || ls[0].GetProbability() < ls[1].GetProbability() {
			t.Errorf("image %d: labels %v; want the top 2 of %v, best first", i, ls, labels)
			continue
		}
		for j := range ls {
			if ls[j].GetLabel() != again[j].GetLabel() || math.Abs(float64(ls[j].GetProbability()-again[j].GetProbability())) > 1e-5 {
				t.Errorf("image %d: PredictFiles %v, Predict %v; want the same", i, ls, again)
			}
		}
	}
	// One image, with the default top-k: every label of the model.
	one, err := c.Predict(ctx, images[:1], client.Model(ref.GetModel()), client.Version(ref.GetVersion()))
	if err != nil || len(one.GetResults()) != 1 || len(one.GetResults()[0].GetLabels()) != len(labels) {
		t.Errorf("Predict(1 image, default top-k) = %v, %v; want 1 result of %d labels", one, err, len(labels))
	}
}

func testErrors(t *testing.T, s server, admin *client.Client, ref *registrypb.VersionRef) {
	ctx := t.Context()
	image := [][]byte{imagingtest.PNG(28, 28, 800)}

	_, err := admin.Predict(ctx, image, client.Model("nope"))
	e, ok := errors.AsType[*client.Error](err)
	if !errors.Is(err, client.ErrNotFound) || !ok || e.Code != codes.NotFound || status.Code(err) != codes.NotFound ||
		e.Method != "/shoal.inference.v1.InferenceService/Predict" || !strings.Contains(e.Message, "nope") {
		t.Errorf("Predict(model nope) = %#v; want an *Error of NotFound from Predict naming the model", err)
	}
	if errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("Predict(model nope) = %v matches another sentinel", err)
	}
	_, err = admin.Predict(ctx, [][]byte{[]byte("not an image")}, client.Model(ref.GetModel()), client.Version(ref.GetVersion()))
	if !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("Predict(not an image) = %v; want ErrInvalidArgument", err)
	}
	const unknownJob = "00000000-0000-4000-8000-000000000000"
	if n, err := firstError(admin.WatchJob(ctx, unknownJob)); n != 0 || !errors.Is(err, client.ErrNotFound) {
		t.Errorf("WatchJob(unknown job) = %d events, then %v; want ErrNotFound at once", n, err)
	}

	// No token: predictions are open by default, the rest is not.
	anon := dial(t, s.addr)
	if _, err := anon.Predict(ctx, image, client.Model(ref.GetModel()), client.Version(ref.GetVersion())); err != nil {
		t.Errorf("Predict() without a token = %v; want an answer (anonymous callers may predict)", err)
	}
	if _, err := anon.Registry().ListModels(ctx, &registrypb.ListModelsRequest{}); !errors.Is(err, client.ErrUnauthenticated) {
		t.Errorf("Registry().ListModels() without a token = %v; want ErrUnauthenticated", err)
	}
	if n, err := firstError(anon.WatchJob(ctx, unknownJob)); n != 0 || !errors.Is(err, client.ErrUnauthenticated) {
		t.Errorf("WatchJob() without a token = %d events, then %v; want ErrUnauthenticated at once", n, err)
	}

	// A token without the call's scope.
	tok, err := admin.Auth().CreateToken(ctx, &authpb.CreateTokenRequest{Name: "predict-only", Scopes: []authpb.Scope{authpb.Scope_SCOPE_PREDICT}})
	if err != nil {
		t.Fatal(err)
	}
	weak := dial(t, s.addr, client.WithToken(tok.GetSecret()))
	if _, err := weak.Dataset().CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "denied"}); !errors.Is(err, client.ErrPermissionDenied) {
		t.Errorf("CreateDataset() with a predict token = %v; want ErrPermissionDenied", err)
	}
	if _, err := admin.Dataset().CreateDataset(ctx, &datasetpb.CreateDatasetRequest{Name: "shapes"}); !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("CreateDataset(shapes) again = %v; want ErrAlreadyExists", err)
	}
}

// firstError runs a watch to its end and returns how many events it
// yielded before its error.
func firstError(seq func(func(*trainerpb.WatchJobResponse, error) bool)) (int, error) {
	n := 0
	for _, err := range seq {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
