#!/usr/bin/env bash
# Training benchmarks of internal/ml on Fashion-MNIST (Debian package
# dataset-fashion-mnist), reported with the machine they ran on:
#
#   1. throughput: steady-state training images/s (and images per CPU-second,
#      which survives other load on a shared machine) per architecture at
#      its usual input (small-cnn 28x28 gray Fashion-MNIST; resnet-small
#      64x64 RGB and resnet18 224x224 RGB on random pixels, a few steps) and
#      per backend and build: pure-Go backend with and without
#      GOEXPERIMENT=simd, and the ONNX Runtime backend when
#      scripts/setup-onnxruntime.sh has installed it; then the cost of
#      host-side augmentation per image;
#   2. accuracy: the Trainer's default settings (internal/ml Defaults) on
#      all 60,000 training images, test accuracy, wall and CPU time per
#      epoch, then ONNX export checked against ONNX Runtime on the 10,000
#      test images;
#   3. service: the same defaults through the product: shoal serve, all
#      70,000 images imported, shoal train --follow, the version registered;
#   4. headonly: a head-only job of the original pipeline's size (ResNet-18
#      at 224x224 as PyTorch exports it, 835 training photos of a generated
#      photo-like set, 20 epochs, Adam 0.001, batch 16) through the Trainer:
#      wall and CPU time of the first job (the backbone runs in ONNX Runtime
#      on all 1,306 images) and of a second (its features cached). Needs ONNX
#      Runtime, not Fashion-MNIST; SHOAL_BENCH_BASE_ONNX names another
#      ResNet-18 ONNX file (e.g. a real torchvision export) to use instead.
#   5. finetune: PyTorch's ResNet-18 at 224x224 (Debian's python3-torch
#      writes the export) fine-tuned three ways, every layer, the last stage
#      and the head, the head alone, by Shoal (internal/ml, the frozen part
#      in ONNX Runtime) and by PyTorch on the CPU in the same run, training
#      images/s each (SHOAL_BENCH_BATCH, 16; SHOAL_BENCH_STEPS, 4).
#   6. accuracy-parity (not part of "all"): PyTorch pretrains ResNet-18 at
#      64x64 on one generated photo-like set (6 classes, 1,200 images, 3
#      epochs) and exports it as users do (opset 13, dynamic batch); then
#      PyTorch and Shoal (internal/ml, the frozen part in ONNX Runtime)
#      fine-tune that export on another generated set (5 other classes,
#      320 training images; 500 test images) with one recipe (new head,
#      Adam, constant rate, batch 16, no augmentation, batch norms frozen),
#      head only and last stage + head, reading the same float tensors;
#      prints the test accuracy of each side by side for every seed
#      (SHOAL_PARITY_SEEDS, "1 2"; SHOAL_PARITY_EPOCHS, 8; SHOAL_PARITY_LR,
#      0.001; SHOAL_PARITY_MODES="head-only last-stage full" adds every
#      layer, on ONNX Runtime's GoMLX backend, minutes more on 2 cores;
#      SHOAL_PARITY_EXPORT=bn gives Shoal the export with its batch norms
#      kept as nodes, not folded into the convolutions).
#      Needs ONNX Runtime and Debian's python3-torch.
#
#   make bench-train                       (or scripts/bench-train.sh)
#   SHOAL_BENCH_ARCHS=small-cnn scripts/bench-train.sh throughput
#   SHOAL_BENCH_BACKEND=go scripts/bench-train.sh accuracy
#   scripts/bench-train.sh service
#   scripts/bench-train.sh headonly
#   scripts/bench-train.sh finetune
#   scripts/bench-train.sh accuracy-parity       (make bench-train-parity)
#   SHOAL_BENCH_EPOCHS=8 SHOAL_BENCH_SCHEDULE=constant SHOAL_BENCH_AUGMENT=none scripts/bench-train.sh accuracy
#
# Env: SHOAL_BENCH_ARCHS (throughput architectures, all three),
# SHOAL_BENCH_BACKEND (accuracy backend: go | onnx; default onnx when ONNX
# Runtime is installed), SHOAL_FASHION_MNIST (IDX directory); the accuracy
# run's settings default to the Trainer's and can be overridden with
# SHOAL_BENCH_ARCH, _EPOCHS, _BATCH, _LR, _OPTIMIZER (adam, adamw, sgd),
# _SCHEDULE (constant, cosine, step), _WEIGHT_DECAY and _AUGMENT ("none"
# or e.g. "hflip,crop=0.8,jitter=0.1").
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
archs=${SHOAL_BENCH_ARCHS:-small-cnn resnet-small resnet18}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

