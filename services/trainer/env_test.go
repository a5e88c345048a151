package trainer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"gorm.io/gorm"

	datasetpb "github.com/shoalml/shoal/gen/shoal/dataset/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	trainerpb "github.com/shoalml/shoal/gen/shoal/trainer/v1"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/onnxrt"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/storage/db"
	"github.com/shoalml/shoal/internal/storage/db/dbtest"
	"github.com/shoalml/shoal/internal/testlog"
	"github.com/shoalml/shoal/services/trainer"
)

// fakeImage is one image of the fake dataset.
type fakeImage struct {
	split   datasetpb.Split
	label   string
	content []byte
}

// fakeDataset is a Dataset service holding one dataset with one snapshot.
// readErr, when set, answers ReadSnapshot instead.
type fakeDataset struct {
	datasetpb.UnimplementedDatasetServiceServer
	name    string
	images  []fakeImage
	mu      sync.Mutex
	readErr error
}

func (f *fakeDataset) snapshot(version int64) *datasetpb.Snapshot {
	counts := map[[2]any]int64{}
	for _, im := range f.images {
		counts[[2]any{im.split, im.label}]++
	}
	snap := &datasetpb.Snapshot{Dataset: f.name, Version: version, ImageCount: int64(len(f.images))}
	for k, n := range counts {
		snap.Counts = append(snap.Counts, &datasetpb.LabelCount{Split: k[0].(datasetpb.Split), Label: k[1].(string), Count: n})
	}
	return snap
}

func (f *fakeDataset) check(ds string, version int64) error {
	if ds != f.name {
		return status.Errorf(codes.NotFound, "dataset %q not found", ds)
	}
	if version != 1 {
		return status.Errorf(codes.NotFound, "dataset %q has no snapshot %d", ds, version)
	}
	return nil
}

func (f *fakeDataset) CreateSnapshot(_ context.Context, req *datasetpb.CreateSnapshotRequest) (*datasetpb.CreateSnapshotResponse, error) {
	if err := f.check(req.GetDataset(), 1); err != nil {
		return nil, err
	}
	return &datasetpb.CreateSnapshotResponse{Snapshot: f.snapshot(1)}, nil
}

func (f *fakeDataset) GetSnapshot(_ context.Context, req *datasetpb.GetSnapshotRequest) (*datasetpb.GetSnapshotResponse, error) {
	if err := f.check(req.GetDataset(), req.GetVersion()); err != nil {
		return nil, err
	}
	return &datasetpb.GetSnapshotResponse{Snapshot: f.snapshot(1)}, nil
}

