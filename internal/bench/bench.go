// Package bench measures Inference against a running Shoal server: bare
// ONNX Runtime on the served model's own file with the server's session
// settings (no RPC), the Open Inference Protocol's ModelInfer with tensors,
// and gRPC Predict and REST /predict with an encoded JPEG, each at several
// concurrencies from a closed-loop load generator in this process. It
// prints Markdown tables for BENCHMARKS.md.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/auth"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
	"github.com/shoalml/shoal/internal/onnxrt"
)

// Config says what to measure and where.
type Config struct {
	GRPCAddr, HTTPAddr string
	Model              string
	Alias              string
	Token              string // sent with every call (the Registry needs read scope)
	// IntraOpThreads must be the server's --inference.intra-op-threads
	// (the server does not report it); sessions and the largest batch are
	// read from the server.
	IntraOpThreads int
	Batches        []int
	// MaxBatch is the server's --inference.max-batch-size: bare ONNX
	// Runtime's best is taken over the batches up to it, whatever
	// smaller batches the server chooses to form.
	MaxBatch      int
	Concurrency   []int
	Warmup, Point time.Duration
	ImageSize     int // the JPEG's width and height in pixels
	Connections   int // gRPC connections the load is spread over
	// Rounds of the paired ratio measurement (see Report.Rounds).
	Rounds int
	// OIPImages is the images per request of the second ModelInfer run,
	// which shows the serving path without the per-request RPC cost.
	OIPImages   int
	ONNXRuntime onnxrt.Config
}

// RegisterFlags registers the benchmark's flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddr, "grpc", "localhost:9090", "gRPC address of the Shoal server")
	fs.StringVar(&c.HTTPAddr, "http", "localhost:8080", "HTTP address of the Shoal server (REST /predict)")
	fs.StringVar(&c.Model, "model", "", "model to measure")
	fs.StringVar(&c.Alias, "alias", "production", "alias naming the version to measure")
	fs.StringVar(&c.Token, "token", os.Getenv("SHOAL_TOKEN"), "API token with read scope (env SHOAL_TOKEN)")
	fs.IntVar(&c.IntraOpThreads, "intra-op-threads", 1, "the server's --inference.intra-op-threads, used for the bare ONNX Runtime run")
	fs.IntVar(&c.MaxBatch, "max-batch", 8, "the server's --inference.max-batch-size: bare ONNX Runtime's best is taken up to it")
	fs.Func("batches", "bare ONNX Runtime batch sizes, comma-separated (default 1,2,4,8,16,32,64)", intList(&c.Batches))
	fs.Func("concurrency", "concurrent callers per load point, comma-separated (default 1,8,32,128)", intList(&c.Concurrency))
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "unmeasured warm-up before each point")
	fs.DurationVar(&c.Point, "duration", 5*time.Second, "measured time of each point")
	fs.IntVar(&c.ImageSize, "image-size", 300, "width and height of the JPEG sent to Predict and /predict")
	fs.IntVar(&c.Connections, "connections", 4, "gRPC connections the load is spread over")
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds of back-to-back bare and served runs at saturation, for the ratios")
	fs.IntVar(&c.OIPImages, "oip-images", 8, "images per request of the second ModelInfer run, at concurrencies up to 32 (0: skip it)")
	c.ONNXRuntime.RegisterFlags(fs)
}

func intList(dst *[]int) func(string) error {
	return func(s string) error {
		*dst = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("%q: want positive integers separated by commas", s)
			}
			*dst = append(*dst, n)
		}
		return nil
	}
}

// Validate fills defaults and reports settings that cannot work.
func (c *Config) Validate() error {
	if len(c.Batches) == 0 {
		c.Batches = []int{1, 2, 4, 8, 16, 32, 64}
	}
	if len(c.Concurrency) == 0 {
		c.Concurrency = []int{1, 8, 32, 128}
	}
	var errs []error
	if c.Model == "" {
		errs = append(errs, errors.New("--model is required"))
	}
	if c.Rounds < 0 {
		errs = append(errs, errors.New("--rounds must not be negative"))
	}
	if c.OIPImages < 0 {
		errs = append(errs, errors.New("--oip-images must not be negative"))
	}
	if c.IntraOpThreads <= 0 || c.ImageSize <= 0 || c.Connections <= 0 {
		errs = append(errs, errors.New("--intra-op-threads, --image-size and --connections must be positive"))
	}
	if c.Point <= 0 || c.Warmup < 0 {
		errs = append(errs, errors.New("--duration must be positive and --warmup not negative"))
	}
	return errors.Join(errs...)
}