case $what in
all | throughput | accuracy | service | headonly | finetune | accuracy-parity) ;;
*) echo "bench-train: unknown part $what (throughput, accuracy, service, headonly, finetune, accuracy-parity)" >&2; exit 2 ;;
esac
fastml() { [ "$what" = headonly ] || [ "$what" = finetune ] || [ "$what" = accuracy-parity ]; }
if ! fastml && ! ls "${SHOAL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"/train-images-idx3-ubyte* >/dev/null 2>&1; then
	echo "bench-train: Fashion-MNIST missing: apt-get install dataset-fashion-mnist" >&2
	exit 1
fi
ort=""
if ort=$(scripts/setup-onnxruntime.sh 2>/dev/null); then :; else ort=""; fi

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# go: $(go version | cut -d' ' -f3-)"

# Test binaries are built once per GOEXPERIMENT; -p 1 keeps the build from
# starving other work on a small machine.
if ! fastml; then
	go test -p 1 -c -o "$bin/ml" ./internal/ml
	GOEXPERIMENT=simd go test -p 1 -c -o "$bin/ml.simd" ./internal/ml
fi

throughput() { # label, binary, backend, arch, shape, batch, steps
	local out
	out=$(GOMLX_NO_AUTO_INSTALL=1 GOMLX_BACKEND=$3 SHOAL_BENCH_ARCH=$4 SHOAL_BENCH_SHAPE=$5 SHOAL_BENCH_BATCH=$6 \
		"$2" -test.run '^$' -test.bench '^BenchmarkTrainThroughput$' -test.benchtime "${7}x" -test.timeout 0 2>&1 |
		grep -E '^BenchmarkTrainThroughput|images/s|FAIL|panic' || true)
	printf '%-14s %-10s batch %-3s %-32s %s (load %s)\n' "$4" "${5:-1x28x28}" "$6" "$1" \
		"$(echo "$out" | grep -oE '[0-9.]+ images/(cpu-)?s' | paste -sd' ')" "$(cut -d' ' -f1 /proc/loadavg)"
}

if [ "$what" = all ] || [ "$what" = throughput ]; then
	echo "## training throughput (after the compiling step)"
	for arch in $archs; do
		# shape, batch, steps: each architecture at its usual input.
		case $arch in
		small-cnn) set -- "" 64 100 ;;
		resnet-small) set -- 3x64x64 64 10 ;;
		resnet18) set -- 3x224x224 16 3 ;;
		*) set -- "" 64 20 ;;
		esac
		throughput "go backend, GOEXPERIMENT=simd" "$bin/ml.simd" "go:parallelism=-1" "$arch" "$@"
		if [ "$arch" = small-cnn ]; then
			throughput "go backend, no simd" "$bin/ml" "go:parallelism=-1" "$arch" "$@"
		fi
		if [ -n "$ort" ]; then
			throughput "onnx backend (ONNX Runtime 1.30)" "$bin/ml.simd" "onnx:$ort" "$arch" "$@"
		else
			echo "$arch onnx backend: skipped (run scripts/setup-onnxruntime.sh)"
		fi
	done
	echo "## augmentation on the host (flips, crop 0.5, jitter 0.2; one core)"
	for shape in 1x28x28 3x64x64 3x224x224; do
		printf '%-10s %s\n' "$shape" "$(SHOAL_BENCH_SHAPE=$shape "$bin/ml.simd" -test.run '^$' -test.bench '^BenchmarkAugment$' -test.benchtime 1s 2>&1 |
			grep -oE '[0-9.]+ images/s')"
	done
fi

if [ "$what" = all ] || [ "$what" = accuracy ]; then
	backend=${SHOAL_BENCH_BACKEND:-}
	if [ -z "$backend" ]; then backend=$([ -n "$ort" ] && echo onnx || echo go); fi
	case $backend in
	onnx) cfg="onnx:$ort" ;;
	go) cfg="go:parallelism=-1" ;;
	*) echo "bench-train: SHOAL_BENCH_BACKEND must be go or onnx" >&2; exit 2 ;;
	esac
	echo "## accuracy: default settings on 60,000 images, backend $backend"
	ONNXRUNTIME_SHARED_LIBRARY_PATH=$ort GOMLX_NO_AUTO_INSTALL=1 GOMLX_BACKEND=$cfg \
		"$bin/ml.simd" -test.run '^$' -test.bench '^BenchmarkFashionMNIST$' -test.benchtime 1x -test.v -test.timeout 0 2>&1 |
		grep -E 'config:|epoch [0-9]+:|onnx|test-acc|FAIL|panic' | sed 's/^ *//'
