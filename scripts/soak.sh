#!/usr/bin/env bash
# Overload soak (`make soak`, not part of `make test`): starts `shoal serve`
# on embedded defaults in a temporary folder on free ports (scripts/run.sh:
# the demo dataset imported, the default small model trained and promoted),
# then shoal-bench soak measures REST /predict's saturation throughput with
# a closed loop (30 s) and offers twice it with an open loop for
# SOAK_DURATION while a dataset upload (an import of the 1,306-image demo
# tree into a new dataset) and a training job run. It samples the server's
# RSS (/proc), goroutines and open files (/metrics), prints a Markdown
# summary (RELIABILITY.md, "Overload and soak") and exits non-zero when a
# criterion fails.
#
#   make soak                              10 minutes of overload
#   SOAK_DURATION=60s make soak            a short run
#   scripts/soak.sh [shoal-bench soak flags...]   e.g. --saturation-time 10s
#
# SOAK_QUEUE_SIZE sets the server's --inference.queue-size (default 512).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "soak: $*" >&2; }

duration=${SOAK_DURATION:-10m}
queue=${SOAK_QUEUE_SIZE:-64}
go build -o bin/shoal ./cmd/shoal
go build -o bin/shoal-bench ./cmd/shoal-bench
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH

. scripts/lib.sh # cleanup
work=$(mktemp -d)
pid=
trap cleanup EXIT

{ read -r gport; read -r hport; } < <(bin/shoal-bench ports 2)
grpc=127.0.0.1:$gport
http=127.0.0.1:$hport
log "starting the platform in $work (gRPC $grpc, HTTP $http); training the small model takes a few minutes"
SHOAL_RUN_DIR=$work SHOAL_GRPC_LISTEN_ADDRESS=$grpc SHOAL_HTTP_LISTEN_ADDRESS=$http \
	scripts/run.sh --inference.queue-size="$queue" >"$work/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 3000); do
	grep -q '^run: ready' "$work/run.log" && break
	if ! kill -0 "$pid" 2>/dev/null; then
		tail -n 40 "$work/run.log" >&2
		log "scripts/run.sh exited before the platform was ready"
		exit 1
	fi
	sleep 0.2
done
grep -q '^run: ready' "$work/run.log" || { tail -n 40 "$work/run.log" >&2; log "not ready after 10 minutes"; exit 1; }
# run.sh's child is the server, whose memory the soak reads.
server=$(ps -o pid=,comm= --ppid "$pid" | awk '$2 == "shoal" { print $1; exit }')
[ -n "$server" ] || { log "no shoal process under scripts/run.sh ($pid)"; exit 1; }

# The admin token the new install wrote, for the CLI and the soak's calls.
SHOAL_TOKEN=$(cat "$work/data/admin-token")
export SHOAL_TOKEN
shoal="$PWD/bin/shoal"
tree=$work/data/import/fashion-mnist
import="$shoal dataset create soak-upload --addr $grpc >/dev/null && $shoal dataset upload soak-upload $tree --quiet --addr $grpc"
train="$shoal train --dataset fashion --snapshot 1 --follow --addr $grpc"

bin/shoal-bench soak --grpc "$grpc" --http "$http" --pid "$server" --duration "$duration" \
	--queue-size "$queue" --during "$import" --during "$train" "$@"
