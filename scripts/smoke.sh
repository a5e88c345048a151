#!/usr/bin/env bash
# End-to-end test of the newcomer's path, exactly as `make run` takes it:
# scripts/run.sh in an empty folder sets up, starts `shoal serve` on embedded
# defaults, imports the demo dataset, trains and promotes a model; then this
# script checks what the README promises — POST /predict answers, grpcurl
# lists every service, gRPC Predict and OIP ModelInfer agree with it,
# health, readiness and metrics answer — and stops the
# server with SIGTERM, which must end it cleanly and in time.
#
#   scripts/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD

log() { echo "smoke: $*" >&2; }
fail() { log "FAIL: $*"; [ -f "$work/run.log" ] && tail -n 40 "$work/run.log" >&2; exit 1; }

work=$(mktemp -d)
pid=
trap cleanup EXIT

grpcurl() { go tool -modfile="$root/tools.go.mod" grpcurl "$@"; }
grpcurl -version >/dev/null 2>&1 # build it before the clock starts

start_platform "$work" || fail "scripts/run.sh"
http=http://127.0.0.1:$hport

sample=$(find "$work/data/import/fashion-mnist/test/Bag" -name '*.png' | sort | head -n 1)
answer=$(curl -fsS -F "file=@$sample" "$http/predict") || fail "POST /predict"
grep -q '"prediction":"Bag"' <<<"$answer" || fail "POST /predict of a Bag: $answer"
grep -q '"version":1' <<<"$answer" || fail "POST /predict names no version 1: $answer"

# The same image through the three protocols: REST /predict, gRPC Predict
# (grpcurl) and the Open Inference Protocol's ModelInfer with a tensor the
# client preprocessed (shoal predict --protocol oip) agree to 1e-5.
grpc_answer=$(grpcurl -plaintext -d "{\"images\":[\"$(base64 -w0 "$sample")\"],\"topK\":5}" "127.0.0.1:$gport" \
	shoal.inference.v1.InferenceService/Predict) || fail "grpcurl Predict"
oip_answer=$(SHOAL_TOKEN=$(cat "$work/data/admin-token") "$root/bin/shoal" predict --addr "127.0.0.1:$gport" --protocol oip --model fashion --top-k 5 -o json "$sample") ||
	fail "shoal predict --protocol oip"
python3 - "$answer" "$grpc_answer" "$oip_answer" <<'PY' || fail "the three protocols disagree"
import json, sys
rest, grpc, oip = (json.loads(a) for a in sys.argv[1:])
def probs(labels): return {l["label"]: l.get("probability", 0.0) for l in labels}
answers = {"REST /predict": probs(rest["top_k"]), "gRPC Predict": probs(grpc["results"][0]["labels"]),
           "OIP ModelInfer": probs(oip["results"][0]["labels"])}
ref = answers["REST /predict"]
for name, p in answers.items():
    top = max(p, key=p.get)
    if top != rest["prediction"] or set(p) != set(ref) or any(abs(p[k] - ref[k]) > 1e-5 for k in ref):
        sys.exit(f"{name} answered {p}; REST /predict {ref}")
print("smoke: REST, gRPC and OIP agree:", rest["prediction"], ref[rest["prediction"]], file=sys.stderr)
PY

# The generated Go SDK, as the README's example uses it: two images in one
# Predict request, then the Registry's versions.
sample2=$(find "$work/data/import/fashion-mnist/test/Trouser" -name '*.png' | sort | head -n 1)
sdk=$(cd "$root" && SHOAL_TOKEN=$(cat "$work/data/admin-token") go run ./examples/go-client --addr "127.0.0.1:$gport" --model fashion "$sample" "$sample2") ||
	fail "examples/go-client"
grep -q "^$sample: Bag " <<<"$sdk" && grep -q "^$sample2: Trouser " <<<"$sdk" && grep -q '^answered by fashion v1$' <<<"$sdk" &&
	grep -q '^fashion v1: small-cnn, test accuracy .*production' <<<"$sdk" || fail "examples/go-client answered: $sdk"

services=$(grpcurl -plaintext "127.0.0.1:$gport" list)
for s in grpc.health.v1.Health grpc.reflection.v1.ServerReflection inference.GRPCInferenceService \
	shoal.dataset.v1.DatasetService shoal.inference.v1.InferenceService \
	shoal.registry.v1.RegistryService shoal.trainer.v1.TrainerService; do
	grep -qx "$s" <<<"$services" || fail "grpcurl list lacks $s; got: $services"
done
grpcurl -plaintext -d '{"service":"shoal.registry.v1.RegistryService"}' "127.0.0.1:$gport" grpc.health.v1.Health/Check |
	grep -q SERVING || fail "health of the registry is not SERVING"
[ "$(curl -fsS "$http/healthz")" = ok ] || fail "/healthz"
curl -fsS "$http/readyz" >/dev/null || fail "/readyz"
curl -fsS "$http/metrics" | grep -q '^shoal_inference_requests_total' || fail "/metrics lacks the inference counter"
curl -fsS "$http/v2/health/ready" | grep -q '"ready":true' || fail "OIP /v2/health/ready"
[ -f "$work/data/shoal.db" ] || fail "no SQLite file under ./data"

kill -TERM "$pid"
for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "still running 20s after SIGTERM"
wait "$pid" || fail "exit status $? after SIGTERM; want 0"
pid=
grep -q 'msg=stopped' "$work/run.log" || fail "no 'stopped' line in the log"
# A clean shutdown says so and nothing more: no warning or error for an
# operator to chase (such as the process's own clients failing to reach
# its closing listener).
if noise=$(sed -n '/msg="shutting down"/,$p' "$work/run.log" | grep -E 'level=(WARN|ERROR)'); then
	fail "warnings or errors during a clean shutdown: $noise"
fi
log "ok: $answer"
