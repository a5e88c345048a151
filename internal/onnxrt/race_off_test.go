//go:build !race

package onnxrt_test

const raceBuild = false
