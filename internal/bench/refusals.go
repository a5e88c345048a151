package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/shoalml/shoal/internal/imaging/imagingtest"
)

// RefusalConfig says how to measure what refusing a request costs: a
// server started with --gateway.max-predicts=1 has its one place held by
// a /predict whose body never ends, and an open loop offers /predict at
// Rate for Duration, every request then refused with 429.
type RefusalConfig struct {
	HTTPAddr  string
	Rate      float64
	Duration  time.Duration
	Warmup    time.Duration
	ImageSize int
	// Connections are the open loop's kept-alive connections, as the
	// soak's.
	Connections int
}

// RegisterFlags registers the measurement's flags.
func (c *RefusalConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http", "localhost:8080", "HTTP address of a Shoal server started with --gateway.max-predicts=1")
	fs.Float64Var(&c.Rate, "rate", 2800, "requests offered a second")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured time of the open loop")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unmeasured open loop before it")
	fs.IntVar(&c.ImageSize, "image-size", 300, "width and height of the JPEG sent to /predict")
	fs.IntVar(&c.Connections, "connections", 256, "most HTTP connections to the server (kept alive)")
}

// Validate reports settings that cannot work.
func (c *RefusalConfig) Validate() error {
	if c.Rate <= 0 || c.Duration <= 0 || c.ImageSize <= 0 || c.Connections <= 0 {
		return errors.New("--rate, --duration, --image-size and --connections must be positive")
	}
	return nil
}

// RefusalReport is what one measurement found.
type RefusalReport struct {
	Loop LoopStats
	// Server and Generator are CPU time per request offered.
	Server, Generator time.Duration
}

// MeasureRefusals holds the server's one place and measures the CPU the
// server and this generator spend on each refused request.
func MeasureRefusals(ctx context.Context, cfg RefusalConfig) (*RefusalReport, error) {
	release, err := holdPlace(ctx, cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	defer release()
	call, closeConns, err := LeanPredictCall(cfg.HTTPAddr, cfg.Connections, time.Minute, "refusals", 1, imagingtest.PhotoJPEG(cfg.ImageSize, cfg.ImageSize))
	if err != nil {
		return nil, err
	}
	defer closeConns()
	if cfg.Warmup > 0 {
		OpenLoop(ctx, cfg.Rate, cfg.Warmup, 20000, call)
	}
	// The server's own count of its CPU time (process_cpu_seconds_total).
	server := ServerCPU(&http.Client{Timeout: 10 * time.Second}, "http://"+cfg.HTTPAddr+"/metrics")
	serverSince, selfSince := cpuSince(ctx, server), cpuSince(ctx, SelfCPU)
	loop := OpenLoop(ctx, cfg.Rate, cfg.Duration, 20000, call)
	r := &RefusalReport{Loop: loop, Server: perImage(serverSince(), float64(loop.Offered)), Generator: perImage(selfSince(), float64(loop.Offered))}
	if n := loop.Counts[Shed]; n != loop.Offered {
		return r, fmt.Errorf("%d of %d requests were refused with 429 and Retry-After (%v): the place was not held throughout, or the server is not bounded to one (--gateway.max-predicts=1)", n, loop.Offered, loop.First)
	}
	return r, nil
}

// holdPlace takes the gateway's one place with a /predict whose body
// never ends (1 MiB, within the server's body limit, sent a byte every
// half second; the server's --http.read-body-timeout must outlast the
// measurement), and returns once a second request is refused; release
// ends the held one.
func holdPlace(ctx context.Context, addr string) (release func(), err error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf("POST /predict HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=held\r\nContent-Length: %d\r\n\r\n", addr, 1<<20)
	if _, err := io.WriteString(conn, head); err != nil {
		_ = conn.Close()
		return nil, err
	}
	done := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if _, err := conn.Write([]byte{'-'}); err != nil {
					return
				}
			}
		}
	}()
	release = func() {
		close(done)
		<-trickled
		_ = conn.Close()
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Post("http://"+addr+"/predict", "multipart/form-data; boundary=probe", strings.NewReader("--probe--\r\n"))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				return release, nil
			}
		}
		if time.Now().After(deadline) {
			release()
			if err != nil {
				return nil, fmt.Errorf("probing the held place: %w", err)
			}
			return nil, fmt.Errorf("POST /predict with one held = %s; want 429: start the server with --gateway.max-predicts=1", resp.Status)
		}
	}
}

// Markdown writes one measurement as a table row.
func (r *RefusalReport) Markdown(w io.Writer, cfg RefusalConfig) {
	fmt.Fprintf(w, "| %.0f/s for %v | %d refused | %.1f µs | %.1f µs | %d sent late |\n",
		cfg.Rate, cfg.Duration, r.Loop.Counts[Shed], float64(r.Server.Nanoseconds())/1e3, float64(r.Generator.Nanoseconds())/1e3, r.Loop.Late)
}
