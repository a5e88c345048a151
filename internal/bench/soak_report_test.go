package bench

import (
	"strings"
	"testing"
	"time"
)

// memoryCriterion is the soak's criterion on peak RSS.
func memoryCriterion(t *testing.T, r *SoakReport) Criterion {
	t.Helper()
	for _, c := range r.Criteria() {
		if strings.HasPrefix(c.Name, "peak RSS") {
			return c
		}
	}
	t.Fatal("no peak RSS criterion")
	return Criterion{}
}

// The load may add the queue and message limits to the idle memory, or,
// when the commands ran alone first, to their own peak: a training job's
// working set is no limit the server is configured with.
func TestSoakMemoryBound(t *testing.T) {
	const mb = 1 << 20
	r := &SoakReport{Baseline: Level{RSS: 300 * mb}, QueueBound: 10 * mb, MsgBound: 128 * mb, Peak: 500 * mb}
	if c := memoryCriterion(t, r); c.Met || !strings.Contains(c.Measured, "bound 438.0 MiB = idle 300.0 MiB") {
		t.Errorf("without the commands alone: %+v; want unmet against idle + limits, 438 MiB", c)
	}
	r.AlonePeak = 380 * mb
	if c := memoryCriterion(t, r); !c.Met || !strings.Contains(c.Measured, "bound 518.0 MiB = the commands' own peak 380.0 MiB") {
		t.Errorf("with the commands alone at 380 MiB: %+v; want met against their peak + limits, 518 MiB", c)
	}
	r.Peak = 519 * mb
	if c := memoryCriterion(t, r); c.Met {
		t.Errorf("peak 519 MiB over a 518 MiB bound: %+v; want unmet", c)
	}
}

// criterion returns the soak's criterion whose name starts with prefix.
func criterion(t *testing.T, r *SoakReport, prefix string) Criterion {
	t.Helper()
	for _, c := range r.Criteria() {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	t.Fatalf("no criterion %q", prefix)
	return Criterion{}
}

// With a second saturation measurement after the overload, the overload
// is held to the mean of both, throughput and p99 each; without one, to
// the first alone.
func TestSoakSaturationBaseline(t *testing.T) {
	r := &SoakReport{
		Saturation: Stats{Requests: 100, ImagesPerSecond: 1000, P99: 80 * time.Millisecond},
		Overload:   LoopStats{Accepted: 880, P99: 170 * time.Millisecond},
	}
	if c := criterion(t, r, "accepted throughput"); c.Met || !strings.Contains(c.Measured, "vs 1000.0/s at saturation (88%)") {
		t.Errorf("one measurement: %+v; want 88%% of 1000/s, unmet", c)
	}
	if c := criterion(t, r, "accepted p99"); c.Met {
		t.Errorf("one measurement: %+v; want 170 ms against 2 x 80 ms unmet", c)
	}
	r.SaturationAfter = Stats{Requests: 100, ImagesPerSecond: 900, P99: 90 * time.Millisecond}
	c := criterion(t, r, "accepted throughput")
	if !c.Met || !strings.Contains(c.Measured, "vs 950.0/s at saturation, the mean of 1000.0/s (p99 80ms) before and 900.0/s (p99 90ms) after (93%)") {
		t.Errorf("both measurements: %+v; want 93%% of their mean 950/s, met", c)
	}
	if c := criterion(t, r, "accepted p99"); !c.Met || !strings.Contains(c.Measured, "vs 85ms at saturation") {
		t.Errorf("both measurements: %+v; want 170 ms against 2 x the mean 85 ms, met", c)
	}
}

// TestSoakReportQuota: the report says whether the server ran within a
// CPU quota, the generator outside it, or shared its cores.
func TestSoakReportQuota(t *testing.T) {
	for cores, want := range map[float64][]string{
		1.5: {"confined to 1.50 cores of CPU time", "the server within its quota of 1.50 cores, the generator outside it"},
		0:   {"has no CPU quota", "the generator shares the server's cores"},
	} {
		r := &SoakReport{ServerCores: cores, Saturation: Stats{Requests: 1, ImagesPerSecond: 1}}
		var b strings.Builder
		r.Markdown(&b)
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("quota %v: the report lacks %q:\n%s", cores, w, b.String())
			}
		}
	}
}
