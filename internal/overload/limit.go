package overload

import (
	"sync"
	"sync/atomic"
	"time"
)

// Limit is an admission limit that follows a latency target: how much work
// a server takes in at once, adapted so that what it takes in is answered
// within the target. A bound on queued work fixed in advance holds latency
// only while the server computes as fast as it did when the bound was
// chosen; a training job or another model sharing the cores halves that
// speed, and every admitted request then waits twice as long. Limit
// measures instead: in each window (twice the target, from 50 ms to 1 s,
// and at least minAnswers answers, up to four times that long), if more
// than 1% of the answered requests took longer than the target, the limit
// shrinks by a quarter; if none did and some requests were refused, the
// limit was what held them back, and it grows by one step. It stays
// between min and max.
//
// The answers a window needs: a 1% tail judged on too few answers is
// noise. With twice a 100 ms target as the only bound, a window held
// about 150 answers under the soak's load, two slow ones cut the limit by
// a quarter, and the limit spent so much of its time low that the
// accepted throughput fell by a tenth against no target at all
// (RELIABILITY.md, Overload).
type Limit struct {
	target   time.Duration
	min, max int64
	step     int64
	window   time.Duration
	// minAnswers is how many answers a window needs before it decides,
	// unless it has run four times its time.
	minAnswers int
	now        func() time.Time

	cur atomic.Int64

	mu      sync.Mutex
	start   time.Time // of the window
	n, over int       // answered requests in the window, and those over target
	refused int       // refused requests in the window
}

// windowAnswers is the answers a window needs to judge a 1% tail: more
// than 1% late is then at least 3 of them.
const windowAnswers = 200

// NewLimit returns a limit at hi that keeps answers within target, moving
// between lo and hi (lo at least 1) and growing by step at a time.
func NewLimit(target time.Duration, lo, hi, step int64) *Limit {
	lo = max(lo, 1)
	l := &Limit{target: target, min: lo, max: max(hi, lo), step: max(step, 1),
		window: min(max(2*target, 50*time.Millisecond), time.Second), minAnswers: windowAnswers, now: time.Now}
	l.cur.Store(l.max)
	l.start = l.now()
	return l
}

// Current is the limit now.
func (l *Limit) Current() int64 { return l.cur.Load() }

// Target is the latency the limit keeps answers within.
func (l *Limit) Target() time.Duration { return l.target }

// Answered records a request answered d after it was admitted.
func (l *Limit) Answered(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	l.n++
	if d > l.target {
		l.over++
	}
}

// Refused records a request refused because the limit was reached.
func (l *Limit) Refused() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	l.refused++
}

// roll ends the window when its time is up, adapting the limit to what it
// saw. l.mu is held.
func (l *Limit) roll() {
	now := l.now()
	if took := now.Sub(l.start); took < l.window || (l.n < l.minAnswers && took < 4*l.window) {
		return
	}
	cur := l.cur.Load()
	switch {
	case l.n > 0 && l.over*100 > l.n:
		cur = max(l.min, cur-max(1, cur/4))
	case l.n > 0 && l.over == 0 && l.refused > 0:
		cur = min(l.max, cur+l.step)
	}
	l.cur.Store(cur)
	l.start, l.n, l.over, l.refused = now, 0, 0, 0
}
