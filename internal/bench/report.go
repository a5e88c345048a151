package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// BestORT is bare ONNX Runtime's best throughput at a batch the server may
// form (at most its configured maximum), in the server's sessions or in one
// session of every thread: the ceiling the served figures are compared
// with.
func (r *Report) BestORT() ORTPoint {
	var best ORTPoint
	most := max(r.MaxBatch, r.ConfiguredMaxBatch)
	for _, p := range append(slices.Clone(r.ORT), r.WideORT...) {
		if p.Batch <= most && p.ImagesPerSecond > best.ImagesPerSecond {
			best = p
		}
	}
	return best
}

// Saturation is the best throughput over the concurrencies.
func Saturation(ss []Stats) Stats {
	var best Stats
	for _, s := range ss {
		if s.ImagesPerSecond > best.ImagesPerSecond {
			best = s
		}
	}
	return best
}

func at(ss []Stats, concurrency int) (Stats, bool) {
	for _, s := range ss {
		if s.Concurrency == concurrency {
			return s, true
		}
	}
	return Stats{}, false
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

// us writes a CPU time per image in microseconds; "–" when not measured.
func us(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/1000)
}

// Markdown writes the report as BENCHMARKS.md's tables for one model.
func (r *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s v%d (%s, input %s)\n\n", r.Model, r.Version, r.Architecture, r.Input)
	if r.WideOnly {
		fmt.Fprintf(w, "Server: the version measured at load that its wide session alone (%d intra-op threads) computes more than %d single-threaded sessions side by side and keeps it as its only session, max batch %d; the bare runs measure both. JPEG: %d bytes. The version holds %.1f MiB (ListLoadedModels).\n\n",
			r.WideThreads, r.Settings.Sessions, r.MaxBatch, r.ImageBytes, float64(r.LoadedBytes)/(1<<20))
	} else {
		fmt.Fprintf(w, "Server: %d ONNX Runtime sessions × %d intra-op thread(s), wide session %d thread(s) (0: none), max batch %d; the bare runs use the same sessions and threads. JPEG: %d bytes. The version holds %.1f MiB (ListLoadedModels).\n\n",
			r.Settings.Sessions, r.Settings.IntraOpThreads, r.WideThreads, r.MaxBatch, r.ImageBytes, float64(r.LoadedBytes)/(1<<20))
	}
	fmt.Fprintf(w, "CPU µs per image: the CPU time of the process (all its threads) over the images answered, warm-up included; for the served runs, the server's (from its `process_cpu_seconds_total`) apart from the load generator's, which shares the same cores.\n\n")
	fmt.Fprintf(w, "(a) bare ONNX Runtime, no RPC\n\n| batch | images/s | ms per batch | CPU µs per image |\n|---:|---:|---:|---:|\n")
	for _, p := range r.ORT {
		fmt.Fprintf(w, "| %d | %.1f | %s | %s |\n", p.Batch, p.ImagesPerSecond, ms(p.BatchLatency), us(p.CPU))
	}
	if len(r.WideORT) > 0 {
		fmt.Fprintf(w, "\n(a') bare ONNX Runtime in one session of %d intra-op threads (the server's wide session)\n\n| batch | images/s | ms per batch | CPU µs per image |\n|---:|---:|---:|---:|\n", r.WideThreads)
		for _, p := range r.WideORT {
			fmt.Fprintf(w, "| %d | %.1f | %s | %s |\n", p.Batch, p.ImagesPerSecond, ms(p.BatchLatency), us(p.CPU))
		}
	}
	oipHeader := "| concurrency | images/s | p50 ms | p99 ms | server CPU µs per image | load generator CPU µs per image | errors |\n|---:|---:|---:|---:|---:|---:|---:|\n"
	fmt.Fprint(w, "\n(b) OIP ModelInfer over gRPC, one preprocessed FP32 image per request\n\n"+oipHeader)
	for _, s := range r.ModelInfer {
		fmt.Fprintf(w, "| %d | %.1f | %s | %s | %s | %s | %d |\n", s.Concurrency, s.ImagesPerSecond, ms(s.P50), ms(s.P99), us(s.ServerCPU), us(s.ClientCPU), s.Errors)
	}
	if len(r.ModelInferBatched) > 0 {
		fmt.Fprintf(w, "\n(b') OIP ModelInfer over gRPC, %d preprocessed FP32 images per request\n\n%s", r.OIPImages, oipHeader)
		for _, s := range r.ModelInferBatched {
			fmt.Fprintf(w, "| %d | %.1f | %s | %s | %s | %s | %d |\n", s.Concurrency, s.ImagesPerSecond, ms(s.P50), ms(s.P99), us(s.ServerCPU), us(s.ClientCPU), s.Errors)
		}
	}
	fmt.Fprintf(w, "\n(c) one %d-byte JPEG per request; preprocess, queue and compute are the server's mean timings per request, batch the mean batch it ran in\n\n", r.ImageBytes)
	fmt.Fprintf(w, "| protocol | concurrency | images/s | p50 ms | p99 ms | decode+preprocess ms | queue ms | compute ms | batch | server CPU µs per image | load generator CPU µs per image | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range []struct {
		name string
		ss   []Stats
	}{{"gRPC Predict", r.Predict}, {"REST /predict", r.REST}} {
		for _, s := range row.ss {
			fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s | %s | %s | %s | %.1f | %s | %s | %d |\n", row.name, s.Concurrency, s.ImagesPerSecond,
				ms(s.P50), ms(s.P99), ms(s.Preprocess), ms(s.Queue), ms(s.Compute), s.MeanBatch, us(s.ServerCPU), us(s.ClientCPU), s.Errors)
		}
	}
	best := r.BestORT()
	fmt.Fprintf(w, "\nRatios to bare ONNX Runtime's best at a batch the server forms (%.1f images/s at batch %d, %d session(s) × %d thread(s)) from the sweeps above:\n\n",
		best.ImagesPerSecond, best.Batch, best.Settings.Sessions, best.Settings.IntraOpThreads)
	ratio := func(v float64) string {
		if best.ImagesPerSecond == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f%%", 100*v/best.ImagesPerSecond)
	}
	for _, row := range []struct {
		name string
		ss   []Stats
	}{{"(b) OIP ModelInfer", r.ModelInfer}, {fmt.Sprintf("(b') OIP ModelInfer, %d images per request", r.OIPImages), r.ModelInferBatched},
		{"(c) gRPC Predict", r.Predict}, {"(c) REST /predict", r.REST}} {
		if len(row.ss) == 0 {
			continue
		}
		s := Saturation(row.ss)
		line := fmt.Sprintf("- %s at saturation: %s (%.1f images/s at concurrency %d)", row.name, ratio(s.ImagesPerSecond), s.ImagesPerSecond, s.Concurrency)
		one, ok1 := at(row.ss, 1)
		c32, ok32 := at(row.ss, 32)
		if strings.HasPrefix(row.name, "(c)") && ok1 && ok32 && one.P50 > 0 {
			line += fmt.Sprintf("; p99 at concurrency 32 = %.1f× the single-request latency (%s ms / %s ms)", float64(c32.P99)/float64(one.P50), ms(c32.P99), ms(one.P50))
		}
		fmt.Fprintln(w, line)
	}
	r.targets(w, best)
	if best.CPU > 0 {
		fmt.Fprintf(w, "\nThe server's CPU per image against bare ONNX Runtime's at batch %d (%s µs), at each target's saturating concurrency: how much CPU the serving path adds, whatever the load generator takes:\n\n", best.Batch, us(best.CPU))
		for _, row := range []struct {
			name string
			ss   []Stats
		}{{"(b) OIP ModelInfer", r.ModelInfer}, {fmt.Sprintf("(b') OIP ModelInfer, %d images per request", r.OIPImages), r.ModelInferBatched},
			{"(c) gRPC Predict", r.Predict}, {"(c) REST /predict", r.REST}} {
			if s := Saturation(row.ss); s.ServerCPU > 0 {
				fmt.Fprintf(w, "- %s: %s µs, bare's is %.0f%% of it (load generator: %s µs per image)\n", row.name, us(s.ServerCPU), 100*float64(best.CPU)/float64(s.ServerCPU), us(s.ClientCPU))
			}
		}
	}
	r.ceilings(w, best)
	if len(r.Rounds) > 0 {
		fmt.Fprintf(w, "\nThe same ratios from %d rounds of back-to-back runs (bare ONNX Runtime as its best above, at batch %d, then each target at its saturating concurrency; %s per run), which the machine's changing load affects less; median and range:\n\n",
			len(r.Rounds), best.Batch, r.point)
		fmt.Fprintf(w, "| target | concurrency | median ratio | range | bare images/s (median) |\n|---|---:|---:|---|---:|\n")
		for i, p := range r.Rounds[0].Served {
			var ratios, bare []float64
			for _, rd := range r.Rounds {
				if i < len(rd.Served) && rd.ORT > 0 {
					ratios = append(ratios, rd.Served[i].ImagesPerSecond/rd.ORT)
					bare = append(bare, rd.ORT)
				}
			}
			if len(ratios) == 0 {
				continue
			}
			sort.Float64s(ratios)
			sort.Float64s(bare)
			fmt.Fprintf(w, "| %s | %d | %.0f%% | %.0f–%.0f%% | %.1f |\n", p.Name, p.Concurrency, 100*ratios[len(ratios)/2], 100*ratios[0], 100*ratios[len(ratios)-1], bare[len(bare)/2])
		}
	}
	fmt.Fprintln(w)
}