// Report is one model's measurements.
type Report struct {
	Model        string
	Version      int64
	Architecture string
	Input        string // e.g. "1x28x28"
	Settings     SessionSettings
	MaxBatch     int
	ImageBytes   int
	ORT          []ORTPoint
	// WideThreads is the server's wide session's threads (0: none), and
	// WideORT bare ONNX Runtime in one session of that many threads: its
	// batch of 1 is the single-image latency at full threads.
	WideThreads int
	// WideOnly is true when the version runs its wide session alone.
	WideOnly bool
	WideORT  []ORTPoint
	// ConfiguredMaxBatch is the server's --inference.max-batch-size, which
	// bounds the batches BestORT considers; MaxBatch is the largest batch
	// the server forms for this version (see ListLoadedModels).
	ConfiguredMaxBatch int
	// LoadedBytes is what the server measured the version to hold.
	LoadedBytes int64
	// Rounds measure the ratios on a machine whose load moves: each round
	// runs bare ONNX Runtime at (a)'s best batch and then each served
	// target at its saturating concurrency, back to back.
	Rounds     []Round
	point      time.Duration
	ModelInfer []Stats
	// ModelInferBatched sends OIPImages images per ModelInfer request.
	OIPImages         int
	ModelInferBatched []Stats
	Predict           []Stats
	REST              []Stats
	// Floor is grpc.health.v1.Health/Check in a closed loop (one "image"
	// a call): the CPU any gRPC call costs the server and the generator.
	Floor Stats
}

// dial connects to a server's gRPC address in plaintext, sending token
// (when set) with every call.
func dial(addr, token string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Bearer(token)))
	}
	return grpc.NewClient(addr, opts...)
}

