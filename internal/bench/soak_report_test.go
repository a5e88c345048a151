package bench

import (
	"strings"
	"testing"
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
