#!/usr/bin/env bash
# What refusing a request costs (`make bench-refusals`, not part of `make
# test`): starts `shoal serve` on embedded defaults in a temporary folder
# with --gateway.max-predicts=1, holds that one place with a POST /predict
# whose body never ends, and offers /predict (the soak's 300 px JPEG) with
# an open loop, every request then answered 429 with Retry-After. Prints
# the server's CPU (its process_cpu_seconds_total) and the generator's per
# refused request, one row per round. Under the soak's overload the
# gateway refuses about as many requests as it forwards, so this is what
# the overload costs the server beyond its own work (RELIABILITY.md,
# "Overload and soak").
#
#   make bench-refusals                        3 rounds of 10 s at 2,800 a second
#   REFUSALS_ROUNDS=5 scripts/bench-refusals.sh --rate 1400
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${REFUSALS_ROUNDS:-3}
go build -o bin/shoal ./cmd/shoal
go build -o bin/shoal-bench ./cmd/shoal-bench
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH

. scripts/lib.sh # cleanup, free_ports, note_scheduler
note_scheduler "$(basename "$0" .sh)"
work=$(mktemp -d)
pid=
trap cleanup EXIT
read -r gport hport < <(free_ports 2)
root=$PWD
(cd "$work" && SHOAL_GRPC_LISTEN_ADDRESS=127.0.0.1:$gport SHOAL_HTTP_LISTEN_ADDRESS=127.0.0.1:$hport \
	exec "$root/bin/shoal" serve --gateway.max-predicts=1 --http.read-body-timeout=1h) >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
	curl -fsS "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { tail -n 20 "$work/serve.log" >&2; exit 1; }
	sleep 0.2
done

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| offered | refused | server CPU a refusal | generator CPU a request | late |"
echo "|---|---|---|---|---|"
for _ in $(seq 1 "$rounds"); do
	bin/shoal-bench refusals --http "127.0.0.1:$hport" "$@"
done
