#!/usr/bin/env bash
# Training benchmarks of internal/ml on Fashion-MNIST (Debian package
# dataset-fashion-mnist), reported with the machine they ran on:
#
#   1. throughput: steady-state training images/s (and images per CPU-second,
#      which survives other load on a shared machine) per backend and build:
#      pure-Go backend with and without GOEXPERIMENT=simd, and the ONNX
#      Runtime backend when scripts/setup-onnxruntime.sh has installed it;
#   2. accuracy: all 60,000 training images for SHOAL_BENCH_EPOCHS epochs,
#      test accuracy and wall time per epoch, then ONNX export checked
#      against ONNX Runtime on the 10,000 test images.
#
#   make bench-train                       (or scripts/bench-train.sh)
#   SHOAL_BENCH_ARCH=resnet-small SHOAL_BENCH_STEPS=20 scripts/bench-train.sh throughput
#   SHOAL_BENCH_EPOCHS=8 SHOAL_BENCH_BACKEND=go scripts/bench-train.sh accuracy
#
# Env: SHOAL_BENCH_ARCH (small-cnn), SHOAL_BENCH_BATCH (64), SHOAL_BENCH_STEPS
# (throughput steps, 100), SHOAL_BENCH_EPOCHS (accuracy epochs, 8),
# SHOAL_BENCH_BACKEND (accuracy backend: go | onnx; default onnx when ONNX
# Runtime is installed), SHOAL_FASHION_MNIST (IDX directory).
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
steps=${SHOAL_BENCH_STEPS:-100}
export SHOAL_BENCH_EPOCHS=${SHOAL_BENCH_EPOCHS:-8}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

if ! ls "${SHOAL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"/train-images-idx3-ubyte* >/dev/null 2>&1; then
	echo "bench-train: Fashion-MNIST missing: apt-get install dataset-fashion-mnist" >&2
	exit 1
fi
ort=""
if ort=$(scripts/setup-onnxruntime.sh 2>/dev/null); then :; else ort=""; fi

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# go: $(go version | cut -d' ' -f3-), arch ${SHOAL_BENCH_ARCH:-small-cnn}, batch ${SHOAL_BENCH_BATCH:-64}"

# Test binaries are built once per GOEXPERIMENT; -p 1 keeps the build from
# starving other work on a small machine.
go test -p 1 -c -o "$bin/ml" ./internal/ml
GOEXPERIMENT=simd go test -p 1 -c -o "$bin/ml.simd" ./internal/ml

throughput() { # label, binary, backend
	local out
	out=$(GOMLX_NO_AUTO_INSTALL=1 GOMLX_BACKEND=$3 "$2" -test.run '^$' -test.bench '^BenchmarkTrainThroughput$' \
		-test.benchtime "${steps}x" 2>&1 | grep -E '^BenchmarkTrainThroughput|images/s|FAIL|panic' || true)
	printf '%-34s %s\n' "$1" "$(echo "$out" | grep -oE '[0-9.]+ images/(cpu-)?s' | paste -sd' ')"
}

if [ "$what" = all ] || [ "$what" = throughput ]; then
	echo "## throughput ($steps steps, after the compiling step)"
	throughput "go backend, GOEXPERIMENT=simd" "$bin/ml.simd" "go:parallelism=-1"
	throughput "go backend, no simd" "$bin/ml" "go:parallelism=-1"
	if [ -n "$ort" ]; then
		throughput "onnx backend (ONNX Runtime 1.30)" "$bin/ml.simd" "onnx:$ort"
	else
		echo "onnx backend: skipped (run scripts/setup-onnxruntime.sh)"
	fi
fi

if [ "$what" = all ] || [ "$what" = accuracy ]; then
	backend=${SHOAL_BENCH_BACKEND:-}
	if [ -z "$backend" ]; then backend=$([ -n "$ort" ] && echo onnx || echo go); fi
	case $backend in
	onnx) cfg="onnx:$ort" ;;
	go) cfg="go:parallelism=-1" ;;
	*) echo "bench-train: SHOAL_BENCH_BACKEND must be go or onnx" >&2; exit 2 ;;
	esac
	echo "## accuracy: $SHOAL_BENCH_EPOCHS epochs on 60,000 images, backend $backend"
	ONNXRUNTIME_SHARED_LIBRARY_PATH=$ort GOMLX_NO_AUTO_INSTALL=1 GOMLX_BACKEND=$cfg \
		"$bin/ml.simd" -test.run '^$' -test.bench '^BenchmarkFashionMNIST$' -test.benchtime 1x -test.v -test.timeout 0 2>&1 |
		grep -E 'epoch [0-9]+:|onnx|test-acc|FAIL|panic' | sed 's/^ *//'
fi
