package dataset

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalml/shoal/internal/demodata"
)

// BenchmarkImportFashionMNIST imports all 70,000 Fashion-MNIST images, as
// PNG files, into SQLite and local blobs through the gRPC API, and reports
// the import rate and the peak memory of the import:
//
//	go test -run '^$' -bench ImportFashionMNIST -benchtime 1x ./services/dataset/
//
// SHOAL_BENCH_TREE names a tree already written by `shoal demo-data --full`
// to skip writing it (about half a minute on 2 cores).
func BenchmarkImportFashionMNIST(b *testing.B) {
	tree := os.Getenv("SHOAL_BENCH_TREE")
	if tree == "" {
		if _, err := os.Stat(filepath.Join(demodata.DefaultSource, "train-images-idx3-ubyte.gz")); err != nil {
			b.Skip("Fashion-MNIST is not installed: run scripts/setup-demo-data.sh")
		}
		tree = b.TempDir()
		if _, err := demodata.Generate(b.Context(), demodata.Options{Out: tree, Full: true}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		e := newEnv(b, envOpts{})
		e.svc.roots = append(e.svc.roots, tree)
		e.create(b, "bench")
		resetPeakRSS()
		var peakHeap uint64
		ctx, stop := context.WithCancel(b.Context())
		sampled := make(chan struct{})
		go func() { // samples the heap until the import ends
			defer close(sampled)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapInuse)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
		start := time.Now()
		r := e.importLocal(b, "bench", tree)
		elapsed := time.Since(start)
		stop()
		<-sampled
		if r.err != nil {
			b.Fatal(r.err)
		}
		n := r.done.GetSeen()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "images/s")
		b.ReportMetric(float64(n), "images")
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		if rss := peakRSS(); rss > 0 {
			b.ReportMetric(float64(rss)/(1<<10), "peak-rss-MiB")
		}
		b.Logf("imported %v in %s on %d cores (GOMAXPROCS %d)", r.done, elapsed.Round(time.Millisecond), runtime.NumCPU(), runtime.GOMAXPROCS(0))

		// A re-run decodes and hashes everything again but stores nothing:
		// the rate of validation and the duplicate check alone.
		start = time.Now()
		again := e.importLocal(b, "bench", tree)
		elapsed = time.Since(start)
		if again.err != nil || again.done.GetAdded() != 0 {
			b.Fatalf("re-run = %v, %v; want 0 added", again.done, again.err)
		}
		b.ReportMetric(float64(again.done.GetSeen())/elapsed.Seconds(), "rerun-images/s")
	}
}

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident memory (Linux), so peakRSS measures the import alone.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM in KiB, or 0 where /proc is not available.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
