package overload

import (
	"testing"
	"time"
)

// clock is a manual time source for Limit.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestLimit(target time.Duration, lo, hi, step int64) (*Limit, *clock) {
	c := &clock{t: time.Unix(0, 0)}
	l := NewLimit(target, lo, hi, step)
	l.now, l.start = c.now, c.t
	l.minAnswers = 100 // the windows below hold 100 answers
	return l, c
}

// windowOf feeds one window of answers (over of them slower than the
// target) and refusals, then starts the next, which adapts the limit.
func windowOf(l *Limit, c *clock, n, over, refused int) int64 {
	for i := range n {
		d := l.Target() / 2
		if i < over {
			d = 2 * l.Target()
		}
		l.Answered(d)
	}
	for range refused {
		l.Refused()
	}
	c.t = c.t.Add(l.window)
	l.mu.Lock()
	l.roll() // as the next window's first event does
	l.mu.Unlock()
	return l.Current()
}

func TestLimitShrinksWhileAnswersAreLate(t *testing.T) {
	l, c := newTestLimit(100*time.Millisecond, 16, 520, 8)
	if got := l.Current(); got != 520 {
		t.Fatalf("a new limit = %d; want its maximum, 520", got)
	}
	if l.window != 200*time.Millisecond {
		t.Errorf("window = %v; want twice the target", l.window)
	}
	// 2 late answers of 100: over 1%, a quarter off each window.
	want := []int64{390, 293, 220, 165, 124, 93, 70, 53, 40, 30, 23, 18, 16, 16}
	for i, w := range want {
		if got := windowOf(l, c, 100, 2, 50); got != w {
			t.Fatalf("window %d: limit %d; want %d", i+1, got, w)
		}
	}
}

func TestLimitHoldsAtOnePercentLate(t *testing.T) {
	l, c := newTestLimit(100*time.Millisecond, 16, 520, 8)
	windowOf(l, c, 100, 50, 0) // 390
	if got := windowOf(l, c, 100, 1, 100); got != 390 {
		t.Errorf("with 1 late answer in 100 and refusals, limit %d; want it held at 390", got)
	}
}

func TestLimitGrowsOnlyWhenItHoldsRequestsBack(t *testing.T) {
	l, c := newTestLimit(100*time.Millisecond, 16, 520, 8)
	windowOf(l, c, 100, 50, 0) // 390
	if got := windowOf(l, c, 100, 0, 0); got != 390 {
		t.Errorf("on time, nothing refused: limit %d; want 390 (not what holds anything back)", got)
	}
	if got := windowOf(l, c, 100, 0, 3); got != 398 {
		t.Errorf("on time, some refused: limit %d; want 398 (one step up)", got)
	}
	for range 100 {
		windowOf(l, c, 100, 0, 3)
	}
	if got := l.Current(); got != 520 {
		t.Errorf("after many good windows: limit %d; want the maximum, 520", got)
	}
	if got := windowOf(l, c, 0, 0, 10); got != 520 {
		t.Errorf("a window with refusals but no answers: limit %d; want it unchanged", got)
	}
}

// TestLimitWindowWaitsForAnswers: a window with fewer answers than it
// needs runs on, up to four times its time, rather than judge a 1% tail
// on a few answers.
func TestLimitWindowWaitsForAnswers(t *testing.T) {
	l, c := newTestLimit(100*time.Millisecond, 16, 520, 8)
	l.minAnswers = windowAnswers
	if got := windowOf(l, c, 100, 2, 50); got != 520 {
		t.Fatalf("100 answers, 2 late, after one window's time: limit %d; want 520 (too few answers to judge)", got)
	}
	if got := windowOf(l, c, 100, 1, 50); got != 390 {
		t.Fatalf("200 answers, 3 late, after two windows' time: limit %d; want 390 (over 1%% late; a quarter off)", got)
	}
	// Few answers: decided four windows' time after the last decision
	// all the same (that decision came with the 200th answer, a window's
	// time before the end of the call above).
	for i := range 2 {
		if got := windowOf(l, c, 10, 1, 5); got != 390 {
			t.Fatalf("window time %d with 10 answers each: limit %d; want 390 held", i+2, got)
		}
	}
	if got := windowOf(l, c, 10, 1, 5); got != 293 {
		t.Errorf("after four windows' time, 30 answers, 3 late: limit %d; want 293", got)
	}
}

func TestLimitWindowBounds(t *testing.T) {
	for _, tc := range []struct{ target, window time.Duration }{
		{time.Millisecond, 50 * time.Millisecond},
		{100 * time.Millisecond, 200 * time.Millisecond},
		{5 * time.Second, time.Second},
	} {
		if got := NewLimit(tc.target, 1, 10, 1).window; got != tc.window {
			t.Errorf("target %v: window %v; want %v", tc.target, got, tc.window)
		}
	}
	if l := NewLimit(time.Second, 0, 0, 0); l.Current() != 1 || l.min != 1 || l.step != 1 {
		t.Errorf("NewLimit(0, 0, 0) = limit %d, min %d, step %d; want 1, 1, 1", l.Current(), l.min, l.step)
	}
}
