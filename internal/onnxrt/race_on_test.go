//go:build race

package onnxrt_test

// raceBuild: the race detector's shadow memory counts against RLIMIT_DATA,
// so a child process of a race-built test binary cannot load ONNX Runtime
// within the small memory bounds the tests set.
const raceBuild = true
