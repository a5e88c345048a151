#!/usr/bin/env bash
# Measures what each --target uses when it runs alone, as the Kubernetes
# Deployments run them (deployments/kubernetes: resources.requests/limits):
# one process per target on PostgreSQL and S3 of the test environment, the
# gateway in front. Per process it reports RSS at idle (after start), its
# peak (VmHWM) over a load, and CPU (cores, from /proc/PID/stat) idle and
# during each phase of the load: uploading the 1,306-image demo dataset,
# training the small CNN on it for 3 epochs, then POST /predict through the
# gateway at concurrency 8 for 30 s.
#
#   scripts/measure-targets.sh
#
# Needs what the tests need (scripts/test-sql.sh, scripts/s3server.sh,
# scripts/setup-onnxruntime.sh, scripts/setup-demo-data.sh). About 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
eval "$(scripts/test-sql.sh)"
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH
scripts/setup-demo-data.sh
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	scripts/s3server.sh stop "$work/s3" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
eval "$(scripts/s3server.sh start "$work/s3")"
go build -o "$work/shoal" ./cmd/shoal
shoal=$work/shoal

db=measure_$$
psql -q "$SHOAL_TEST_POSTGRES_DSN" -c "CREATE DATABASE $db"
dsn=${SHOAL_TEST_POSTGRES_DSN%/*}/$db?sslmode=disable
trap 'cleanup; psql -q "$SHOAL_TEST_POSTGRES_DSN" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true' EXIT
export SHOAL_DB_DRIVER=postgres SHOAL_DB_DSN=$dsn SHOAL_BLOB_BACKEND=s3 SHOAL_BLOB_S3_ENDPOINT=$SHOAL_TEST_S3_ENDPOINT \
	SHOAL_BLOB_S3_ACCESS_KEY=$SHOAL_TEST_S3_ACCESS_KEY SHOAL_BLOB_S3_SECRET_KEY=$SHOAL_TEST_S3_SECRET_KEY \
	SHOAL_BLOB_S3_BUCKET=shoal-measure SHOAL_BLOB_S3_CREATE_BUCKET=true SHOAL_BLOB_S3_INSECURE=true \
	SHOAL_AUTH_SERVICE_TOKEN=measure-service-token-0123456789abcdef SHOAL_LOG_LEVEL=warn
admin=measure-admin-token-0123456789abcdef0123

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A grpc http pid
targets=(auth registry dataset trainer inference gateway)
for t in "${targets[@]}"; do grpc[$t]=$(free_port); http[$t]=$(free_port); done
addr() { echo "127.0.0.1:${grpc[$1]}"; }
start() {
	local t=$1; shift
	mkdir -p "$work/$t"
	(cd "$work/$t" && exec "$shoal" serve --target="$t" --grpc.listen-address="$(addr "$t")" \
		--http.listen-address=127.0.0.1:"${http[$t]}" "$@" >"$work/$t.log" 2>&1) &
	pid[$t]=$!
	pids+=("$!")
	for _ in $(seq 600); do
		curl -fsS "127.0.0.1:${http[$t]}/readyz" >/dev/null 2>&1 && return
		kill -0 "${pid[$t]}" 2>/dev/null || { cat "$work/$t.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "$t did not become ready" >&2; exit 1
}
auth=--clients.auth-address=$(addr auth)
SHOAL_AUTH_BOOTSTRAP_TOKEN=$admin start auth
start registry "$auth"
start dataset "$auth"
start trainer "$auth" --clients.dataset-address="$(addr dataset)" --clients.registry-address="$(addr registry)"
start inference "$auth" --clients.registry-address="$(addr registry)"
start gateway "$auth" --clients.dataset-address="$(addr dataset)" --clients.trainer-address="$(addr trainer)" \
	--clients.registry-address="$(addr registry)" --clients.inference-address="$(addr inference)"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
declare -A t0 cpu
mark() { for t in "${targets[@]}"; do t0[$t]=$(ticks "${pid[$t]}"); done; s0=$(date +%s.%N); }
# cores used by each process since mark, into cpu[$t:$1]
took() {
	local s1; s1=$(date +%s.%N)
	for t in "${targets[@]}"; do
		cpu[$t:$1]=$(awk -v a="${t0[$t]}" -v b="$(ticks "${pid[$t]}")" -v hz="$hz" -v s="$(echo "$s1 - $s0" | bc)" 'BEGIN {printf "%.3f", (b - a) / hz / s}')
	done
}
declare -A idle
sleep 5
mark; sleep 20; took idle
for t in "${targets[@]}"; do idle[$t]=$(kib "${pid[$t]}" VmRSS); done

export SHOAL_ADDR=$(addr gateway) SHOAL_TOKEN=$admin
"$shoal" demo-data --out "$work/demo" >/dev/null
mark
"$shoal" dataset create fish >/dev/null
"$shoal" dataset upload fish "$work/demo" --quiet >/dev/null
took upload
mark
"$shoal" train --dataset fish --epochs 3 --follow >/dev/null
took train
"$shoal" models promote fish 1 >/dev/null
img=$(find "$work/demo/test" -name '*.png' -print -quit)
curl -fsS -o /dev/null -F file=@"$img" "127.0.0.1:${http[gateway]}/predict?model=fish" # loads the version
mark
end=$(($(date +%s) + 30))
loaders=()
for _ in $(seq 8); do
	(while [ "$(date +%s)" -lt $end ]; do curl -fsS -o /dev/null -F file=@"$img" "127.0.0.1:${http[gateway]}/predict?model=fish" || true; done) &
	loaders+=("$!")
done
wait "${loaders[@]}"
took predict
predicts=$(curl -fsS "127.0.0.1:${http[inference]}/metrics" | awk '/^grpc_server_handled_total\{grpc_code="OK",grpc_method="Predict"/ {print $2}')

printf '%-10s %10s %10s %8s %8s %8s %8s\n' target idle_MiB peak_MiB idle_cpu upload train predict
for t in "${targets[@]}"; do
	printf '%-10s %10.1f %10.1f %8s %8s %8s %8s\n' "$t" "$(echo "${idle[$t]} / 1024" | bc -l)" \
		"$(echo "$(kib "${pid[$t]}" VmHWM) / 1024" | bc -l)" "${cpu[$t:idle]}" "${cpu[$t:upload]}" "${cpu[$t:train]}" "${cpu[$t:predict]}"
done
echo "cpu: cores used on average over each phase; $predicts predictions in 30 s; load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
