//go:build linux && cgo

package onnxrt

// #include <malloc.h>
// static size_t shoal_malloc_in_use(void) {
//   struct mallinfo2 mi = mallinfo2();
//   return mi.uordblks + mi.hblkhd;
// }
import "C"

// releaseFreed is glibc's malloc_trim(0): it gives the free pages of every
// arena back to the system.
func releaseFreed() { C.malloc_trim(0) }

// nativeInUse is the bytes the C allocator has handed out and not taken
// back, over all of its arenas and mmapped blocks: ONNX Runtime's
// allocations (weights, pre-packed kernels, its arena) are made there.
func nativeInUse() (int64, bool) {
	return int64(C.shoal_malloc_in_use()), true
}
