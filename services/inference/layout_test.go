package inference_test

import (
	"testing"

	"github.com/shoalml/shoal/services/inference"
)

// TestSessionLayout loads the same version under each layout: side by side
// keeps two single-threaded sessions and the wide one; wide keeps the wide
// session alone (one session of both threads, a third of the memory).
// Each answers as the model computes.
func TestSessionLayout(t *testing.T) {
	type shape struct{ sessions, threads, wide int32 }
	sideBySide, wide := shape{2, 1, 2}, shape{1, 2, 0}
	sizes := map[string]int64{}
	for _, tt := range []struct {
		layout string
		want   []shape
	}{
		{inference.LayoutSideBySide, []shape{sideBySide}},
		{inference.LayoutWide, []shape{wide}},
	} {
		t.Run(tt.layout, func(t *testing.T) {
			e := newEnv(t, envOptions{cfg: func(c *inference.Config) {
				c.Sessions, c.IntraOpThreads, c.WideSession, c.MaxBatchSize = 2, 1, true, 2
				c.SessionLayout = tt.layout
				c.WideSessionMinGain = 0 // kept however it times
			}})
			e.addVersion(t, "pets", 1, wideTestModel(1))
			if err := predictVersion(t, e, 1); err != nil {
				t.Fatalf("Predict(v1) = %v", err)
			}
			resp, got := listLoaded(t, e)
			m := resp.GetModels()[0]
			s := shape{m.GetSessions(), m.GetIntraOpThreads(), m.GetWideSessionThreads()}
			found := false
			for _, w := range tt.want {
				found = found || s == w
			}
			if !found {
				t.Fatalf("ListLoadedModels() = %v; want sessions, intra-op threads and wide threads one of %v", m, tt.want)
			}
			sizes[tt.layout] = got[1]
		})
	}
	if sizes[inference.LayoutWide]*2 > sizes[inference.LayoutSideBySide] {
		t.Errorf("the wide layout holds %d bytes, side by side %d; want at most half: one session's weights of three",
			sizes[inference.LayoutWide], sizes[inference.LayoutSideBySide])
	}
}

// TestWideSessionOnlyWhereFaster: a version whose wide session does not
// compute a lone image the required times faster than a single-threaded
// one (no session is a thousand times faster with two threads) keeps its
// single-threaded sessions only, and answers from them.
func TestWideSessionOnlyWhereFaster(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *inference.Config) {
		c.Sessions, c.IntraOpThreads, c.WideSession, c.MaxBatchSize = 2, 1, true, 2
		c.WideSessionMinGain = 1000
	}})
	e.addVersion(t, "pets", 1, newTestModel(1))
	if err := predictVersion(t, e, 1); err != nil {
		t.Fatalf("Predict(v1) = %v", err)
	}
	resp, _ := listLoaded(t, e)
	m := resp.GetModels()[0]
	if m.GetSessions() != 2 || m.GetIntraOpThreads() != 1 || m.GetWideSessionThreads() != 0 {
		t.Fatalf("ListLoadedModels() = %v; want 2 single-threaded sessions and no wide one", m)
	}
}
