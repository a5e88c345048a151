package onnxrt

import (
	"errors"
	"sync"
)

// ErrFootprintUnknown means this platform's C allocator does not report
// what it holds, so Footprint cannot measure.
var ErrFootprintUnknown = errors.New("onnxruntime: native memory cannot be measured on this platform (needs Linux with glibc)")

// footprintMu makes measurements one at a time, so that one load's
// allocations are not counted in another's.
var footprintMu sync.Mutex

// Footprint runs open, which should open and warm sessions, and returns the
// bytes of native memory that are held after it and were not before: what
// those sessions keep, since ONNX Runtime offers no per-session figure.
//
// ONNX Runtime's CPU allocations (the graph's weights, kernels' pre-packed
// copies of them, and each session's arena for activations, grown by the
// warm-up runs to its largest batch) go through the C allocator, whose own
// statistics (glibc's mallinfo2: bytes in use in every arena plus mmapped
// blocks) are read before and after. Measurements run one at a time, and
// Inspect and Session.Close, which free native memory, wait for them. What
// runs meanwhile in other sessions adds its transient allocations to the
// figure, and so does a session that another caller opens meanwhile; warm
// sessions allocate little per run, so the error is small against a
// model's size. Memory on the Go heap (the sessions' input and output
// buffers) is not included: the caller adds what it allocated.
func Footprint(open func() error) (int64, error) {
	footprintMu.Lock()
	defer footprintMu.Unlock()
	before, ok := nativeInUse()
	if !ok {
		return 0, ErrFootprintUnknown
	}
	if err := open(); err != nil {
		return 0, err
	}
	after, _ := nativeInUse()
	return max(after-before, 0), nil
}

// ReleaseFreed gives the C allocator's free pages back to the system.
// glibc keeps what ONNX Runtime frees in its arenas (one per thread that
// allocated, up to eight per core) for reuse, so after a training job on
// the ONNX Runtime backend or a version's unload the process kept hundreds
// of MiB it no longer used; call it after such large frees. It holds
// footprintMu so that a measurement in progress is not disturbed.
func ReleaseFreed() {
	footprintMu.Lock()
	defer footprintMu.Unlock()
	releaseFreed()
}
