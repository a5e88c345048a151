#!/usr/bin/env bash
# The newcomer's path (`make run`): sets up what the platform needs on this
# machine, starts `shoal serve` on embedded defaults (one process, SQLite and
# blobs under ./data), and loads the offline demo dataset into it, then keeps
# serving until interrupted. Extra arguments go to `shoal serve`; set the
# listen addresses with SHOAL_GRPC_LISTEN_ADDRESS and SHOAL_HTTP_LISTEN_ADDRESS.
#
# Steps, each skipped when already done:
#   1. ONNX Runtime's shared library (npm: onnxruntime-node), for the registry
#   2. the Fashion-MNIST demo tree in ./data/import/fashion-mnist (Debian package)
#   3. the `fashion-demo` dataset, imported from that tree, with a snapshot
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "run: $*" >&2; }

go build -o bin/shoal ./cmd/shoal
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH

tree=./data/import/fashion-mnist
if [ ! -f "$tree/NOTICE.md" ]; then
	log "writing the demo dataset (Fashion-MNIST) to $tree"
	scripts/setup-demo-data.sh
	bin/shoal demo-data --out "$tree"
fi

grpc_addr=${SHOAL_GRPC_LISTEN_ADDRESS:-:9090}
http_addr=${SHOAL_HTTP_LISTEN_ADDRESS:-:8080}
bin/shoal serve "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"' INT TERM

ready=
for _ in $(seq 1 300); do
	if curl -fsS "http://localhost:${http_addr##*:}/readyz" >/dev/null 2>&1; then
		ready=1
		break
	fi
	kill -0 "$pid" 2>/dev/null || { wait "$pid"; exit $?; }
	sleep 0.2
done
[ -n "$ready" ] || { log "the server did not become ready within 60s"; kill -TERM "$pid"; exit 1; }

addr=localhost:${grpc_addr##*:}
if ! bin/shoal dataset ls --addr "$addr" | grep -q '^fashion-demo\b'; then
	bin/shoal dataset create fashion-demo --addr "$addr" --description "Fashion-MNIST demo (Zalando Research, MIT)"
fi
bin/shoal dataset import fashion-demo "$tree" --addr "$addr"
if ! bin/shoal dataset snapshots fashion-demo --addr "$addr" | grep -q '^ *1\b'; then
	bin/shoal dataset snapshot fashion-demo --addr "$addr" --description "demo"
fi
log "ready: gRPC $addr, REST http://localhost:${http_addr##*:} (try: curl localhost:${http_addr##*:}/v1/datasets/fashion-demo/stats)"
wait "$pid"
