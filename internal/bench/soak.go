package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	inferencepb "github.com/shoalml/shoal/gen/shoal/inference/v1"
	registrypb "github.com/shoalml/shoal/gen/shoal/registry/v1"
	"github.com/shoalml/shoal/internal/imaging"
	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// SoakConfig says how to overload a running server and what it is held to.
type SoakConfig struct {
	GRPCAddr, HTTPAddr string
	Model, Alias       string
	// Token is sent with the gRPC calls (the Registry needs read scope);
	// /predict is sent without one, as an anonymous client's.
	Token string
	// PID is the server's process, whose memory is read from /proc.
	PID int
	// Saturation is measured by a closed loop of SaturationCallers for
	// SaturationTime (after Warmup); then Factor times its throughput is
	// offered by an open loop for Duration.
	SaturationCallers int
	Warmup            time.Duration
	SaturationTime    time.Duration
	Duration          time.Duration
	Factor            float64
	ImageSize         int
	// MaxOutstanding bounds the open loop's requests in flight; a request
	// due beyond it is not sent and fails the soak.
	MaxOutstanding int
	// Connections bounds the HTTP connections to the server, as a pool of
	// kept-alive connections behind a load balancer would: without it,
	// every request past the idle ones opens a connection, and the
	// kernel's accept queue, not the server, decides what waits.
	Connections    int
	RequestTimeout time.Duration
	// Client is the generator's HTTP client: "lean" (LeanPredictCall,
	// the default: it shares the server's cores, and takes less of them)
	// or "net/http" (Go's client, as RESTPredictCall).
	Client string
	// During are shell commands started with the open loop (an import, a
	// training job); each must succeed, within Background of the start.
	During     []string
	Background time.Duration
	// CommandsAlone runs the commands once without load first, so their
	// own memory is known: a training job in the server's process needs
	// memory no queue or message limit bounds (ONNX Runtime's arenas when
	// it trains there), and the memory criterion then holds the load to
	// adding at most those limits to the commands' own peak.
	CommandsAlone bool
	// QueueSize and MaxMessageBytes are the server's --inference.queue-size
	// and --grpc.max-message-bytes: they make the memory bound.
	QueueSize       int
	MaxMessageBytes int64
	// SaturationOnly ends the soak after the saturation phase (a first
	// measurement to set the server's latency target from).
	SaturationOnly bool
	// SaturationAfter measures the saturation again once the overload and
	// the commands have ended and the server has settled; the criteria
	// then hold the overload to the mean of both measurements. On this
	// kind of machine one 30 s measurement moved by up to a fifth from the
	// next (RELIABILITY.md, Overload and soak): measurements on both sides
	// of the overload bracket what the machine gave during it.
	SaturationAfter bool
	// LatencyTarget is the server's --inference.latency-target, reported.
	LatencyTarget time.Duration
	// Settle is how long goroutines and open files may take to return to
	// their baseline after the load and the commands end; GoroutineSlack
	// and FDSlack are how far above it they may stay.
	Settle                  time.Duration
	GoroutineSlack, FDSlack int
}

