package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUClock reads a process's CPU time (user + system, every thread) so far.
type CPUClock func(ctx context.Context) (time.Duration, error)

// SelfCPU is this process's CPU time, ONNX Runtime's threads included.
func SelfCPU(context.Context) (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// ServerCPU reads the server's process_cpu_seconds_total from its
// Prometheus endpoint (metricsURL, e.g. http://host:8080/metrics).
func ServerCPU(client *http.Client, metricsURL string) CPUClock {
	return func(ctx context.Context) (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %s", metricsURL, resp.Status)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
				s, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return 0, fmt.Errorf("process_cpu_seconds_total %q: %w", v, err)
				}
				return time.Duration(s * float64(time.Second)), nil
			}
		}
		if err := sc.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("GET %s: no process_cpu_seconds_total", metricsURL)
	}
}

// cpuSince reads clock now and returns a function that reports the CPU
// time used since; it reports 0 when clock is nil or a reading failed.
func cpuSince(ctx context.Context, clock CPUClock) func() time.Duration {
	if clock == nil {
		return func() time.Duration { return 0 }
	}
	start, err := clock(ctx)
	return func() time.Duration {
		if err != nil {
			return 0
		}
		now, err := clock(ctx)
		if err != nil {
			return 0
		}
		return now - start
	}
}

// perImage is CPU time per image, 0 when unknown.
func perImage(cpu time.Duration, images float64) time.Duration {
	if cpu <= 0 || images <= 0 {
		return 0
	}
	return time.Duration(float64(cpu) / images)
}
