package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Criterion is one requirement of the soak and whether the run met it.
type Criterion struct {
	Name, Measured string
	Met            bool
}

// Criteria holds the run to the soak's requirements.
func (r *SoakReport) Criteria() []Criterion {
	o := r.Overload
	sat, satName := r.baseline()
	var bad []string
	for _, out := range []Outcome{ShedNoRetryAfter, ServerError, OtherStatus, Failed, Dropped} {
		if n := o.Counts[out]; n > 0 {
			bad = append(bad, fmt.Sprintf("%d %s (first: %v)", n, out, o.First[out]))
		}
	}
	excess := fmt.Sprintf("%d of %d offered answered 429 with Retry-After", o.Counts[Shed], o.Offered)
	if len(bad) > 0 {
		excess += "; " + strings.Join(bad, "; ")
	}
	// The memory the server may use besides the queue and messages: idle,
	// or the commands' own peak when they ran alone first.
	base, baseName := r.Baseline.RSS, "idle"
	if r.AlonePeak > 0 {
		base, baseName = max(r.Baseline.RSS, r.AlonePeak), "the commands' own peak"
	}
	bound := base + r.QueueBound + r.MsgBound
	var cmds []string
	cmdsOK := true
	for _, c := range r.Commands {
		s := fmt.Sprintf("`%s` %v", c.Command, c.Took.Round(time.Second))
		if c.Err != nil {
			s += fmt.Sprintf(" (failed: %v)", c.Err)
			cmdsOK = false
		}
		cmds = append(cmds, s)
	}
	// A training job that the overload starved until after the load
	// ended did not run "during" it; say so rather than pass quietly.
	for _, c := range r.Commands {
		if c.Err == nil && c.Took < o.Elapsed/10 {
			cmds = append(cmds, fmt.Sprintf("`%s` ended within the first tenth of the load", c.Command))
		}
	}
	return []Criterion{
		{"excess refused with 429 + Retry-After, never 5xx", excess, len(bad) == 0},
		{"accepted throughput >= 90% of saturation",
			fmt.Sprintf("%.1f/s accepted vs %.1f/s at saturation%s (%.0f%%)", o.Accepted, sat.ImagesPerSecond, satName, 100*o.Accepted/sat.ImagesPerSecond),
			o.Accepted >= 0.9*sat.ImagesPerSecond},
		{"accepted p99 <= 2x p99 at saturation",
			fmt.Sprintf("p99 %v vs %v at saturation%s (%.2fx)", o.P99.Round(time.Millisecond), sat.P99.Round(time.Millisecond), satName, float64(o.P99)/float64(sat.P99)),
			sat.P99 > 0 && o.P99 <= 2*sat.P99},
		{"peak RSS <= idle RSS (or the commands' own peak) + admitted images + message bound",
			fmt.Sprintf("peak %s vs bound %s = %s %s + admitted images %s (2 x %d x (JPEG %d B + tensor %d B + decoding %d B)) + messages %s",
				mib(r.Peak), mib(bound), baseName, mib(base), mib(r.QueueBound), r.Admitted, r.ImageBytes, r.TensorBytes, r.DecodeBytes, mib(r.MsgBound)),
			r.Peak <= bound},
		{"goroutines back to baseline",
			fmt.Sprintf("%d after (baseline %d, peak %d, slack %d)", r.After.Goroutines, r.Baseline.Goroutines, r.PeakGoroutines, r.Config.GoroutineSlack),
			r.After.Goroutines <= r.Baseline.Goroutines+r.Config.GoroutineSlack},
		{"open files back to baseline",
			fmt.Sprintf("%d after (baseline %d, peak %d, slack %d)", r.After.FDs, r.Baseline.FDs, r.PeakFDs, r.Config.FDSlack),
			r.After.FDs <= r.Baseline.FDs+r.Config.FDSlack},
		{"import and training succeeded during the load", strings.Join(cmds, "; "), cmdsOK},
	}
}

// baseline is the saturation the overload is held to: the mean of the
// measurements before and after it when both were made (throughput and
// p99 each), else the one before; name says which, for the report.
func (r *SoakReport) baseline() (sat Stats, name string) {
	before, after := r.Saturation, r.SaturationAfter
	if after.Requests == 0 || after.ImagesPerSecond == 0 {
		return before, ""
	}
	sat = before
	sat.ImagesPerSecond = (before.ImagesPerSecond + after.ImagesPerSecond) / 2
	sat.P99 = (before.P99 + after.P99) / 2
	return sat, fmt.Sprintf(", the mean of %.1f/s (p99 %v) before and %.1f/s (p99 %v) after",
		before.ImagesPerSecond, before.P99.Round(time.Millisecond), after.ImagesPerSecond, after.P99.Round(time.Millisecond))
}

// Passed reports whether every criterion was met.
func (r *SoakReport) Passed() bool {
	for _, c := range r.Criteria() {
		if !c.Met {
			return false
		}
	}
	return true
}

