#!/usr/bin/env bash
# The newcomer's path (`make run`): sets up what the platform needs on this
# machine, starts `shoal serve` on embedded defaults (one process, SQLite and
# blobs under ./data), loads the offline demo dataset into it, trains a model
# on it and promotes it to production, so /predict answers; then keeps
# serving until interrupted. Extra arguments go to `shoal serve`; set the
# listen addresses with SHOAL_GRPC_LISTEN_ADDRESS and SHOAL_HTTP_LISTEN_ADDRESS,
# and the folder holding ./data with SHOAL_RUN_DIR (default: the repository).
# With SHOAL_RUN_IMAGE (e.g. localhost/shoal:dev, from scripts/images.sh) the
# server is that container image, run by podman on the host's network with
# ./data as its /data volume; the CLI steps stay on this machine.
#
# Steps, each skipped when already done:
#   0. the web console (scripts/build-ui.sh), embedded into bin/shoal
#   1. ONNX Runtime's shared library (npm: onnxruntime-node), for the registry
#   2. the Fashion-MNIST demo tree in ./data/import/fashion-mnist (Debian package)
#   3. the `fashion` dataset, imported from that tree, with a snapshot
#   4. the `fashion` model, trained on that snapshot and promoted to production
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shoal=$root/bin/shoal

log() { echo "run: $*" >&2; }

"$root/scripts/build-ui.sh"
(cd "$root" && go build -o "$shoal" ./cmd/shoal)
ONNXRUNTIME_SHARED_LIBRARY_PATH=$("$root/scripts/setup-onnxruntime.sh")
export ONNXRUNTIME_SHARED_LIBRARY_PATH
cd "${SHOAL_RUN_DIR:-$root}"

tree=./data/import/fashion-mnist
if [ ! -f "$tree/NOTICE.md" ]; then
	log "writing the demo dataset (Fashion-MNIST) to $tree"
	"$root/scripts/setup-demo-data.sh"
	"$shoal" demo-data --out "$tree"
fi

grpc_addr=${SHOAL_GRPC_LISTEN_ADDRESS:-:9090}
http_addr=${SHOAL_HTTP_LISTEN_ADDRESS:-:8080}
if [ -n "${SHOAL_RUN_IMAGE:-}" ]; then
	# The image runs as uid 65532 (non-root), which must own its volume.
	mkdir -p data && chown 65532:65532 data
	eval "$("$root/scripts/images.sh" env)"
	log "serving from the image $SHOAL_RUN_IMAGE (podman)"
	podman run --rm --init -v "$PWD/data:/data" \
		-e SHOAL_GRPC_LISTEN_ADDRESS="$grpc_addr" -e SHOAL_HTTP_LISTEN_ADDRESS="$http_addr" \
		"$SHOAL_RUN_IMAGE" serve "$@" &
else
	"$shoal" serve "$@" &
fi
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit $?' INT TERM

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
if ! "$shoal" dataset ls --addr "$addr" | awk '$1 == "fashion" { found = 1 } END { exit !found }'; then
	"$shoal" dataset create fashion --addr "$addr" --description "Fashion-MNIST demo (Zalando Research, MIT)"
fi
"$shoal" dataset import fashion "$tree" --addr "$addr"
if ! "$shoal" dataset snapshots fashion --addr "$addr" | grep -q '^ *1\b'; then
	"$shoal" dataset snapshot fashion --addr "$addr" --description "demo"
fi
if ! "$shoal" models show fashion production --addr "$addr" >/dev/null 2>&1; then
	log "training the demo model (about a minute on 2 cores)"
	"$shoal" train --dataset fashion --snapshot 1 --promote always --follow --addr "$addr"
fi

# Inference follows the promotion on its own; wait until it answers.
sample=$(find "$tree/test/Bag" -name '*.png' | sort | head -n 1)
for _ in $(seq 1 150); do
	"$shoal" predict "$sample" --addr "$addr" --top-k 1 >/dev/null 2>&1 && break
	sleep 0.2
done
"$shoal" predict "$sample" --addr "$addr" --top-k 1
port=${http_addr##*:}
log "ready: gRPC $addr, REST and the web console http://localhost:$port"
# The login link carries the admin token in its fragment (after #), which
# the browser never sends to a server; the console stores it for the tab
# and removes it from the address bar at once.
if [ -s ./data/admin-token ]; then
	log "log in to the web console (admin): http://localhost:$port/#token=$(cat ./data/admin-token)"
else
	log "the web console asks for a token: make one with shoal tokens create --name me --scope read,write"
fi
log "try: curl -F file=@$sample localhost:$port/predict"
if command -v shoal >/dev/null && cmp -s "$(command -v shoal)" "$shoal"; then
	log "the CLI: shoal, on your PATH (shoal --help lists its commands)"
else
	log "the CLI: $shoal; put shoal on your PATH with: make install"
fi
wait "$pid"
