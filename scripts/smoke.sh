#!/usr/bin/env bash
# End-to-end smoke test of the real binary on embedded defaults, as the
# README tells a newcomer to use it: start `shoal serve` in an empty
# directory, list the gRPC services with grpcurl, call the HTTP endpoints,
# then stop it with SIGTERM and check that it exits cleanly and in time.
#
#   scripts/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { echo "smoke: $*" >&2; }
fail() { log "FAIL: $*"; [ -f "$work/shoal.log" ] && tail -n 30 "$work/shoal.log" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/shoal" ./cmd/shoal
grpcurl() { go tool -modfile="$root/tools.go.mod" grpcurl "$@"; }
grpcurl -version >/dev/null 2>&1 # build it before the clock starts

# Free ports, chosen by the kernel.
read -r gport hport < <(python3 - <<'PY'
import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1",0))
print(*[x.getsockname()[1] for x in s])
PY
)
(cd "$work" && exec ./shoal serve --grpc.listen-address="127.0.0.1:$gport" --http.listen-address="127.0.0.1:$hport" >shoal.log 2>&1) &
pid=$!

for _ in $(seq 1 100); do
	curl -fsS "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || fail "shoal serve exited during start"
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$hport/readyz" >/dev/null || fail "/readyz not 200 within 10s"

services=$(grpcurl -plaintext "127.0.0.1:$gport" list)
for s in grpc.health.v1.Health grpc.reflection.v1.ServerReflection inference.GRPCInferenceService \
	shoal.dataset.v1.DatasetService shoal.inference.v1.InferenceService \
	shoal.registry.v1.RegistryService shoal.trainer.v1.TrainerService; do
	grep -qx "$s" <<<"$services" || fail "grpcurl list lacks $s; got: $services"
done
grpcurl -plaintext -d '{"service":"shoal.registry.v1.RegistryService"}' "127.0.0.1:$gport" grpc.health.v1.Health/Check |
	grep -q SERVING || fail "health of the registry is not SERVING"
[ "$(curl -fsS "http://127.0.0.1:$hport/healthz")" = ok ] || fail "/healthz"
curl -fsS "http://127.0.0.1:$hport/metrics" | grep -q '^shoal_grpc_server_handled_total' || fail "/metrics lacks the RPC counter"
curl -fsS "http://127.0.0.1:$hport/v2/health/live" | grep -q '"live":true' || fail "REST /v2/health/live"
[ -f "$work/data/shoal.db" ] || fail "no SQLite file under ./data"

kill -TERM "$pid"
for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "still running 20s after SIGTERM"
wait "$pid" || fail "exit status $? after SIGTERM; want 0"
pid=
grep -q 'msg=stopped' "$work/shoal.log" || fail "no 'stopped' line in the log"
log "ok"