// RegisterFlags registers the soak's flags.
func (c *SoakConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.GRPCAddr, "grpc", "localhost:9090", "gRPC address of the Shoal server")
	fs.StringVar(&c.HTTPAddr, "http", "localhost:8080", "HTTP address of the Shoal server (REST /predict, /metrics)")
	fs.StringVar(&c.Model, "model", "fashion", "model to load")
	fs.StringVar(&c.Alias, "alias", "production", "alias naming the version to load")
	fs.StringVar(&c.Token, "token", os.Getenv("SHOAL_TOKEN"), "API token with read scope (env SHOAL_TOKEN)")
	fs.IntVar(&c.PID, "pid", 0, "the server's process id (its memory is read from /proc)")
	fs.IntVar(&c.SaturationCallers, "saturation-callers", 32, "closed-loop callers measuring the saturation throughput")
	fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "unmeasured warm-up before the saturation measurement")
	fs.DurationVar(&c.SaturationTime, "saturation-time", 30*time.Second, "measured time of the saturation throughput")
	fs.DurationVar(&c.Duration, "duration", 10*time.Minute, "how long the open loop offers the overload")
	fs.Float64Var(&c.Factor, "factor", 2, "offered rate as a multiple of the saturation throughput")
	fs.IntVar(&c.ImageSize, "image-size", 300, "width and height of the JPEG sent to /predict")
	fs.IntVar(&c.MaxOutstanding, "max-outstanding", 20000, "most open-loop requests in flight")
	fs.IntVar(&c.Connections, "connections", 256, "most HTTP connections to the server (kept alive)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 60*time.Second, "client deadline of each request")
	fs.StringVar(&c.Client, "client", "lean", "the generator's HTTP client: lean (a request prepared once, on raw kept-alive connections) or net/http")
	fs.Func("during", "shell command run while the overload is offered; repeatable; each must succeed", func(s string) error {
		c.During = append(c.During, s)
		return nil
	})
	fs.BoolVar(&c.CommandsAlone, "commands-alone", true,
		"run the --during commands once without load first and bound the memory under load by their own peak plus the queue and message limits")
	fs.DurationVar(&c.Background, "background-timeout", 20*time.Minute, "how long the --during commands may take")
	fs.IntVar(&c.QueueSize, "queue-size", 512, "the server's --inference.queue-size")
	fs.Int64Var(&c.MaxMessageBytes, "max-message-bytes", 64<<20, "the server's --grpc.max-message-bytes")
	fs.BoolVar(&c.SaturationOnly, "saturation-only", false, "measure the saturation throughput and p99 only, and print them")
	fs.BoolVar(&c.SaturationAfter, "saturation-after", true, "measure the saturation again after the overload and hold the overload to the mean of both measurements")
	fs.DurationVar(&c.LatencyTarget, "latency-target", 0, "the server's --inference.latency-target (reported)")
	fs.DurationVar(&c.Settle, "settle", 2*time.Minute, "how long goroutines and open files may take to return to their baseline")
	fs.IntVar(&c.GoroutineSlack, "goroutine-slack", 5, "goroutines above the baseline still counted as returned")
	fs.IntVar(&c.FDSlack, "fd-slack", 2, "open files above the baseline still counted as returned")
}

// Validate reports settings that cannot work.
func (c *SoakConfig) Validate() error {
	var errs []error
	if c.PID <= 0 {
		errs = append(errs, errors.New("--pid is required"))
	}
	if c.SaturationCallers <= 0 || c.MaxOutstanding <= 0 || c.Connections <= 0 || c.ImageSize <= 0 || c.QueueSize <= 0 {
		errs = append(errs, errors.New("--saturation-callers, --max-outstanding, --image-size and --queue-size must be positive"))
	}
	if c.Client != "lean" && c.Client != "net/http" {
		errs = append(errs, fmt.Errorf("--client %q: want lean or net/http", c.Client))
	}
	if c.Duration <= 0 || c.SaturationTime <= 0 || c.Factor <= 0 {
		errs = append(errs, errors.New("--duration, --saturation-time and --factor must be positive"))
	}
	return errors.Join(errs...)
}

// Level is one reading of the server's resources.
type Level struct {
	Goroutines, FDs int
	RSS             int64
}

// PhaseCPU is the CPU the generator (this process) and the server used in
// a phase of the soak, which share the machine's cores.
type PhaseCPU struct {
	Elapsed           time.Duration
	Generator, Server time.Duration
}

// SoakReport is what a soak measured.
type SoakReport struct {
	Config  SoakConfig
	Machine string
	// ServerCores is the CPU time the server's cgroup allows it, in
	// cores (0: no quota; the generator then takes its CPU from the
	// server's).
	ServerCores float64
	LoadBefore  string
	LoadAfter   string
	Model       string
	Version     int64
	Saturation  Stats
	// SaturationAfter is the second saturation measurement, after the
	// overload (Requests 0 when not made).
	SaturationAfter Stats
	Overload        LoopStats
	// SaturationCPU, OverloadCPU and SaturationAfterCPU are the CPU used
	// in those phases.
	SaturationCPU, OverloadCPU, SaturationAfterCPU PhaseCPU
	Baseline, After                                Level
	// Peak is the highest RSS from the start of the overload to the end
	// of the commands (VmHWM after a reset; else the highest sampled).
	Peak, PeakSampled int64
	PeakGoroutines    int
	PeakFDs           int
	ImageBytes        int
	TensorBytes       int64
	Commands          []CommandResult
	// Alone is how the commands ended when run without load, and AlonePeak
	// the server's peak RSS meanwhile (0 when not run).
	Alone           []CommandResult
	AlonePeak       int64
	SettledIn       time.Duration
	PeakResetFailed error
	// DecodeBytes is what decoding and preprocessing the soak's image once
	// allocates (measured in this process, as the server does it), and
	// Admitted the version's admission bound in images before the load.
	DecodeBytes, Admitted int64
	QueueBound, MsgBound  int64
}

