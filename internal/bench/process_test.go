package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCPUQuota reads a process's CPU quota as cgroup v1 and v2 lay it
// out: a v1 cpu controller mounted alone or with cpuacct, v2's cpu.max,
// and no quota (-1, max) as 0.
func TestCPUQuota(t *testing.T) {
	root := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cpu/bench/cpu.cfs_quota_us", "15000")
	write("cpu/bench/cpu.cfs_period_us", "10000")
	write("cpu,cpuacct/joint/cpu.cfs_quota_us", "250000")
	write("cpu,cpuacct/joint/cpu.cfs_period_us", "100000")
	write("cpu/free/cpu.cfs_quota_us", "-1")
	write("cpu/free/cpu.cfs_period_us", "100000")
	write("unified/cpu.max", "120000 100000")
	write("open/cpu.max", "max 100000")
	for _, c := range []struct {
		cgroups string
		want    float64
	}{
		{"3:cpuset:/\n2:cpuacct:/\n1:cpu:/bench\n", 1.5},
		{"4:memory:/x\n2:cpu,cpuacct:/joint\n", 2.5},
		{"1:cpu:/free\n", 0},
		{"0::/unified\n", 1.2},
		{"0::/open\n", 0},
		{"1:name=systemd:/\n", 0},
	} {
		got, err := cpuQuotaIn(c.cgroups, root)
		if err != nil || got != c.want {
			t.Errorf("cpuQuotaIn(%q) = %v, %v; want %v", c.cgroups, got, err, c.want)
		}
	}
	if _, err := CPUQuota(os.Getpid()); err != nil {
		t.Errorf("CPUQuota(this process) = %v", err)
	}
}
