package inference_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"image"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	oippb "github.com/shoalml/shoal/gen/inference"
	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/grpctest"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/onnxrt/onnxtest"
	"github.com/shoalml/shoal/internal/panics"
	"github.com/shoalml/shoal/internal/storage/blob"
	"github.com/shoalml/shoal/internal/testlog"
	"github.com/shoalml/shoal/services/inference"
)

// fakeRegistry is a real gRPC RegistryService holding versions and aliases
// in memory, with the Registry's GetVersion and WatchAliases semantics
// (CURRENT events, SYNCED, then SET/DELETED).
type fakeRegistry struct {
	registrypb.UnimplementedRegistryServiceServer
	mu       sync.Mutex
	versions map[string]map[int64]*registrypb.Version
	aliases  map[[2]string]int64
	rev      int64
	watchers map[chan *registrypb.WatchAliasesResponse]bool
	// reports are the serving reports received, in order; reported wakes
	// whoever waits for the next (see waitReport).
	reports  []*registrypb.ReportServingRequest
	reported chan struct{}
}

func (r *fakeRegistry) ReportServing(_ context.Context, req *registrypb.ReportServingRequest) (*registrypb.ReportServingResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, req)
	close(r.reported)
	r.reported = make(chan struct{})
	return &registrypb.ReportServingResponse{}, nil
}

// waitReport waits until a report received from the from-th on matches,
// and returns it with the index after it; it fails the test after 30s.
func (r *fakeRegistry) waitReport(t *testing.T, from int, what string, match func(*registrypb.ReportServingRequest) bool) (*registrypb.ReportServingRequest, int) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for ; from < len(r.reports); from++ {
			if match(r.reports[from]) {
				rep := r.reports[from]
				r.mu.Unlock()
				return rep, from + 1
			}
		}
		wake := r.reported
		r.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			r.mu.Lock()
			last := "none"
			if len(r.reports) > 0 {
				last = r.reports[len(r.reports)-1].String()
			}
			r.mu.Unlock()
			t.Fatalf("no serving report %s within 30s (last: %s)", what, last)
		}
	}
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{versions: map[string]map[int64]*registrypb.Version{}, aliases: map[[2]string]int64{},
		watchers: map[chan *registrypb.WatchAliasesResponse]bool{}, reported: make(chan struct{})}
}

func (r *fakeRegistry) GetVersion(_ context.Context, req *registrypb.GetVersionRequest) (*registrypb.GetVersionResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs, ok := r.versions[req.GetModel()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "model %q not found", req.GetModel())
	}
	n := req.GetVersion()
	if n == 0 {
		if n, ok = r.aliases[[2]string{req.GetModel(), req.GetAlias()}]; !ok {
			return nil, status.Errorf(codes.NotFound, "model %q has no alias %q", req.GetModel(), req.GetAlias())
		}
	}
	v, ok := vs[n]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "model %q has no version %d", req.GetModel(), n)
	}
	return &registrypb.GetVersionResponse{Version: v}, nil
}