// Run measures cfg.Model's aliased version on the server and returns the
// report; progress goes to log.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Report, error) {
	rt, err := onnxrt.Load(cfg.ONNXRuntime)
	if err != nil {
		return nil, err
	}
	var conns []*grpc.ClientConn
	for range cfg.Connections {
		c, err := dial(cfg.GRPCAddr, cfg.Token)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		conns = append(conns, c)
	}
	reg := registrypb.NewRegistryServiceClient(conns[0])
	vr, err := reg.GetVersion(ctx, &registrypb.GetVersionRequest{Model: cfg.Model, Alias: cfg.Alias})
	if err != nil {
		return nil, fmt.Errorf("Registry.GetVersion(%s %s): %w", cfg.Model, cfg.Alias, err)
	}
	v := vr.GetVersion()
	onnx, err := download(ctx, reg, v.GetModel(), v.GetVersion())
	if err != nil {
		return nil, err
	}
	g, err := describe(rt, v, onnx)
	if err != nil {
		return nil, err
	}
	image := imagingtest.PhotoJPEG(cfg.ImageSize, cfg.ImageSize)
	loaded, err := waitLoaded(ctx, inferencepb.NewInferenceServiceClient(conns[0]), v.GetModel(), v.GetVersion(), image)
	if err != nil {
		return nil, err
	}
	imageShape := g.Classifier.Image.Shape(1)[1:] // one image: [C,H,W] or [H,W,C]
	threads := cfg.IntraOpThreads
	if n := int(loaded.GetIntraOpThreads()); n > 0 {
		threads = n // the server says
	}
	sessions, wideThreads, wideOnly := int(loaded.GetSessions()), int(loaded.GetWideSessionThreads()), false
	if sessions == 1 && wideThreads == 0 && threads > cfg.IntraOpThreads {
		// The version keeps its wide session alone (the server's
		// --inference.session-layout): bare ONNX Runtime still runs both
		// layouts, so that its best is the best of either.
		sessions, wideThreads, threads, wideOnly = threads/cfg.IntraOpThreads, threads, cfg.IntraOpThreads, true
	}
	r := &Report{Model: v.GetModel(), Version: v.GetVersion(), Architecture: v.GetArchitecture(),
		Input: strings.Trim(strings.Join(strings.Fields(fmt.Sprint(imageShape)), "x"), "[]"),
		Settings: SessionSettings{Sessions: sessions,
			SessionOptions: onnxrt.SessionOptions{IntraOpThreads: threads}},
		MaxBatch: int(loaded.GetMaxBatchSize()), ConfiguredMaxBatch: cfg.MaxBatch, WideThreads: wideThreads, WideOnly: wideOnly, LoadedBytes: loaded.GetLoadedBytes()}

	fmt.Fprintf(log, "bench: %s v%d (%s, %s): bare ONNX Runtime, %d sessions x %d intra-op threads\n",
		r.Model, r.Version, r.Architecture, r.Input, r.Settings.Sessions, r.Settings.IntraOpThreads)
	if r.ORT, err = MeasureORT(ctx, rt, g, r.Settings, cfg.Batches, cfg.Warmup, cfg.Point); err != nil {
		return nil, err
	}
	for _, p := range r.ORT {
		fmt.Fprintf(log, "  batch %3d: %8.1f images/s, CPU per image %v\n", p.Batch, p.ImagesPerSecond, p.CPU)
	}
	if r.WideThreads > 0 {
		fmt.Fprintf(log, "bench: bare ONNX Runtime, 1 session x %d intra-op threads (the wide session)\n", r.WideThreads)
		wide := SessionSettings{Sessions: 1, SessionOptions: onnxrt.SessionOptions{IntraOpThreads: r.WideThreads}}
		if r.WideORT, err = MeasureORT(ctx, rt, g, wide, cfg.Batches, cfg.Warmup, cfg.Point); err != nil {
			return nil, err
		}
		for _, p := range r.WideORT {
			fmt.Fprintf(log, "  batch %3d: %8.1f images/s, %v per batch, CPU per image %v\n", p.Batch, p.ImagesPerSecond, p.BatchLatency, p.CPU)
		}
	}
	infer := ModelInferCall(conns, r.Model, r.Version, g.Classifier.Input, imageShape, 1)
	r.ImageBytes = len(image)
	predict := PredictCall(conns, r.Model, r.Version, image)
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}
	defer httpClient.CloseIdleConnections()
	rest, err := RESTPredictCall(httpClient, "http://"+cfg.HTTPAddr, r.Model, r.Version, image)
	if err != nil {
		return nil, err
	}
	type target struct {
		name   string
		call   CallFunc
		images int
		most   int // highest concurrency; 0: all
		into   *[]Stats
	}
	targets := []target{{"OIP ModelInfer", infer, 1, 0, &r.ModelInfer}}
	if cfg.OIPImages > 0 {
		r.OIPImages = cfg.OIPImages
		// Up to 32 callers, so that the images queued stay within the
		// server's default queue of 512.
		targets = append(targets, target{fmt.Sprintf("OIP x%d", cfg.OIPImages),
			ModelInferCall(conns, r.Model, r.Version, g.Classifier.Input, imageShape, cfg.OIPImages), cfg.OIPImages, 32, &r.ModelInferBatched})
	}
	targets = append(targets, target{"gRPC Predict", predict, 1, 0, &r.Predict}, target{"REST /predict", rest, 1, 0, &r.REST})
	serverCPU := ServerCPU(&http.Client{Timeout: 10 * time.Second}, "http://"+cfg.HTTPAddr+"/metrics")
	for _, target := range targets {
		for _, c := range cfg.Concurrency {
			if target.most > 0 && c > target.most {
				continue
			}
			s := Load(ctx, c, target.images, cfg.Warmup, cfg.Point, target.call, serverCPU)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			fmt.Fprintf(log, "  %-14s c=%-3d %8.1f images/s p50 %v p99 %v errors %d; CPU per image: server %v, load generator %v\n",
				target.name, c, s.ImagesPerSecond, s.P50, s.P99, s.Errors, s.ServerCPU, s.ClientCPU)
			if s.Errors > 0 {
				fmt.Fprintf(log, "    first error: %v\n", s.FirstError)
			}
			*target.into = append(*target.into, s)
		}
	}
	// The floor of a gRPC call, at the most callers the sweeps use up to
	// 32: what any call costs the server and this load generator.
	floorAt := 1
	for _, c := range cfg.Concurrency {
		if c <= 32 {
			floorAt = max(floorAt, c)
		}
	}
	r.Floor = Load(ctx, floorAt, 1, cfg.Warmup, cfg.Point, HealthCheckCall(conns), serverCPU)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "  %-14s c=%-3d %8.1f calls/s; CPU per call: server %v, load generator %v\n",
		"Health.Check", r.Floor.Concurrency, r.Floor.ImagesPerSecond, r.Floor.ServerCPU, r.Floor.ClientCPU)
	best := r.BestORT()
	r.point = cfg.Point
	for range cfg.Rounds {
		var rd Round
		p, err := MeasureORT(ctx, rt, g, best.Settings, []int{best.Batch}, cfg.Warmup, cfg.Point)
		if err != nil {
			return nil, err
		}
		rd.ORT = p[0].ImagesPerSecond
		for _, target := range targets {
			sat := Saturation(*target.into)
			s := Load(ctx, sat.Concurrency, target.images, cfg.Warmup, cfg.Point, target.call, serverCPU)
			rd.Served = append(rd.Served, RoundPoint{Name: target.name, Concurrency: sat.Concurrency, ImagesPerSecond: s.ImagesPerSecond})
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "  round: bare %.1f images/s; served %+v\n", rd.ORT, rd.Served)
		r.Rounds = append(r.Rounds, rd)
	}
	return r, nil
}