func (f *fakeDataset) ReadSnapshot(req *datasetpb.ReadSnapshotRequest, stream grpc.ServerStreamingServer[datasetpb.ReadSnapshotResponse]) error {
	f.mu.Lock()
	rerr := f.readErr
	f.mu.Unlock()
	if rerr != nil {
		return rerr
	}
	if err := f.check(req.GetDataset(), req.GetVersion()); err != nil {
		return err
	}
	for i, im := range f.images {
		if req.GetSplit() != datasetpb.Split_SPLIT_UNSPECIFIED && im.split != req.GetSplit() {
			continue
		}
		resp := &datasetpb.ReadSnapshotResponse{Image: &datasetpb.Image{
			Id: string(rune('a' + i%26)), Dataset: f.name, Split: im.split, Label: im.label, FileName: "x.png",
		}}
		if req.GetIncludeContent() {
			resp.Content = im.content
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

// synthetic returns a dataset of 28x28 gray PNGs whose labels are easy to
// learn: the bright band is on the left, at the bottom or at the top, so
// that they stay learnable under the default horizontal flips.
func synthetic(labels []string, trainPer, testPer int) []fakeImage {
	var out []fakeImage
	for li, l := range labels {
		for i := range trainPer + testPer {
			img := image.NewGray(image.Rect(0, 0, 28, 28))
			for y := range 28 {
				for x := range 28 {
					v := uint8(20 + (x*7+y*3+i*11)%30)
					switch li % 3 {
					case 0:
						if x < 10 {
							v = 230
						}
					case 1:
						if y >= 18 {
							v = 230
						}
					case 2:
						if y < 10 {
							v = 230
						}
					}
					img.SetGray(x, y, color.Gray{Y: v})
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				panic(err)
			}
			split := datasetpb.Split_SPLIT_TRAIN
			if i >= trainPer {
				split = datasetpb.Split_SPLIT_TEST
			}
			out = append(out, fakeImage{split: split, label: l, content: buf.Bytes()})
		}
	}
	return out
}

// fakeRegistry records the versions the trainer creates.
type fakeRegistry struct {
	registrypb.UnimplementedRegistryServiceServer
	mu         sync.Mutex
	versions   []*registrypb.Version
	artifacts  [][]byte
	production map[string]int64
	createErr  error
}

func (f *fakeRegistry) CreateVersion(stream grpc.ClientStreamingServer[registrypb.CreateVersionRequest, registrypb.CreateVersionResponse]) error {
	if f.createErr != nil {
		return f.createErr
	}
	var spec *registrypb.VersionSpec
	var data []byte
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if s := msg.GetSpec(); s != nil {
			spec = s
		}
		data = append(data, msg.GetChunk()...)
	}
	sum := sha256.Sum256(data)
	if spec == nil || int64(len(data)) != spec.GetArtifactSizeBytes() || hex.EncodeToString(sum[:]) != spec.GetArtifactSha256() {
		return status.Error(codes.InvalidArgument, "spec missing or artifact size/sha256 mismatch")
	}
	// The real Registry's shape check: what it serves takes batch 1 (or a
	// dynamic batch) of the spec's images.
	rt, err := onnxrt.Load(onnxrt.Config{})
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "onnxruntime: %v", err)
	}
	info, err := rt.Inspect(data)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "not a model ONNX Runtime can load: %v", err)
	}
	in, want := spec.GetInputSpec(), []int64{1, int64(spec.GetInputSpec().GetChannels()), int64(spec.GetInputSpec().GetHeight()), int64(spec.GetInputSpec().GetWidth())}
	if len(info.Inputs) != 1 || info.Inputs[0].Name != in.GetInputName() || len(info.Inputs[0].Shape) != 4 ||
		len(info.Outputs) != 1 || info.Outputs[0].Name != in.GetOutputName() {
		return status.Errorf(codes.InvalidArgument, "model inputs %v / outputs %v do not match the spec %v", info.Inputs, info.Outputs, in)
	}
	for i, d := range info.Inputs[0].Shape {
		if d != -1 && d != want[i] {
			return status.Errorf(codes.InvalidArgument, "input shape %v; want %v", info.Inputs[0].Shape, want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := &registrypb.Version{
		Model: spec.GetModel(), Version: int64(len(f.versions) + 1), Labels: spec.GetLabels(), InputSpec: spec.GetInputSpec(),
		Metrics: spec.GetMetrics(), HyperParameters: spec.GetHyperParameters(), Lineage: spec.GetLineage(),
		Architecture: spec.GetArchitecture(), Creator: spec.GetCreator(),
	}
	f.versions = append(f.versions, v)
	f.artifacts = append(f.artifacts, data)
	return stream.SendAndClose(&registrypb.CreateVersionResponse{Version: v})
}

func (f *fakeRegistry) GetModel(_ context.Context, req *registrypb.GetModelRequest) (*registrypb.GetModelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := &registrypb.Model{Name: req.GetName(), Aliases: map[string]int64{}}
	if v, ok := f.production[req.GetName()]; ok {
		m.Aliases["production"] = v
	}
	return &registrypb.GetModelResponse{Model: m}, nil
}

func (f *fakeRegistry) GetVersion(_ context.Context, req *registrypb.GetVersionRequest) (*registrypb.GetVersionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.versions {
		if v.GetModel() == req.GetModel() && v.GetVersion() == req.GetVersion() {
			return &registrypb.GetVersionResponse{Version: proto.Clone(v).(*registrypb.Version)}, nil
		}
	}
	return nil, status.Error(codes.NotFound, "no such version")
}

func (f *fakeRegistry) ListVersions(_ context.Context, req *registrypb.ListVersionsRequest) (*registrypb.ListVersionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &registrypb.ListVersionsResponse{}
	for _, v := range f.versions {
		if v.GetModel() == req.GetModel() {
			resp.Versions = append(resp.Versions, proto.Clone(v).(*registrypb.Version))
		}
	}
	if len(resp.Versions) == 0 {
		return nil, status.Errorf(codes.NotFound, "model %q not found", req.GetModel())
	}
	return resp, nil
}

func (f *fakeRegistry) DownloadArtifact(req *registrypb.DownloadArtifactRequest, stream grpc.ServerStreamingServer[registrypb.DownloadArtifactResponse]) error {
	f.mu.Lock()
	var data []byte
	found := false
	for i, v := range f.versions {
		if v.GetModel() == req.GetModel() && v.GetVersion() == req.GetVersion() && i < len(f.artifacts) && f.artifacts[i] != nil {
			data, found = f.artifacts[i], true
		}
	}
	f.mu.Unlock()
	if !found {
		return status.Error(codes.NotFound, "no such artifact")
	}
	sum := sha256.Sum256(data)
	for off := 0; off == 0 || off < len(data); off += 1 << 16 {
		msg := &registrypb.DownloadArtifactResponse{Chunk: data[off:min(off+1<<16, len(data))]}
		if off == 0 {
			msg.SizeBytes, msg.Sha256 = int64(len(data)), hex.EncodeToString(sum[:])
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

// upload adds a version as a user's upload would: no lineage, the given
// ONNX file.
func (f *fakeRegistry) upload(model string, labels []string, in *registrypb.InputSpec, arch string, data []byte) *registrypb.VersionRef {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := &registrypb.Version{
		Model: model, Version: int64(len(f.versions) + 1), Labels: labels, InputSpec: in, Architecture: arch,
		Creator: "alice", Lineage: &registrypb.Lineage{},
	}
	f.versions = append(f.versions, v)
	for len(f.artifacts) < len(f.versions)-1 {
		f.artifacts = append(f.artifacts, nil)
	}
	f.artifacts = append(f.artifacts, data)
	return &registrypb.VersionRef{Model: model, Version: v.Version}
}

func (f *fakeRegistry) SetAlias(_ context.Context, req *registrypb.SetAliasRequest) (*registrypb.SetAliasResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.production == nil {
		f.production = map[string]int64{}
	}
	f.production[req.GetModel()] = req.GetVersion()
	return &registrypb.SetAliasResponse{}, nil
}

// env is a trainer under test with fake Dataset and Registry services.
type env struct {
	client   trainerpb.TrainerServiceClient
	dataset  *fakeDataset
	registry *fakeRegistry
	blobs    blob.Store
	gdb      *gorm.DB
	workDir  string
	addr     string // the trainer's TCP address, for the CLI
	conn     *grpc.ClientConn
	dsConn   *grpc.ClientConn
	regConn  *grpc.ClientConn
	stop     func() // stops Run
}

type envOptions struct {
	noRun   bool // leave jobs queued
	gdb     *gorm.DB
	workDir string
	dataset *fakeDataset
	reg     *fakeRegistry
	blobs   blob.Store // shared with another env (fine-tuning across datasets)
	cfg     func(*trainer.Config)
	// panics recovers the service's panics (nil: uncounted).
	panics *panics.Guard
	// datasets, if set, wraps the Dataset client the service uses.
	datasets func(datasetpb.DatasetServiceClient) datasetpb.DatasetServiceClient
	// server changes how the trainer is served (TCP and NoRun are set
	// from the env).
	server grpctest.Options
	// metrics registers the service's series (nil: unregistered).
	metrics prometheus.Registerer
}

func newEnv(t testing.TB, dbCfg db.Config, o envOptions) *env {
	t.Helper()
	e := &env{dataset: o.dataset, registry: o.reg, gdb: o.gdb, workDir: o.workDir}
	if e.dataset == nil {
		e.dataset = &fakeDataset{name: "shapes", images: synthetic([]string{"left", "bottom", "top"}, 16, 4)}
	}
	if e.registry == nil {
		e.registry = &fakeRegistry{}
	}
	if e.gdb == nil {
		e.gdb = dbtest.Open(t, dbCfg)
	}
	if e.workDir == "" {
		e.workDir = t.TempDir()
	}
	e.dsConn = grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) {
		datasetpb.RegisterDatasetServiceServer(r, e.dataset)
	}), grpctest.Options{}).Conn
	e.regConn = grpctest.Start(t, grpctest.RegisterFunc(func(r grpc.ServiceRegistrar) {
		registrypb.RegisterRegistryServiceServer(r, e.registry)
	}), grpctest.Options{}).Conn

	var cfg trainer.Config
	cfg.RegisterFlags(flag.NewFlagSet("trainer", flag.ContinueOnError))
	cfg.WorkDir = e.workDir
	cfg.PollInterval = 50 * time.Millisecond
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	blobs := o.blobs
	if blobs == nil {
		var err error
		if blobs, err = blob.NewLocal(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	e.blobs = blobs
	datasets := datasetpb.NewDatasetServiceClient(e.dsConn)
	if o.datasets != nil {
		datasets = o.datasets(datasets)
	}
	svc, err := trainer.New(cfg, trainer.Deps{
		Log: testlog.New(t), DB: e.gdb, Blobs: blobs,
		Datasets: datasets, Registry: registrypb.NewRegistryServiceClient(e.regConn),
		ONNXRuntime: onnxrt.Config{}, Panics: o.panics, Metrics: o.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	so := o.server
	so.TCP, so.NoRun = true, o.noRun
	srv := grpctest.Start(t, svc, so)
	e.conn, e.addr, e.stop = srv.Conn, srv.Addr, srv.StopRun
	e.client = trainerpb.NewTrainerServiceClient(srv.Conn)
	return e
}

func (e *env) start(t testing.TB, spec *trainerpb.JobSpec) *trainerpb.Job {
	t.Helper()
	resp, err := e.client.StartTraining(t.Context(), &trainerpb.StartTrainingRequest{Spec: spec})
	if err != nil {
		t.Fatalf("StartTraining(%v) = %v", spec, err)
	}
	return resp.GetJob()
}

// watch collects a job's events from after until the stream ends.
func (e *env) watch(t testing.TB, id string, after int64) ([]*trainerpb.WatchJobResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	stream, err := e.client.WatchJob(ctx, &trainerpb.WatchJobRequest{JobId: id, AfterSequence: after})
	if err != nil {
		return nil, err
	}
	var out []*trainerpb.WatchJobResponse
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s = %v; want code %s", what, err, want)
	}
}

func needsTraining(t testing.TB) {
	t.Helper()
	if raceBuild {
		t.Skip("GoMLX training aborts under -race (checkptr in gomlx/compute); run without -race")
	}
}

// metricValue is the value of reg's series name{labels} (labels as
// name=value pairs, all of the series' labels), and whether it exists.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	want := strings.Join(labels, ",")
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
			if strings.Join(got, ",") != want {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// wantMetric fails t unless reg's series name{labels} is want.
func wantMetric(t testing.TB, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	if got, ok := metricValue(t, reg, name, labels...); !ok || got != want {
		t.Errorf("%s{%s} = %v (present: %v); want %v", name, strings.Join(labels, ","), got, ok, want)
	}
}
