package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Metrics reads the named unlabelled samples (e.g. go_goroutines) from a
// Prometheus text endpoint.
func Metrics(ctx context.Context, client *http.Client, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return nil, fmt.Errorf("%s %q: %w", n, v, err)
				}
				out[n] = f
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("GET %s: no %s", url, n)
		}
	}
	return out, nil
}

// Memory is a process's resident set, from /proc/PID/status.
type Memory struct {
	RSS  int64 // VmRSS, bytes
	Peak int64 // VmHWM, bytes: the highest RSS since start or ResetPeak
}

// ReadMemory reads pid's VmRSS and VmHWM.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for line := range bytes.Lines(b) {
		name, v, ok := strings.Cut(string(line), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("/proc/%d/status %s %q: %w", pid, name, v, err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.Peak = kb << 10
		}
	}
	if m.RSS == 0 || m.Peak == 0 {
		return Memory{}, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return m, nil
}

// ResetPeak sets pid's VmHWM back to its current RSS (Linux clear_refs 5),
// so that the next reading is the peak since now.
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// machine describes this machine for a report: cores and CPU model.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range bytes.Lines(b) {
			if k, v, ok := strings.Cut(string(line), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores, %s", runtime.NumCPU(), cpu)
}

// CPUQuota is the CPU time, in cores, that process pid's cgroup allows it
// (a CFS quota: cgroup v2's cpu.max, or v1's cpu controller), read from
// /proc and /sys/fs/cgroup; 0 when it has none. A benchmark confines its
// server so that its load generator, on the same machine, runs on the
// cores left over (scripts/lib.sh, confine_cpu).
func CPUQuota(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return 0, err
	}
	return cpuQuotaIn(string(b), "/sys/fs/cgroup")
}

// cpuQuotaIn is CPUQuota for a process whose /proc/PID/cgroup reads
// cgroups, with the cgroup filesystems mounted under root.
func cpuQuotaIn(cgroups, root string) (float64, error) {
	for line := range strings.Lines(cgroups) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		controllers, path := f[1], f[2]
		if f[0] == "0" && controllers == "" {
			if q, err := os.ReadFile(filepath.Join(root, path, "cpu.max")); err == nil {
				if quota, period, ok := strings.Cut(strings.TrimSpace(string(q)), " "); ok && quota != "max" {
					return ratio(quota, period)
				}
			}
			continue
		}
		if !slices.Contains(strings.Split(controllers, ","), "cpu") {
			continue
		}
		dir := filepath.Join(root, controllers, path)
		if _, err := os.Stat(dir); err != nil {
			dir = filepath.Join(root, "cpu", path)
		}
		quota, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
		if err != nil {
			return 0, err
		}
		period, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
		if err != nil {
			return 0, err
		}
		if q := strings.TrimSpace(string(quota)); q != "-1" {
			return ratio(q, strings.TrimSpace(string(period)))
		}
	}
	return 0, nil
}

// ratio is quota / period, two integers in text.
func ratio(quota, period string) (float64, error) {
	q, err := strconv.ParseFloat(quota, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup quota %q: %w", quota, err)
	}
	p, err := strconv.ParseFloat(period, 64)
	if err != nil || p <= 0 {
		return 0, fmt.Errorf("cgroup period %q: not a positive number", period)
	}
	return q / p, nil
}