fi

if [ "$what" = all ] || [ "$what" = service ]; then
	# The product's own path: all 70,000 images imported through the Dataset
	# service, a snapshot, then `shoal train` with the defaults on the real
	# server (read the snapshot over gRPC, decode, train, evaluate, export,
	# verify in ONNX Runtime, register).
	echo "## through the service: shoal serve, import 70,000, shoal train --dataset fashion-full (defaults)"
	. scripts/lib.sh
	go build -o "$bin/shoal" ./cmd/shoal
	svc=$(mktemp -d)
	read -r gport hport < <(free_ports 2)
	# exec: $! is then the server itself, which the trap stops (not a
	# subshell whose end would leave the server running).
	(cd "$svc" && ONNXRUNTIME_SHARED_LIBRARY_PATH=$ort exec "$bin/shoal" serve --grpc.listen-address=127.0.0.1:$gport \
		--http.listen-address=127.0.0.1:$hport >serve.log 2>&1) &
	spid=$!
	trap 'kill $spid 2>/dev/null; wait $spid 2>/dev/null || true; rm -rf "$bin" "$svc"' EXIT
	addr=127.0.0.1:$gport
	for _ in $(seq 1 150); do curl -fsS "127.0.0.1:$hport/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
	(cd "$svc" && "$bin/shoal" demo-data --full --out ./data/import/fashion-full >/dev/null)
	t0=$(date +%s)
	"$bin/shoal" dataset create fashion-full --addr "$addr" >/dev/null
	(cd "$svc" && "$bin/shoal" dataset import fashion-full ./data/import/fashion-full --addr "$addr" 2>/dev/null | tail -n 1)
	"$bin/shoal" dataset snapshot fashion-full --addr "$addr" >/dev/null
	t1=$(date +%s)
	echo "import + snapshot: $((t1 - t0)) s (load $(cut -d' ' -f1 /proc/loadavg))"
	# Not a terminal: plain lines, one per epoch, no progress redraws.
	"$bin/shoal" train --dataset fashion-full --snapshot 1 --follow --addr "$addr" 2>&1
	t2=$(date +%s)
	echo "train job: $((t2 - t1)) s wall (load $(cut -d' ' -f1-3 /proc/loadavg))"
	"$bin/shoal" models show fashion-full 1 --addr "$addr" | grep -E 'accuracy'
fi

if [ "$what" = all ] || [ "$what" = headonly ]; then
	echo "## head-only: ResNet-18 backbone in ONNX Runtime, 835 training photos, 20 epochs, batch 16 (first job, then cached features)"
	if [ -z "$ort" ]; then
		echo "skipped: head-only training runs the backbone in ONNX Runtime (run scripts/setup-onnxruntime.sh)"
	else
		go test -p 1 -c -o "$bin/trainer" ./services/trainer
		ONNXRUNTIME_SHARED_LIBRARY_PATH=$ort GOMLX_NO_AUTO_INSTALL=1 "$bin/trainer" -test.run '^$' -test.bench '^BenchmarkHeadOnlyJob$' \
			-test.benchtime 1x -test.v -test.timeout 0 2>&1 | grep -vE 'level=|^Go backend' | grep -E 'generated|job|backbone|epoch|exported|wall-s|FAIL|panic' |
			sed 's/^ *//'
	fi
fi

if [ "$what" = all ] || [ "$what" = finetune ]; then
	echo "## fine-tuning PyTorch's ResNet-18 at 224x224: every layer, last stage + head, head only; Shoal, then PyTorch (CPU)"
	if [ -z "$ort" ]; then
		echo "skipped: the frozen parts run in ONNX Runtime (run scripts/setup-onnxruntime.sh)"
	else
		py=$(scripts/setup-python.sh torch)
		batch=${SHOAL_BENCH_BATCH:-16} steps=${SHOAL_BENCH_STEPS:-4}
		"$py" scripts/bench-train-torch.py "$bin/resnet18.onnx" "$batch" "$steps" >"$bin/torch.out"
		head -n 1 "$bin/torch.out"
		[ -x "$bin/ml" ] || go test -p 1 -c -o "$bin/ml" ./internal/ml
		ONNXRUNTIME_SHARED_LIBRARY_PATH=$ort GOMLX_NO_AUTO_INSTALL=1 SHOAL_BENCH_BASE_ONNX=$bin/resnet18.onnx \
			SHOAL_BENCH_BATCH=$batch SHOAL_BENCH_STEPS=$steps "$bin/ml" -test.run '^$' -test.bench '^BenchmarkFineTuneModes$' \
			-test.benchtime 1x -test.v -test.timeout 0 2>&1 | grep -E 'images/s|FAIL|panic' | grep -v '^Benchmark' | sed 's/^ *finetune_bench_test.go:[0-9]*: /shoal /'
		grep pytorch "$bin/torch.out"
		echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
	fi