// CommandResult is how a --during command ended.
type CommandResult struct {
	Command string
	Took    time.Duration
	Err     error
}

// Soak measures the saturation throughput of REST /predict, then offers
// cfg.Factor times it for cfg.Duration while cfg.During run, sampling the
// server's memory, goroutines and open files, and waits for those to
// settle afterwards. Progress goes to log.
func Soak(ctx context.Context, cfg SoakConfig, log io.Writer) (*SoakReport, error) {
	r := &SoakReport{Config: cfg, Machine: machine(), LoadBefore: loadAverage()}
	cores, err := CPUQuota(cfg.PID)
	if err != nil {
		return nil, fmt.Errorf("the server's CPU quota: %w", err)
	}
	r.ServerCores = cores
	conn, err := dial(cfg.GRPCAddr, cfg.Token)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	vr, err := registrypb.NewRegistryServiceClient(conn).GetVersion(ctx, &registrypb.GetVersionRequest{Model: cfg.Model, Alias: cfg.Alias})
	if err != nil {
		return nil, fmt.Errorf("Registry.GetVersion(%s %s): %w", cfg.Model, cfg.Alias, err)
	}
	v := vr.GetVersion()
	r.Model, r.Version = v.GetModel(), v.GetVersion()
	spec, err := imaging.SpecFromProto(v.GetInputSpec())
	if err != nil {
		return nil, err
	}
	r.TensorBytes = int64(spec.Size()) * 4
	image := imagingtest.PhotoJPEG(cfg.ImageSize, cfg.ImageSize)
	r.ImageBytes = len(image)
	if r.DecodeBytes, err = preprocessBytes(image, spec); err != nil {
		return nil, err
	}
	if _, err := waitLoaded(ctx, inferencepb.NewInferenceServiceClient(conn), r.Model, r.Version, image); err != nil {
		return nil, err
	}
	metricsURL := "http://" + cfg.HTTPAddr + "/metrics"
	probe := &http.Client{Timeout: 10 * time.Second}
	// The version's admission bound before any load: its largest, which
	// the latency target only shrinks from.
	limitName := fmt.Sprintf(`shoal_inference_admission_limit{model=%q,version="%d"}`, r.Model, r.Version)
	if m, err := Metrics(ctx, probe, metricsURL, limitName); err != nil {
		return nil, err
	} else if r.Admitted = int64(m[limitName]); r.Admitted == 0 {
		return nil, fmt.Errorf("%s: not in the server's /metrics", limitName)
	}
	var (
		rest       CallFunc
		closeConns func()
	)
	switch cfg.Client {
	case "net/http":
		httpClient := &http.Client{Timeout: cfg.RequestTimeout,
			Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Connections, MaxConnsPerHost: cfg.Connections}}
		rest, err = RESTPredictCall(httpClient, "http://"+cfg.HTTPAddr, r.Model, r.Version, image)
		closeConns = httpClient.CloseIdleConnections
	default:
		// The pool's connections are closed between the phases: the
		// baseline and the end count the server's open files without them.
		rest, closeConns, err = LeanPredictCall(cfg.HTTPAddr, cfg.Connections, cfg.RequestTimeout, r.Model, r.Version, image)
	}
	if err != nil {
		return nil, err
	}
	serverCPU := ServerCPU(probe, metricsURL)
	// phaseCPU measures the generator's and the server's CPU over fn.
	phaseCPU := func(fn func()) PhaseCPU {
		g0, _ := SelfCPU(ctx)
		s0, serr := serverCPU(ctx)
		start := time.Now()
		fn()
		g1, _ := SelfCPU(ctx)
		s1, serr1 := serverCPU(ctx)
		p := PhaseCPU{Elapsed: time.Since(start), Generator: g1 - g0}
		if serr == nil && serr1 == nil {
			p.Server = s1 - s0
		}
		return p
	}

	// saturation measures the closed loop once (phase names it in the log).
	saturation := func(phase string) (Stats, PhaseCPU) {
		fmt.Fprintf(log, "soak: %s v%d: %s, %d callers for %v after %v\n", r.Model, r.Version, phase, cfg.SaturationCallers, cfg.SaturationTime, cfg.Warmup)
		var s Stats
		cpu := phaseCPU(func() { s = Load(ctx, cfg.SaturationCallers, 1, cfg.Warmup, cfg.SaturationTime, rest, nil) })
		fmt.Fprintf(log, "soak: %s %.1f requests/s, p99 %v, errors %d\n", phase, s.ImagesPerSecond, s.P99, s.Errors)
		return s, cpu
	}

	r.Saturation, r.SaturationCPU = saturation("saturation")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.Saturation.ImagesPerSecond == 0 {
		return nil, fmt.Errorf("saturation: no request answered (first error: %v)", r.Saturation.FirstError)
	}
	if cfg.SaturationOnly {
		return r, nil
	}

	closeConns()
	if r.Baseline, err = settled(ctx, cfg, probe, metricsURL, nil, 30*time.Second); err != nil {
		return nil, err
	}
	if cfg.CommandsAlone && len(cfg.During) > 0 {
		if err := r.commandsAlone(ctx, cfg, probe, metricsURL, log); err != nil {
			return nil, err
		}
	}
	r.PeakResetFailed = ResetPeak(cfg.PID)
	fmt.Fprintf(log, "soak: baseline %d goroutines, %d open files, RSS %s\n", r.Baseline.Goroutines, r.Baseline.FDs, mib(r.Baseline.RSS))

	rate := cfg.Factor * r.Saturation.ImagesPerSecond
	fmt.Fprintf(log, "soak: offering %.1f requests/s for %v with %d commands\n", rate, cfg.Duration, len(cfg.During))
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		r.sample(sampleCtx, cfg.PID, probe, metricsURL, log)
	}()
	r.Commands = runAll(ctx, cfg.During, cfg.Background, log, func() {
		r.OverloadCPU = phaseCPU(func() {
			r.Overload = OpenLoop(ctx, rate, cfg.Duration, cfg.MaxOutstanding, rest)
		})
		fmt.Fprintf(log, "soak: overload done: %v, accepted %.1f/s, p99 %v\n", r.Overload.Counts, r.Overload.Accepted, r.Overload.P99)
	})
	stopSampling()
	<-sampled
	if m, err := ReadMemory(cfg.PID); err == nil && r.PeakResetFailed == nil {
		r.Peak = m.Peak
	} else {
		r.Peak = r.PeakSampled
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	closeConns()
	start := time.Now()
	r.After, err = settled(ctx, cfg, probe, metricsURL, &r.Baseline, cfg.Settle)
	if err != nil {
		return nil, err
	}
	r.SettledIn = time.Since(start)
	if cfg.SaturationAfter {
		r.SaturationAfter, r.SaturationAfterCPU = saturation("saturation after the overload")
		closeConns()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	// Each admitted image holds its JPEG, its tensor and, while it is
	// decoded, what decoding and preprocessing allocate; a Go heap grows
	// to twice what it holds before it collects (GOGC=100).
	r.QueueBound = 2 * r.Admitted * (r.TensorBytes + int64(r.ImageBytes) + r.DecodeBytes)
	r.MsgBound = 2 * cfg.MaxMessageBytes
	r.LoadAfter = loadAverage()
	return r, nil
}

// commandsAlone runs the commands without load, keeps the server's peak
// RSS meanwhile in r.AlonePeak, and takes the baseline again once the
// server has settled.
func (r *SoakReport) commandsAlone(ctx context.Context, cfg SoakConfig, probe *http.Client, url string, log io.Writer) error {
	fmt.Fprintf(log, "soak: the %d commands alone, without load, for their own memory (idle RSS %s)\n", len(cfg.During), mib(r.Baseline.RSS))
	resetErr := ResetPeak(cfg.PID)
	// The same sampling as under load, into a report of its own, so the
	// load's peaks start from nothing.
	var alone SoakReport
	sampleCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		alone.sample(sampleCtx, cfg.PID, probe, url, log)
	}()
	r.Alone = runAll(ctx, cfg.During, cfg.Background, log, func() {})
	stop()
	<-done
	r.AlonePeak = alone.PeakSampled
	if m, err := ReadMemory(cfg.PID); err == nil && resetErr == nil {
		r.AlonePeak = m.Peak
	}
	for _, c := range r.Alone {
		if c.Err != nil {
			return fmt.Errorf("without load, %q failed: %w", c.Command, c.Err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	r.Baseline, err = settled(ctx, cfg, probe, url, nil, 30*time.Second)
	fmt.Fprintf(log, "soak: the commands alone peaked at RSS %s\n", mib(r.AlonePeak))
	return err
}

// sample reads memory, goroutines and open files every second until ctx
// ends, keeping the highest.
func (r *SoakReport) sample(ctx context.Context, pid int, probe *http.Client, url string, log io.Writer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for n := 0; ; n++ {
		if m, err := ReadMemory(pid); err == nil {
			r.PeakSampled = max(r.PeakSampled, m.RSS)
		}
		lv, err := level(ctx, pid, probe, url)
		if err == nil {
			r.PeakGoroutines = max(r.PeakGoroutines, lv.Goroutines)
			r.PeakFDs = max(r.PeakFDs, lv.FDs)
			if n%30 == 0 {
				fmt.Fprintf(log, "soak: %d goroutines, %d open files, RSS %s\n", lv.Goroutines, lv.FDs, mib(lv.RSS))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func level(ctx context.Context, pid int, probe *http.Client, url string) (Level, error) {
	m, err := Metrics(ctx, probe, url, "go_goroutines", "process_open_fds")
	if err != nil {
		return Level{}, err
	}
	mem, err := ReadMemory(pid)
	if err != nil {
		return Level{}, err
	}
	return Level{Goroutines: int(m["go_goroutines"]), FDs: int(m["process_open_fds"]), RSS: mem.RSS}, nil
}

// settled reads the server's level every second until it is at or under
// base (plus the slack), or, with no base, until two readings in a row
// agree; after within it returns the last reading.
func settled(ctx context.Context, cfg SoakConfig, probe *http.Client, url string, base *Level, within time.Duration) (Level, error) {
	deadline := time.Now().Add(within)
	var prev Level
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for first := true; ; first = false {
		lv, err := level(ctx, cfg.PID, probe, url)
		if err != nil {
			return Level{}, err
		}
		switch {
		case base != nil && lv.Goroutines <= base.Goroutines+cfg.GoroutineSlack && lv.FDs <= base.FDs+cfg.FDSlack:
			return lv, nil
		case base == nil && !first && lv.Goroutines == prev.Goroutines && lv.FDs == prev.FDs:
			return lv, nil
		case time.Now().After(deadline):
			return lv, nil
		}
		prev = lv
		select {
		case <-ctx.Done():
			return Level{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// runAll starts the commands, runs load meanwhile and then waits for the
// commands (each up to timeout from its start).
func runAll(ctx context.Context, commands []string, timeout time.Duration, log io.Writer, load func()) []CommandResult {
	results := make([]CommandResult, len(commands))
	var wg sync.WaitGroup
	for i, c := range commands {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			// The commands are the caller's own (scripts/soak.sh), run as given.
			cmd := exec.CommandContext(ctx, "sh", "-c", c) //nolint:gosec // see above
			cmd.Stdout, cmd.Stderr = log, log
			cmd.Env = os.Environ()
			err := cmd.Run()
			results[i] = CommandResult{Command: c, Took: time.Since(start), Err: err}
			fmt.Fprintf(log, "soak: %q ended after %v: %v\n", c, results[i].Took.Round(time.Second), err)
		})
	}
	load()
	wg.Wait()
	return results
}

// preprocessBytes is what decoding and preprocessing image to spec
// allocates, on average over a few rounds, measured as the server does it.
func preprocessBytes(image []byte, spec imaging.Spec) (int64, error) {
	const rounds = 16
	dst := make([]float32, spec.Size())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range rounds {
		img, _, err := imaging.DecodeFor(image, spec, imaging.Limits{})
		if err != nil {
			return 0, fmt.Errorf("the soak's image: %w", err)
		}
		if err := imaging.Preprocess(img, spec, dst); err != nil {
			return 0, fmt.Errorf("the soak's image: %w", err)
		}
	}
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc-before.TotalAlloc) / rounds, nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
