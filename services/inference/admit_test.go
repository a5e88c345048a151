package inference

import "testing"

// TestAdmit: images are admitted up to the limit, counting those already
// in; a request over the limit by itself is admitted only alone, so its
// own checks can say what is wrong with it.
func TestAdmit(t *testing.T) {
	m := &model{admitLimit: 10}
	for i, step := range []struct {
		n       int
		release int // images released before this step
		want    bool
	}{
		{n: 6, want: true},
		{n: 5, want: false}, // 11 > 10
		{n: 4, want: true},  // 10
		{n: 1, want: false},
		{n: 1, release: 3, want: true},
		{n: 20, release: 4, want: false}, // 4 are still in
		{n: 20, release: 4, want: true},  // alone
	} {
		m.admitted.Add(-int64(step.release))
		if got := m.admit(step.n); got != step.want {
			t.Errorf("step %d: admit(%d) with %d in = %v; want %v", i, step.n, m.admitted.Load(), got, step.want)
		}
	}
}
