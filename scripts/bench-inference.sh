#!/usr/bin/env bash
# Inference benchmarks (`make bench`): starts `shoal serve` on embedded
# defaults in a temporary folder on free ports (scripts/run.sh: the demo
# dataset imported, the default small model trained by the Trainer and
# promoted), uploads an untrained ResNet-18 at 224x224 (batch-dynamic ONNX)
# through the Registry and promotes it,
# then measures both models with shoal-bench: bare ONNX Runtime with the
# server's session settings, OIP ModelInfer with tensors, gRPC Predict and
# REST /predict with a 300 px JPEG. Prints Markdown for BENCHMARKS.md.
#
#   scripts/bench-inference.sh [shoal-bench run flags...]      e.g. --duration 10s
#
# Server settings come from the environment (defaults: the server's own):
# BENCH_SESSIONS, BENCH_INTRA_OP_THREADS, BENCH_MAX_BATCH, BENCH_QUEUE_DELAY,
# BENCH_WIDE_SESSION (true/false).
# BENCH_MODELS picks the models (default "fashion resnet18"; also resnet18-gomlx).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { echo "bench: $*" >&2; }

export GOEXPERIMENT=${GOEXPERIMENT:-simd}
go build -o bin/shoal ./cmd/shoal
go build -o bin/shoal-bench ./cmd/shoal-bench
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH

. scripts/lib.sh # cleanup, start_platform
work=$(mktemp -d)
pid=
trap cleanup EXIT

threads=${BENCH_INTRA_OP_THREADS:-1}
serve_flags=(--inference.intra-op-threads="$threads")
[ -n "${BENCH_SESSIONS:-}" ] && serve_flags+=(--inference.sessions="$BENCH_SESSIONS")
[ -n "${BENCH_MAX_BATCH:-}" ] && serve_flags+=(--inference.max-batch-size="$BENCH_MAX_BATCH")
[ -n "${BENCH_QUEUE_DELAY:-}" ] && serve_flags+=(--inference.max-queue-delay="$BENCH_QUEUE_DELAY")
[ -n "${BENCH_WIDE_SESSION:-}" ] && serve_flags+=(--inference.wide-session="$BENCH_WIDE_SESSION")

log "starting the platform in $work; training the small model takes a few minutes"
start_platform "$work" "${serve_flags[@]}" || { tail -n 40 "$work/run.log" >&2; exit 1; }
grpc=127.0.0.1:$gport
http=127.0.0.1:$hport
log "platform ready (gRPC $grpc, HTTP $http)"

# The admin token the new install wrote, for the CLI and shoal-bench.
SHOAL_TOKEN=$(cat "$work/data/admin-token")
export SHOAL_TOKEN

# resnet18 is torchvision's ResNet-18 as PyTorch exports it (Conv nodes);
# resnet18-gomlx is the Trainer's resnet18 architecture as the Trainer
# exports it (convolutions as im2col + MatMul). Both untrained, 224x224.
models=${BENCH_MODELS:-fashion resnet18}
upload() { # name arch
	log "exporting and uploading $1 ($2, 224x224, untrained)"
	bin/shoal-bench export --arch "$2" --size 224 --channels 3 --classes 5 --out "$work/$1.onnx"
	bin/shoal models upload --addr "$grpc" --model "$1" --architecture "$2" --size 224 --channels 3 \
		--labels c0,c1,c2,c3,c4 --probabilities --input-name images --output-name probabilities \
		--description "untrained $2, for the inference benchmarks" "$work/$1.onnx" >&2
	bin/shoal models promote "$1" 1 --addr "$grpc" >&2
}
for model in $models; do
	case $model in
	fashion) ;;
	resnet18) upload resnet18 torchvision-resnet18 ;;
	resnet18-gomlx) upload resnet18-gomlx resnet18 ;;
	*) log "unknown model $model (fashion, resnet18, resnet18-gomlx)"; exit 2 ;;
	esac
done

# The vector extensions decide which ONNX Runtime kernels run: machines of
# the same name differ by several times on ResNet-18 with and without AVX-512.
simd=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512_vnni|avx512_bf16|amx_tile' | tr '\n' ' ')
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') (${simd% }); $(uname -sr)"
echo "Load before: $(uptime | sed 's/.*load average/load average/')"
echo
for model in $models; do
	bin/shoal-bench run --grpc "$grpc" --http "$http" --model "$model" --intra-op-threads "$threads" \
		--max-batch "${BENCH_MAX_BATCH:-8}" "$@"
done
echo "Load after: $(uptime | sed 's/.*load average/load average/')"