fi

if [ "$what" = accuracy-parity ]; then
	echo "## accuracy parity: PyTorch's ResNet-18 export fine-tuned by PyTorch and by Shoal on the same images, same recipe"
	if [ -z "$ort" ]; then
		echo "bench-train: the frozen parts run in ONNX Runtime (run scripts/setup-onnxruntime.sh)" >&2
		exit 1
	fi
	py=$(scripts/setup-python.sh torch)
	seeds=${SHOAL_PARITY_SEEDS:-1 2} epochs=${SHOAL_PARITY_EPOCHS:-8} lr=${SHOAL_PARITY_LR:-0.001}
	modes=${SHOAL_PARITY_MODES:-head-only last-stage}
	batch=16
	"$py" scripts/bench-train-parity.py prepare "$bin"
	go test -p 1 -c -o "$bin/ml" ./internal/ml
	echo "# recipe: new head, Adam $lr, constant rate, batch $batch, $epochs epochs, no augmentation, batch norms frozen; modes: $modes"
	if [ "${SHOAL_PARITY_EXPORT:-}" = bn ]; then
		echo "# Shoal fine-tunes base-bn.onnx: the export with its batch norms kept as nodes (PyTorch's parameters)"
	fi
	for seed in $seeds; do
		echo "# seed $seed (head initialisation and shuffles), load $(cut -d' ' -f1-3 /proc/loadavg)"
		torch_modes=""
		for mode in $modes; do
			case $mode in
			head-only) torch_modes+=" head-only head-only-standardised" ;;
			last-stage) torch_modes+=" last-stage last-stage-fused" ;;
			full) torch_modes+=" full full-fused" ;;
			esac
		done
		# shellcheck disable=SC2086 # one mode a word
		"$py" scripts/bench-train-parity.py finetune "$bin" "$seed" "$epochs" "$batch" "$lr" $torch_modes | tee "$bin/torch-$seed.out"
		ONNXRUNTIME_SHARED_LIBRARY_PATH=$ort GOMLX_NO_AUTO_INSTALL=1 SHOAL_PARITY_DIR=$bin SHOAL_PARITY_SEED=$seed \
			SHOAL_PARITY_EPOCHS=$epochs SHOAL_PARITY_BATCH=$batch SHOAL_PARITY_LR=$lr SHOAL_PARITY_MODES="$modes" \
			SHOAL_PARITY_EXPORT=${SHOAL_PARITY_EXPORT:-} \
			"$bin/ml" -test.run '^$' -test.bench '^BenchmarkFineTuneParity$' -test.benchtime 1x -test.v -test.timeout 0 2>&1 |
			grep --line-buffered -E '^shoal .* epoch [0-9]+ test-acc|FAIL|panic' | tee "$bin/shoal-$seed.out"
	done
	echo "## test accuracy after the last epoch (%, $(($(stat -c %s "$bin/b_test.i32") / 4)) test images)"
	echo "# variant: PyTorch doing what Shoal does (head-only: standardised features; last-stage, full: batch norms folded)"
	printf '%-5s %-11s %8s %8s %8s %13s %14s\n' seed mode pytorch variant shoal shoal-pytorch shoal-variant
	acc() { # file, mode: the last epoch's test accuracy in %, or nothing
		awk -v m="$2" -v e="$epochs" '$2 == m && $3 == "epoch" && $4 == e && $5 == "test-acc" { printf "%.1f", $6 * 100 }' "$1" 2>/dev/null
	}
	pts() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; else echo -; fi; }
	for seed in $seeds; do
		for mode in $modes; do
			variant=head-only-standardised
			[ "$mode" = last-stage ] && variant=last-stage-fused
			[ "$mode" = full ] && variant=full-fused
			t=$(acc "$bin/torch-$seed.out" "$mode") v=$(acc "$bin/torch-$seed.out" "$variant") s=$(acc "$bin/shoal-$seed.out" "$mode")
			printf '%-5s %-11s %8s %8s %8s %13s %14s\n' "$seed" "$mode" "${t:--}" "${v:--}" "${s:--}" "$(pts "$s" "$t")" "$(pts "$s" "$v")"
		done
	done
	echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
fi
