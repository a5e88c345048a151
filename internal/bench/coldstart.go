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
	"slices"
	"syscall"
	"time"
)

// ColdStartConfig is what `shoal-bench coldstart` starts and waits for.
type ColdStartConfig struct {
	// Command is the server's command line (e.g. bin/shoal serve ...),
	// started in Dir with the process's environment.
	Command []string
	Dir     string
	// HTTPAddr is where Command serves /readyz and OIP's model readiness.
	HTTPAddr string
	// Model is the model whose production version the server loads at
	// start (its --inference.default-model).
	Model string
	Token string
	Runs  int
	// Timeout bounds one start.
	Timeout time.Duration
	// Header prints the table's header above its row.
	Header bool
}

// RegisterFlags adds the coldstart flags; the command follows "--".
func (c *ColdStartConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Dir, "dir", ".", "folder the server runs in (its ./data)")
	fs.StringVar(&c.HTTPAddr, "http", "localhost:8080", "HTTP address the server listens on")
	fs.StringVar(&c.Model, "model", "", "model the server loads at start (its --inference.default-model)")
	fs.StringVar(&c.Token, "token", os.Getenv("SHOAL_TOKEN"), "API token with read scope (env SHOAL_TOKEN)")
	fs.IntVar(&c.Runs, "runs", 3, "starts to measure")
	fs.DurationVar(&c.Timeout, "timeout", 60*time.Second, "longest wait for one start")
	fs.BoolVar(&c.Header, "header", true, "print the table's header above its row")
}

// Validate checks the flags.
func (c *ColdStartConfig) Validate() error {
	var errs []error
	if len(c.Command) == 0 {
		errs = append(errs, errors.New("the server's command line is required after --"))
	}
	if c.Model == "" {
		errs = append(errs, errors.New("--model is required"))
	}
	if c.Runs < 1 || c.Timeout <= 0 {
		errs = append(errs, errors.New("--runs and --timeout must be positive"))
	}
	return errors.Join(errs...)
}

// ColdStart is the time from exec to readiness, per start.
type ColdStart struct {
	Model string
	// Ready is when /readyz first answered 200 (every service started);
	// ModelReady when /v2/models/{model}/ready did (the version loaded and
	// every batch size warmed).
	Ready, ModelReady []time.Duration
}

// MeasureColdStart starts cfg.Command cfg.Runs times, one after another,
// each time polling the server every 5 ms until the model is ready, then
// stopping it with SIGTERM and waiting for it to exit.
func MeasureColdStart(ctx context.Context, cfg ColdStartConfig, log io.Writer) (*ColdStart, error) {
	r := &ColdStart{Model: cfg.Model}
	client := &http.Client{Timeout: time.Second}
	for i := range cfg.Runs {
		ready, model, err := coldStartOnce(ctx, cfg, client)
		if err != nil {
			return nil, fmt.Errorf("start %d: %w", i+1, err)
		}
		fmt.Fprintf(log, "  start %d: ready %v, model %s ready %v\n", i+1, ready.Round(time.Millisecond), cfg.Model, model.Round(time.Millisecond))
		r.Ready = append(r.Ready, ready)
		r.ModelReady = append(r.ModelReady, model)
	}
	return r, nil
}

func coldStartOnce(ctx context.Context, cfg ColdStartConfig, client *http.Client) (ready, model time.Duration, err error) {
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...) //nolint:gosec // the command the benchmark's caller configured
	cmd.Dir = cfg.Dir
	out, err := os.CreateTemp("", "shoal-coldstart-*.log")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			_ = err // the server's exit status after SIGTERM says nothing
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			err := <-exited
			_ = err
		}
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(cfg.Timeout)
	for model == 0 {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case err := <-exited:
			exited <- err // for the deferred stop
			tail, _ := os.ReadFile(out.Name())
			return 0, 0, fmt.Errorf("the server exited (%v) before it was ready:\n%s", err, lastLines(tail, 20))
		case <-deadline:
			return 0, 0, fmt.Errorf("not ready within %v", cfg.Timeout)
		case <-tick.C:
		}
		if ready == 0 && get(ctx, client, "http://"+cfg.HTTPAddr+"/readyz", "") {
			ready = time.Since(start)
		}
		if ready != 0 && get(ctx, client, "http://"+cfg.HTTPAddr+"/v2/models/"+cfg.Model+"/ready", cfg.Token) {
			model = time.Since(start)
		}
	}
	return ready, model, nil
}

// get reports whether url answered 200.
func get(ctx context.Context, client *http.Client, url, token string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func lastLines(b []byte, n int) string {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' && i < len(b)-1 {
			if n--; n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// Markdown prints one row of the cold-start table: median, least and most
// of each time.
func (r *ColdStart) Markdown(w io.Writer, header bool) {
	if header {
		fmt.Fprintln(w, "| model | starts | /readyz, median (min–max) ms | model ready, median (min–max) ms |")
		fmt.Fprintln(w, "|---|---:|---:|---:|")
	}
	fmt.Fprintf(w, "| %s | %d | %s | %s |\n", r.Model, len(r.Ready), spread(r.Ready), spread(r.ModelReady))
}

func spread(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return fmt.Sprintf("%.0f (%.0f–%.0f)", ms(s[len(s)/2]), ms(s[0]), ms(s[len(s)-1]))
}