// ceilings writes the floor of a gRPC call and what it bounds: the load
// generator shares the server's cores, so a served image costs those cores
// at least bare ONNX Runtime's CPU plus its share of a call's floor (server
// and generator) and, for a JPEG, its decoding; bare's best throughput
// times bare's CPU over that sum is the most a target can reach, however
// well the server schedules.
func (r *Report) ceilings(w io.Writer, best ORTPoint) {
	f := r.Floor
	if f.Requests == 0 || f.ServerCPU <= 0 || best.CPU <= 0 {
		return
	}
	call := f.ServerCPU + f.ClientCPU
	fmt.Fprintf(w, "\n(d) The floor of a gRPC call: `grpc.health.v1.Health/Check` through the server's interceptors, %d callers: %.1f calls/s, CPU per call %s µs of the server's and %s µs of the load generator's. The most each target can reach against bare's best, if an image cost the shared cores no more than bare ONNX Runtime's CPU (%s µs) plus its share of that floor (and its decoding, measured as the server's decode+preprocess time of a lone request):\n\n",
		f.Concurrency, f.ImagesPerSecond, us(f.ServerCPU), us(f.ClientCPU), us(best.CPU))
	ceiling := func(extra time.Duration) string {
		return fmt.Sprintf("%.0f%%", 100*float64(best.CPU)/float64(best.CPU+extra))
	}
	fmt.Fprintf(w, "- (b) OIP ModelInfer, 1 image a call: %s\n", ceiling(call))
	if r.OIPImages > 0 {
		fmt.Fprintf(w, "- (b') OIP ModelInfer, %d images a call: %s\n", r.OIPImages, ceiling(call/time.Duration(r.OIPImages)))
	}
	if one, ok := at(r.Predict, 1); ok && one.Preprocess > 0 {
		fmt.Fprintf(w, "- (c) gRPC Predict, a JPEG decoded in %s ms: %s\n", ms(one.Preprocess), ceiling(call+one.Preprocess))
	}
}

