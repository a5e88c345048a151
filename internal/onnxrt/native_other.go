//go:build !(linux && cgo)

package onnxrt

// nativeInUse is not known without glibc's allocator statistics.
func nativeInUse() (int64, bool) { return 0, false }
