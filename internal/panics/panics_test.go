package panics_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalml/shoal/internal/panics"
)

func TestGuardRecoversInAGoroutine(t *testing.T) {
	var logs bytes.Buffer
	g := panics.NewGuard(slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	var got error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer g.Recover("import worker", func(err error) { got = err })
		var m map[string]int
		m["x"] = 1 //nolint:staticcheck // the nil map write is the runtime panic this test recovers
	})
	wg.Wait()
	var pe *panics.Error
	if !errors.As(got, &pe) || pe.Component != "import worker" {
		t.Fatalf("fail got %v; want a *panics.Error of component %q", got, "import worker")
	}
	if strings.Contains(got.Error(), "nil map") {
		t.Errorf("Error() = %q; the panic value must stay in the log, not in messages", got)
	}
	if c := g.Count("import worker"); c != 1 {
		t.Errorf("Count(import worker) = %v; want 1", c)
	}
	for _, want := range []string{"assignment to entry in nil map", "component=\"import worker\"", "stack=", "panics_test.go"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestGuardCall(t *testing.T) {
	g := panics.NewGuard(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	plain := errors.New("plain")
	if err := g.Call("x", func() error { return plain }); err != plain {
		t.Errorf("Call(returns plain) = %v; want plain", err)
	}
	err := g.Call("batch", func() error { panic("boom") })
	var pe *panics.Error
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Errorf("Call(panics) = %#v; want *Error with the value and a stack", err)
	}
	if g.Count("batch") != 1 || g.Count("x") != 0 {
		t.Errorf("Count = %v, %v; want 1, 0", g.Count("batch"), g.Count("x"))
	}
}

func TestNilGuardStillRecovers(t *testing.T) {
	var g *panics.Guard
	err := g.Call("x", func() error { panic("boom") })
	if err == nil || g.Count("x") != 0 {
		t.Errorf("nil Guard: Call = %v, Count = %v; want an error and 0", err, g.Count("x"))
	}
}