// targets writes the serving targets, each served figure against bare
// ONNX Runtime from the same run: the single-request p50 against one image
// in one session of every thread (at most 1.25×), images/s at concurrency
// 32 against bare's best (at least 95%), and p99 against p50 at 8 and 32
// concurrent (at most 1.5×).
func (r *Report) targets(w io.Writer, best ORTPoint) {
	var single time.Duration
	for _, p := range r.WideORT {
		if p.Batch == 1 {
			single = p.BatchLatency
		}
	}
	fmt.Fprintf(w, "\nAgainst the serving targets (this run):\n\n| target | concurrency 1: p50 / bare 1 image at full threads | concurrency 32: images/s / bare best | p99 / p50 at 8 | p99 / p50 at 32 |\n|---|---:|---:|---:|---:|\n")
	ratio := func(a, b time.Duration) string {
		if a <= 0 || b <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f× (%s / %s ms)", float64(a)/float64(b), ms(a), ms(b))
	}
	tail := func(ss []Stats, c int) string {
		s, ok := at(ss, c)
		if !ok {
			return "–"
		}
		return ratio(s.P99, s.P50)
	}
	for _, row := range []struct {
		name string
		ss   []Stats
	}{{"OIP ModelInfer", r.ModelInfer}, {"gRPC Predict", r.Predict}, {"REST /predict", r.REST}} {
		if len(row.ss) == 0 {
			continue
		}
		lone, thr := "–", "–"
		if s, ok := at(row.ss, 1); ok {
			lone = ratio(s.P50, single)
		}
		if s, ok := at(row.ss, 32); ok && best.ImagesPerSecond > 0 {
			thr = fmt.Sprintf("%.0f%% (%.1f / %.1f)", 100*s.ImagesPerSecond/best.ImagesPerSecond, s.ImagesPerSecond, best.ImagesPerSecond)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", row.name, lone, thr, tail(row.ss, 8), tail(row.ss, 32))
	}
}
