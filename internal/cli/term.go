package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// A meter shows how far a long transfer is. On a terminal it is one line
// redrawn in place (a bar, the count, the rate); anywhere else it writes a
// plain line at most every plainEvery and no control characters, so logs
// and pipes stay readable. It counts in one unit, images or bytes, and says
// which.
type meter struct {
	w        io.Writer
	terminal bool
	off      bool
	desc     string
	unit     string // "images" or "bytes"
	now      func() time.Time

	total, done int64
	start, last time.Time
	drawn       bool // a terminal line is on screen and not yet ended
}

const (
	redrawEvery = 100 * time.Millisecond
	plainEvery  = 10 * time.Second
	barWidth    = 24
)

func newMeter(w io.Writer, terminal, quiet bool, desc, unit string) *meter {
	m := &meter{w: w, terminal: terminal, off: quiet, desc: desc, unit: unit, now: time.Now}
	m.start = m.now()
	m.last = m.start
	return m
}

// setTotal sets what 100% is; a source still being listed may raise it.
func (m *meter) setTotal(n int64) { m.total = n; m.show(false) }

// set sets how much is done.
func (m *meter) set(n int64) { m.done = n; m.show(false) }

func (m *meter) add(n int64) { m.done += n; m.show(false) }

// finish shows the meter at 100% and ends its line.
func (m *meter) finish() {
	m.total = max(m.total, m.done)
	m.done = m.total
	m.show(true)
	m.end()
}

// clear takes the meter's line off a terminal, so that another line can be
// printed in its place; the next update draws it again.
func (m *meter) clear() {
	if m.drawn {
		fmt.Fprint(m.w, "\r\033[K")
		m.drawn = false
	}
}

// stop ends the meter's line where it is, before an error is printed.
func (m *meter) stop() { m.end() }

func (m *meter) end() {
	if m.drawn {
		fmt.Fprintln(m.w)
		m.drawn = false
	}
}

func (m *meter) show(force bool) {
	if m.off {
		return
	}
	now := m.now()
	switch {
	case m.terminal && (force || now.Sub(m.last) >= redrawEvery):
		m.last = now
		fmt.Fprintf(m.w, "\r\033[K%s", m.line(now, true))
		m.drawn = true
	case !m.terminal && !force && now.Sub(m.last) >= plainEvery:
		m.last = now
		fmt.Fprintln(m.w, m.line(now, false))
	}
}

// line is the meter's text: "uploading fish [=====   ] 120/300 images 40% 95 images/s".
func (m *meter) line(now time.Time, withBar bool) string {
	var b strings.Builder
	b.WriteString(m.desc)
	if withBar && m.total > 0 {
		n := int(min(m.done, m.total) * barWidth / m.total)
		fmt.Fprintf(&b, " [%s%s]", strings.Repeat("=", n), strings.Repeat(" ", barWidth-n))
	}
	if m.unit == "bytes" {
		fmt.Fprintf(&b, " %s", formatBytes(m.done))
		if m.total > 0 {
			fmt.Fprintf(&b, " of %s", formatBytes(m.total))
		}
	} else {
		fmt.Fprintf(&b, " %d", m.done)
		if m.total > 0 {
			fmt.Fprintf(&b, "/%d", m.total)
		}
		b.WriteString(" " + m.unit)
	}
	if m.total > 0 {
		fmt.Fprintf(&b, " %d%%", min(m.done, m.total)*100/m.total)
	}
	if secs := now.Sub(m.start).Seconds(); withBar && secs > 0.5 {
		if m.unit == "bytes" {
			fmt.Fprintf(&b, " %s/s", formatBytes(int64(float64(m.done)/secs)))
		} else {
			fmt.Fprintf(&b, " %.0f %s/s", float64(m.done)/secs, m.unit)
		}
	}
	return b.String()
}

// errDeclined is a confirmation answered with anything but yes.
var errDeclined = errors.New("not confirmed; nothing was deleted")

// confirm asks before something that cannot be undone, an action such as
// `delete dataset "fish"`. On a terminal it asks (y/N); anywhere else nobody
// can answer, so it refuses unless --yes was given.
func (e *Env) confirm(yes bool, action string) error {
	if yes {
		return nil
	}
	if !e.StdinTerminal {
		return &usageError{refusal: true, msg: fmt.Sprintf(
			"refusing to %s without confirmation: standard input is not a terminal; pass --yes to go ahead", action)}
	}
	fmt.Fprintf(e.Stderr, "%s%s? [y/N] ", strings.ToUpper(action[:1]), action[1:])
	answer, err := bufio.NewReader(e.Stdin).ReadString('\n')
	if err != nil && answer == "" {
		fmt.Fprintln(e.Stderr)
		return errDeclined
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errDeclined
}