// Round is one paired measurement: bare ONNX Runtime, then each served
// target at its saturating concurrency.
type Round struct {
	ORT    float64
	Served []RoundPoint
}

// RoundPoint is one served target's throughput in a round.
type RoundPoint struct {
	Name            string
	Concurrency     int
	ImagesPerSecond float64
}

// download reads a version's ONNX artifact from the Registry.
func download(ctx context.Context, reg registrypb.RegistryServiceClient, model string, version int64) ([]byte, error) {
	stream, err := reg.DownloadArtifact(ctx, &registrypb.DownloadArtifactRequest{Model: model, Version: version})
	if err != nil {
		return nil, fmt.Errorf("Registry.DownloadArtifact: %w", err)
	}
	var b []byte
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, fmt.Errorf("Registry.DownloadArtifact: %w", err)
		}
		b = append(b, msg.GetChunk()...)
	}
}

// describe works out the model's input and output tensors as Inference
// does (onnxrt.ModelInfo.Classifier on the version's input spec).
func describe(rt *onnxrt.Runtime, v *registrypb.Version, onnx []byte) (Graph, error) {
	info, err := rt.Inspect(onnx)
	if err != nil {
		return Graph{}, err
	}
	spec, err := imaging.SpecFromProto(v.GetInputSpec())
	if err != nil {
		return Graph{}, err
	}
	image := onnxrt.Image{Channels: spec.Channels, Height: spec.Height, Width: spec.Width, NHWC: spec.NHWC}
	c, err := info.Classifier(v.GetInputSpec().GetInputName(), v.GetInputSpec().GetOutputName(), image, len(v.GetLabels()))
	if err != nil {
		return Graph{}, fmt.Errorf("%s v%d: %w", v.GetModel(), v.GetVersion(), err)
	}
	return Graph{ONNX: onnx, Classifier: c}, nil
}

// waitLoaded asks Inference for the version until it answers (a version
// named by number loads on first use) and returns how it is loaded.
func waitLoaded(ctx context.Context, c inferencepb.InferenceServiceClient, model string, version int64, image []byte) (*inferencepb.LoadedModel, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := c.Predict(ctx, &inferencepb.PredictRequest{Model: model, Version: version, Images: [][]byte{image}})
		if err == nil {
			var resp *inferencepb.ListLoadedModelsResponse
			if resp, err = c.ListLoadedModels(ctx, &inferencepb.ListLoadedModelsRequest{}); err == nil {
				for _, m := range resp.GetModels() {
					if m.GetModel() == model && m.GetVersion() == version && m.GetReady() {
						return m, nil
					}
				}
				err = errors.New("not listed as loaded")
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s v%d not served by Inference: %w (last error: %v)", model, version, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