func (r *fakeRegistry) WatchAliases(_ *registrypb.WatchAliasesRequest, stream grpc.ServerStreamingServer[registrypb.WatchAliasesResponse]) error {
	ch := make(chan *registrypb.WatchAliasesResponse, 100)
	r.mu.Lock()
	var initial []*registrypb.WatchAliasesResponse
	for k, v := range r.aliases {
		initial = append(initial, &registrypb.WatchAliasesResponse{Type: registrypb.AliasEventType_ALIAS_EVENT_TYPE_CURRENT,
			Alias: &registrypb.Alias{Model: k[0], Alias: k[1], Version: v}, Revision: r.rev})
	}
	initial = append(initial, &registrypb.WatchAliasesResponse{Type: registrypb.AliasEventType_ALIAS_EVENT_TYPE_SYNCED, Revision: r.rev})
	r.watchers[ch] = true
	r.mu.Unlock()
	defer func() { r.mu.Lock(); delete(r.watchers, ch); r.mu.Unlock() }()
	for _, ev := range initial {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	for {
		select {
		case ev := <-ch:
			if ev == nil {
				return status.Error(codes.Unavailable, "registry restarting")
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// cutWatches ends every open WatchAliases stream with UNAVAILABLE and
// holds alias changes back from them (as if the Registry were down) until
// the watchers reconnect.
func (r *fakeRegistry) cutWatches() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.watchers {
		ch <- nil
		delete(r.watchers, ch)
	}
}

// setAliasQuietly changes an alias without telling the watchers.
func (r *fakeRegistry) setAliasQuietly(model, alias string, version int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aliases[[2]string{model, alias}] = version
	r.rev++
}

// setAlias points model's alias at version and tells the watchers.
func (r *fakeRegistry) setAlias(model, alias string, version int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aliases[[2]string{model, alias}] = version
	r.rev++
	for ch := range r.watchers {
		ch <- &registrypb.WatchAliasesResponse{Type: registrypb.AliasEventType_ALIAS_EVENT_TYPE_SET,
			Alias: &registrypb.Alias{Model: model, Alias: alias, Version: version}, Revision: r.rev}
	}
}

// testModel is a classifier version: its ONNX graph and how to compute its
// expected output in Go.
type testModel struct {
	c      onnxtest.Classifier
	spec   *registrypb.InputSpec
	labels []string
}

func newTestModel(seed byte) testModel {
	c := onnxtest.Classifier{Channels: 3, Height: 4, Width: 4, Classes: 3, WeightsFromSeed: seed}
	return testModel{c: c, labels: []string{"cat", "dog", "fish"},
		spec: &registrypb.InputSpec{Channels: 3, Height: 4, Width: 4, ResizeMode: registrypb.ResizeMode_RESIZE_MODE_STRETCH,
			Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}, Layout: registrypb.TensorLayout_TENSOR_LAYOUT_NCHW}}
}

// expect is the model's probabilities for an encoded image, computed in Go
// the way onnxtest builds the graph (Gemm with w[i][k], bias k) plus the
// softmax that either the graph or the server applies.
func (m testModel) expect(t *testing.T, img []byte) []float64 {
	t.Helper()
	spec, err := imaging.SpecFromProto(m.spec)
	if err != nil {
		t.Fatal(err)
	}
	decoded, _, err := imaging.DecodeFor(img, spec, imaging.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return m.probabilities(t, decoded)
}

// probabilities is the model's probabilities for a decoded image.
func (m testModel) probabilities(t *testing.T, decoded image.Image) []float64 {
	t.Helper()
	spec, err := imaging.SpecFromProto(m.spec)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, spec.Size())
	if err := imaging.Preprocess(decoded, spec, x); err != nil {
		t.Fatal(err)
	}
	classes := int(m.c.Classes)
	logits := make([]float64, classes)
	for k := range classes {
		logits[k] = float64(k)
		for i, v := range x {
			w := float32((i*classes+k+int(m.c.WeightsFromSeed))%7-3) / 100
			logits[k] += float64(v) * float64(w)
		}
	}
	hi := math.Inf(-1)
	for _, l := range logits {
		hi = math.Max(hi, l)
	}
	sum := 0.0
	for i := range logits {
		logits[i] = math.Exp(logits[i] - hi)
		sum += logits[i]
	}
	for i := range logits {
		logits[i] /= sum
	}
	return logits
}

type env struct {
	reg     *fakeRegistry
	blobs   blob.Store
	conn    *grpc.ClientConn
	addr    string // TCP address of the same server, for the CLI
	client  inferencepb.InferenceServiceClient
	oip     oippb.GRPCInferenceServiceClient
	models  map[string]map[int64]testModel
	metrics *prometheus.Registry
	stop    func() // stops Run
}

type envOptions struct {
	cfg func(*inference.Config)
	// blobs, if set, wraps the blob store the service reads.
	blobs func(blob.Store) blob.Store
	// svc, if set, sees the service before it starts.
	svc func(*inference.Service)
	// panics recovers the service's panics (nil: uncounted).
	panics *panics.Guard
	// registry, if set, wraps the Registry client the service uses.
	registry func(registrypb.RegistryServiceClient) registrypb.RegistryServiceClient
	// log, if set, wraps the handler of the service's log.
	log func(slog.Handler) slog.Handler
}

func defaultConfig() inference.Config {
	var cfg inference.Config
	cfg.RegisterFlags(flag.NewFlagSet("inference", flag.ContinueOnError))
	cfg.DefaultModel = "pets"
	// Versions keep their wide sessions however they time, so that their
	// layouts and sizes do not depend on the machine's speed at load;
	// TestWideSessionOnlyWhereFaster checks the choice.
	cfg.WideSessionMinGain = 0
	return cfg
}

func newEnv(t *testing.T, opts envOptions) *env {
	t.Helper()
	onnxtest.Runtime(t)
	e := &env{reg: newFakeRegistry(), models: map[string]map[int64]testModel{}, metrics: prometheus.NewRegistry()}
	var err error
	if e.blobs, err = blob.NewLocal(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	regConn := grpctest.Start(t, e.reg, grpctest.Options{}).Conn
	cfg := defaultConfig()
	if opts.cfg != nil {
		opts.cfg(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	blobs := blob.Store(e.blobs)
	if opts.blobs != nil {
		blobs = opts.blobs(blobs)
	}
	reg := registrypb.NewRegistryServiceClient(regConn)
	if opts.registry != nil {
		reg = opts.registry(reg)
	}
	log := testlog.New(t)
	if opts.log != nil {
		log = slog.New(opts.log(log.Handler()))
	}
	svc, err := inference.New(cfg, inference.Deps{Log: log, Blobs: blobs,
		Registry: reg, Version: "test", Metrics: e.metrics, Panics: opts.panics})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if opts.svc != nil {
		opts.svc(svc)
	}
	srv := grpctest.Start(t, svc, grpctest.Options{TCP: true})
	e.conn, e.addr, e.stop = srv.Conn, srv.Addr, srv.StopRun
	e.client = inferencepb.NewInferenceServiceClient(srv.Conn)
	e.oip = oippb.NewGRPCInferenceServiceClient(srv.Conn)
	return e
}

// Register makes the fake a grpctest.Service.
func (r *fakeRegistry) Register(s grpc.ServiceRegistrar) {
	registrypb.RegisterRegistryServiceServer(s, r)
}

// addVersion stores m's artifact in the blob store as the Registry does and
// registers it as model's version n.
func (e *env) addVersion(t *testing.T, model string, n int64, m testModel) {
	t.Helper()
	onnx := m.c.Bytes()
	e.addVersionBytes(t, model, n, m, onnx)
}

func (e *env) addVersionBytes(t *testing.T, model string, n int64, m testModel, onnx []byte) {
	t.Helper()
	sum := sha256.Sum256(onnx)
	sha := hex.EncodeToString(sum[:])
	key := "artifacts/" + sha // any key: Inference reads the one the version gives
	if err := e.blobs.Put(t.Context(), key, bytes.NewReader(onnx), int64(len(onnx))); err != nil {
		t.Fatal(err)
	}
	e.reg.mu.Lock()
	defer e.reg.mu.Unlock()
	if e.reg.versions[model] == nil {
		e.reg.versions[model] = map[int64]*registrypb.Version{}
	}
	e.reg.versions[model][n] = &registrypb.Version{Model: model, Version: n, Labels: m.labels, InputSpec: m.spec,
		Artifact: &registrypb.Artifact{Sha256: sha, SizeBytes: int64(len(onnx)), Format: "onnx", BlobKey: key}}
	if e.models[model] == nil {
		e.models[model] = map[int64]testModel{}
	}
	e.models[model][n] = m
}

// check compares a Predict response with the Go computation of the version
// it names.
func (e *env) check(t *testing.T, resp *inferencepb.PredictResponse, images [][]byte) error {
	m, ok := e.models[resp.GetModel()][resp.GetVersion()]
	if !ok {
		return fmt.Errorf("response names %s v%d, which does not exist", resp.GetModel(), resp.GetVersion())
	}
	if len(resp.GetResults()) != len(images) {
		return fmt.Errorf("%d results for %d images", len(resp.GetResults()), len(images))
	}
	for i, img := range images {
		want := m.expect(t, img)
		labels := resp.GetResults()[i].GetLabels()
		if len(labels) == 0 {
			return fmt.Errorf("image %d: no labels", i)
		}
		for j, l := range labels {
			if d := math.Abs(float64(l.GetProbability()) - want[l.GetIndex()]); d > 1e-5 {
				return fmt.Errorf("%s v%d image %d: P(%s) = %v; want %v", resp.GetModel(), resp.GetVersion(), i, l.GetLabel(), l.GetProbability(), want[l.GetIndex()])
			}
			if l.GetLabel() != m.labels[l.GetIndex()] {
				return fmt.Errorf("label %d = %q; want %q", l.GetIndex(), l.GetLabel(), m.labels[l.GetIndex()])
			}
			if j > 0 && l.GetProbability() > labels[j-1].GetProbability() {
				return fmt.Errorf("image %d: labels not in decreasing probability", i)
			}
		}
	}
	return nil
}
