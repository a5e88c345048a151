//go:build !(linux && cgo)

package onnxrt

// nativeInUse is not known without glibc's allocator statistics.
func nativeInUse() (int64, bool) { return 0, false }

// releaseFreed has nothing to do without glibc's allocator.
func releaseFreed() {}