// describe says how many cores the generator and the server used in a
// phase, and the generator's CPU per request at perSecond requests.
func (p PhaseCPU) describe(phase string, perSecond float64) string {
	if p.Elapsed <= 0 {
		return phase + ": not measured"
	}
	gen := p.Generator.Seconds() / p.Elapsed.Seconds()
	s := fmt.Sprintf("%s: generator %.2f cores", phase, gen)
	if perSecond > 0 {
		s += fmt.Sprintf(" (%.0f µs a request)", 1e6*gen/perSecond)
	}
	if p.Server > 0 {
		s += fmt.Sprintf(", server %.2f cores", p.Server.Seconds()/p.Elapsed.Seconds())
	}
	return s
}

// Markdown writes the soak's summary.
func (r *SoakReport) Markdown(w io.Writer) {
	c, sat, o := r.Config, r.Saturation, r.Overload
	fmt.Fprintf(w, "### Soak: %s v%d, REST /predict\n\n", r.Model, r.Version)
	fmt.Fprintf(w, "Machine: %s; load average before %s, after %s.\n", r.Machine, r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "Server: --inference.queue-size %d, --inference.latency-target %v, --grpc.max-message-bytes %d; a %d px JPEG (%d bytes, %d tensor bytes).\n",
		c.QueueSize, c.LatencyTarget, c.MaxMessageBytes, c.ImageSize, r.ImageBytes, r.TensorBytes)
	if r.ServerCores > 0 {
		fmt.Fprintf(w, "The server is confined to %.2f cores of CPU time (a CFS quota); the generator and the commands' clients run on the rest.\n\n", r.ServerCores)
	} else {
		fmt.Fprintf(w, "The server has no CPU quota: the generator, on the same machine, takes its CPU from the server's.\n\n")
	}
	fmt.Fprintf(w, "| phase | offered | accepted/s | p50 | p99 | outcomes |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| saturation: closed loop, %d callers, %v | - | %.1f | %v | %v | %d requests, %d errors |\n",
		sat.Concurrency, c.SaturationTime, sat.ImagesPerSecond, sat.P50.Round(time.Millisecond), sat.P99.Round(time.Millisecond), sat.Requests, sat.Errors)
	var outs []string
	for i, n := range o.Counts {
		if n > 0 {
			outs = append(outs, fmt.Sprintf("%s %d", Outcome(i), n))
		}
	}
	fmt.Fprintf(w, "| overload: open loop, %v | %.1f/s (%d) | %.1f | %v | %v | %s; %d sent late; at most %d in flight |\n",
		o.Elapsed.Round(time.Second), o.Rate, o.Offered, o.Accepted, o.P50.Round(time.Millisecond), o.P99.Round(time.Millisecond),
		strings.Join(outs, ", "), o.Late, o.MaxOut)
	after := r.SaturationAfter
	cpu := []string{r.SaturationCPU.describe("saturation", sat.ImagesPerSecond), r.OverloadCPU.describe("overload", o.Rate)}
	if after.Requests > 0 {
		fmt.Fprintf(w, "| saturation again, after the overload: closed loop, %d callers, %v | - | %.1f | %v | %v | %d requests, %d errors |\n",
			after.Concurrency, c.SaturationTime, after.ImagesPerSecond, after.P50.Round(time.Millisecond), after.P99.Round(time.Millisecond), after.Requests, after.Errors)
		cpu = append(cpu, r.SaturationAfterCPU.describe("saturation after", after.ImagesPerSecond))
	}
	where := "the generator shares the server's cores"
	if r.ServerCores > 0 {
		where = fmt.Sprintf("the server within its quota of %.2f cores, the generator outside it", r.ServerCores)
	}
	fmt.Fprintf(w, "\nCPU (%s; %s client): %s.\n\n", where, c.Client, strings.Join(cpu, "; "))
	fmt.Fprintf(w, "| resource | baseline (idle) | peak under load | after (%v later) |\n|---|---|---|---|\n", r.SettledIn.Round(time.Second))
	peakNote := "VmHWM"
	if r.PeakResetFailed != nil {
		peakNote = "sampled VmRSS; VmHWM could not be reset: " + r.PeakResetFailed.Error()
	}
	fmt.Fprintf(w, "| RSS | %s | %s (%s; sampled %s) | %s |\n", mib(r.Baseline.RSS), mib(r.Peak), peakNote, mib(r.PeakSampled), mib(r.After.RSS))
	if r.AlonePeak > 0 {
		var took []string
		for _, c := range r.Alone {
			took = append(took, c.Took.Round(time.Second).String())
		}
		fmt.Fprintf(w, "| RSS, the commands alone without load (%s) | | %s | |\n", strings.Join(took, ", "), mib(r.AlonePeak))
	}
	fmt.Fprintf(w, "| goroutines | %d | %d | %d |\n", r.Baseline.Goroutines, r.PeakGoroutines, r.After.Goroutines)
	fmt.Fprintf(w, "| open files | %d | %d | %d |\n\n", r.Baseline.FDs, r.PeakFDs, r.After.FDs)
	fmt.Fprintf(w, "| criterion | measured | met |\n|---|---|---|\n")
	for _, cr := range r.Criteria() {
		met := "**no**"
		if cr.Met {
			met = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", cr.Name, strings.ReplaceAll(cr.Measured, "|", "\\|"), met)
	}
}
