#!/usr/bin/env bash
# Inference benchmarks (`make bench`): starts `shoal serve` on embedded
# defaults in a temporary folder on free ports (scripts/run.sh: the demo
# dataset imported, the default small model trained by the Trainer and
# promoted), uploads an untrained ResNet-18 at 224x224 (batch-dynamic ONNX)
# through the Registry and promotes it,
# then measures both models with shoal-bench: bare ONNX Runtime with the
# server's session settings, OIP ModelInfer with tensors, gRPC Predict and
# REST /predict with a 300 px JPEG. Then it stops the platform and times
# `shoal serve` from exec to ready with each model (shoal-bench coldstart),
# and serves ResNet-18 again with --inference.latency-target at
# BENCH_TARGET_FACTOR (1.5) times its measured single-request p50, at 8
# concurrent callers. Prints Markdown for BENCHMARKS.md.
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

. scripts/lib.sh # cleanup, start_platform, note_scheduler
note_scheduler "$(basename "$0" .sh)"
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
		--max-batch "${BENCH_MAX_BATCH:-8}" "$@" | tee "$work/$model.md"
done
echo "Load after: $(uptime | sed 's/.*load average/load average/')"

# Cold start: the platform stopped, `shoal serve` started again on its data
# with each model as the one it loads at start (--inference.default-model),
# timed from exec until /readyz and the model's OIP readiness (its version
# loaded and every batch size warmed) answer 200. The files are in the page
# cache by then: this is the process's start, not a cold disk's.
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
serve=(env SHOAL_GRPC_LISTEN_ADDRESS="$grpc" SHOAL_HTTP_LISTEN_ADDRESS="$http" "$root/bin/shoal" serve "${serve_flags[@]}")
echo
echo "#### Cold start: \`shoal serve\` to ready, 3 starts a model"
echo
header=true
for model in $models; do
	log "cold start with $model"
	bin/shoal-bench coldstart --dir "$work" --http "$http" --model "$model" --runs 3 --header="$header" -- \
		"${serve[@]}" --inference.default-model="$model"
	header=false
done

# The latency target: ResNet-18 served again with
# --inference.latency-target at BENCH_TARGET_FACTOR (1.5) times the single
# request p50 of REST /predict measured above, at 8 concurrent callers.
if [[ " $models " == *" resnet18 "* ]]; then
	p50=$(awk -F'|' '$2 ~ /REST \/predict/ && $3 + 0 == 1 { gsub(/ /, "", $5); print $5; exit }' "$work/resnet18.md")
	best=$(awk -F'|' '$2 ~ /REST \/predict/ && $3 + 0 == 8 { gsub(/ /, "", $4); print $4; exit }' "$work/resnet18.md")
	target=$(awk -v p="$p50" -v f="${BENCH_TARGET_FACTOR:-1.5}" 'BEGIN { printf "%.0fms", p * f }')
	log "ResNet-18 with --inference.latency-target=$target"
	(cd "$work" && exec "${serve[@]}" --inference.default-model=resnet18 --inference.latency-target="$target") >"$work/target.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 600); do
		curl -fs -o /dev/null -H "Authorization: Bearer $SHOAL_TOKEN" "http://$http/v2/models/resnet18/ready" && break
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$work/target.log" >&2; exit 1; }
		sleep 0.1
	done
	echo
	echo "#### ResNet-18 with a latency target of $target (${BENCH_TARGET_FACTOR:-1.5}× REST /predict's single-request p50 of $p50 ms above)"
	echo
	bin/shoal-bench run --grpc "$grpc" --http "$http" --model resnet18 --intra-op-threads "$threads" \
		--max-batch "${BENCH_MAX_BATCH:-8}" --batches 1 --concurrency 1,8 --oip-images 0 --rounds 0 --warmup 5s "$@" |
		tee "$work/target.md" | sed -n '/^| protocol/,/^$/p'
	awk -F'|' -v t="${target%ms}" -v best="$best" '$2 ~ /REST \/predict/ && $3 + 0 == 8 {
		gsub(/ /, "", $4); gsub(/ /, "", $6); gsub(/ /, "", $13)
		printf "REST /predict at 8 concurrent: p99 %s ms against the target %s ms (%s); %s images/s, %.0f%% of the %s images/s without a target; %s errors (refused or failed)\n",
			$6, t, ($6 + 0 <= t + 0 ? "within" : "over"), $4, 100 * $4 / best, best, $13
	}' "$work/target.md"
fi
