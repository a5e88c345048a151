package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock is a meter's clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestMeter(out *bytes.Buffer, terminal bool, unit string) (*meter, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	m := newMeter(out, terminal, false, "uploading fish", unit)
	m.now = clock.now
	m.start, m.last = clock.t, clock.t
	return m, clock
}

// The meter counts images (not bytes) against the number to send, moves,
// and ends at 100%.
func TestMeterOnATerminal(t *testing.T) {
	var out bytes.Buffer
	m, clock := newTestMeter(&out, true, "images")
	m.setTotal(4)
	for range 2 {
		clock.advance(time.Second)
		m.add(1)
	}
	if !strings.Contains(out.String(), "\r\033[Kuploading fish [============            ] 2/4 images 50% 1 images/s") {
		t.Errorf("after 2 of 4: %q; want a redrawn line at 50%%", out.String())
	}
	m.add(2)
	m.finish()
	lines := strings.Split(out.String(), "\r\033[K")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "uploading fish [========================] 4/4 images 100%") || !strings.HasSuffix(last, "\n") {
		t.Errorf("finished meter %q; want a last line at 100%% that ends the line", last)
	}
}

func TestMeterOffATerminal(t *testing.T) {
	var out bytes.Buffer
	m, clock := newTestMeter(&out, false, "images")
	m.setTotal(1306)
	m.set(10)
	if out.Len() != 0 {
		t.Errorf("a plain meter wrote %q before %s passed; want nothing", out.String(), plainEvery)
	}
	clock.advance(plainEvery)
	m.set(650)
	m.clear()
	m.finish()
	if got, want := out.String(), "uploading fish 650/1306 images 49%\n"; got != want {
		t.Errorf("plain meter wrote %q; want %q (and no control characters)", got, want)
	}
}

func TestMeterCountsBytesAsBytes(t *testing.T) {
	var out bytes.Buffer
	m, _ := newTestMeter(&out, true, "bytes")
	m.setTotal(613)
	m.add(613)
	m.finish()
	if !strings.Contains(out.String(), "613 B of 613 B 100%") || strings.Contains(out.String(), "images") {
		t.Errorf("archive meter %q; want bytes counted as bytes, to 100%%", out.String())
	}
}

func TestQuietMeterWritesNothing(t *testing.T) {
	var out bytes.Buffer
	m := newMeter(&out, true, true, "importing", "images")
	m.setTotal(3)
	m.set(3)
	m.finish()
	if out.Len() != 0 {
		t.Errorf("--quiet meter wrote %q", out.String())
	}
}
