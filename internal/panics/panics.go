// Package panics contains panics in work that runs off a request's
// goroutine: import workers, batches, training jobs, alias followers,
// sweeps. A panic there is outside gRPC's recovery and would end the whole
// process; recovered, it fails only the request, import or job it belongs
// to, is logged once with its stack and is counted in shoal_panics_total.
package panics

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Error is a recovered panic. Its message names the component only: the
// value and stack go to the log, never to a client.
type Error struct {
	Component string
	Value     any
	Stack     []byte
}

func (e *Error) Error() string { return "internal error: panic in " + e.Component }

// Guard logs and counts recovered panics. A nil Guard still recovers; it
// logs to slog's default logger and counts nothing.
type Guard struct {
	log   *slog.Logger
	total *prometheus.CounterVec
}

// NewGuard registers shoal_panics_total with reg.
func NewGuard(log *slog.Logger, reg prometheus.Registerer) *Guard {
	g := &Guard{
		log: log,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_panics_total",
			Help: "Panics recovered, by the component they happened in; each failed one request, import or job, not the process.",
		}, []string{"component"}),
	}
	reg.MustRegister(g.total)
	return g
}

// Recover must be deferred directly (`defer g.Recover("x", fail)`): it
// stops a panic of the calling goroutine, reports it, and hands its *Error
// to fail when fail is not nil.
func (g *Guard) Recover(component string, fail func(error)) {
	r := recover()
	if r == nil {
		return
	}
	err := g.Report(component, r, debug.Stack())
	if fail != nil {
		fail(err)
	}
}

// Call runs fn and returns its error, or the *Error of its panic.
func (g *Guard) Call(component string, fn func() error) (err error) {
	defer g.Recover(component, func(e error) { err = e })
	return fn()
}

// Report logs and counts a panic recovered elsewhere (the gRPC
// interceptors recover their own) and returns it as an *Error.
func (g *Guard) Report(component string, value any, stack []byte, attrs ...any) *Error {
	log := slog.Default()
	if g != nil {
		log = g.log
		g.total.WithLabelValues(component).Inc()
	}
	args := append([]any{"component", component, "panic", fmt.Sprint(value), "stack", string(stack)}, attrs...)
	log.Error("recovered a panic", args...)
	return &Error{Component: component, Value: value, Stack: stack}
}

// Count returns how many panics of component the guard has recovered.
func (g *Guard) Count(component string) float64 {
	if g == nil {
		return 0
	}
	var m dto.Metric
	if err := g.total.WithLabelValues(component).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// Gathered returns shoal_panics_total{component} as g gathers it: the count
// of a guard one holds only through its registry (the interceptors').
func Gathered(g prometheus.Gatherer, component string) (float64, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != "shoal_panics_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "component" && l.GetValue() == component {
					return m.GetCounter().GetValue(), nil
				}
			}
		}
	}
	return 0, nil
}
