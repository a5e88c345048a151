#!/usr/bin/env bash
# The web console's tests: the Vitest unit tests, then the end-to-end test
# (frontend/e2e/console.e2e.mjs), which drives Debian's Chromium against the
# real `shoal serve` on embedded defaults (a temporary folder, free ports):
# predict an image without a token, be refused on the Datasets page, log in
# with the admin token the server wrote to ./data/admin-token, upload to a
# dataset and snapshot it, train on it and follow the live chart, promote the
# new version and predict with it, then log in with a read-only token (made
# here with `shoal tokens create`), which sees no Promote button; with no
# Content-Security-Policy violation and the security headers on every response.
#
#   scripts/test-ui.sh                                       (scripts/test.sh runs it)
#   SHOAL_UI_SCREENSHOTS=docs/screenshots scripts/test-ui.sh updates the README's screenshots
#
# The server is prepared with the CLI: a tiny dataset (3 Fashion-MNIST labels,
# 40 training and 10 test images each) and a model `tiny` trained on it for
# 2 epochs and promoted to production, so training in the browser takes seconds.
# The CLI runs in the server's folder, where it finds ./data/admin-token.
# (sed -n, not head, ends the pipelines below: head would close them early and
# pipefail would see sort killed by SIGPIPE.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh

log() { echo "test-ui: $*" >&2; }

scripts/build-ui.sh
go build -o bin/shoal ./cmd/shoal
shoal=$root/bin/shoal

log "vitest"
(cd frontend && npx vitest run)

# The server's Content-Security-Policy allows no inline script or style: the
# built page must have none (the end-to-end test below also listens for
# violations in the browser).
index=internal/webui/dist/app/index.html
if grep -Eq '<style|[[:space:]]style=|[[:space:]]on[a-z]+=' "$index" ||
	grep -o '<script[^>]*>' "$index" | grep -qv ' src='; then
	log "FAIL: $index has an inline script, style or event handler, which the Content-Security-Policy refuses"
	exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
	log "installing Debian's chromium (once)"
	scripts/apt-install.sh chromium
fi

ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH
scripts/setup-demo-data.sh

work=$(mktemp -d)
pid=
trap cleanup EXIT
fail() {
	log "FAIL: $*"
	[ -f "$work/serve.log" ] && tail -n 40 "$work/serve.log" >&2
	exit 1
}

read -r gport hport < <(free_ports 2)

cd "$work"
"$shoal" demo-data --out ./demo >/dev/null
tree=./data/import/tiny
for split in train:40 test:10; do
	n=${split#*:} split=${split%%:*}
	for label in Bag Sneaker Trouser; do
		mkdir -p "$tree/$split/$label"
		find "./demo/$split/$label" -name '*.png' | sort | sed -n "1,${n}p" | xargs cp -t "$tree/$split/$label"
	done
done
# Images the browser sends: one to classify, one the dataset does not hold yet.
predict_image=$(find ./demo/test/Trouser -name "*.png" | sort | sed -n 1p)
upload_image=$(find ./demo/train/Bag -name '*.png' | sort | sed -n 50p)

"$shoal" serve --grpc.listen-address "127.0.0.1:$gport" --http.listen-address "127.0.0.1:$hport" \
	--inference.default-model tiny >"$work/serve.log" 2>&1 &
pid=$!
http=http://127.0.0.1:$hport
for _ in $(seq 1 300); do
	curl -fsS "$http/readyz" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || fail "shoal serve exited"
	sleep 0.2
done
curl -fsS "$http/readyz" >/dev/null 2>&1 || fail "shoal serve not ready within 60s"
curl -fsS "$http/" | grep -q '<div id="root">' || fail "GET / does not serve the console"

addr=127.0.0.1:$gport
[ -s ./data/admin-token ] || fail "shoal serve wrote no ./data/admin-token"
viewer_token=$("$shoal" tokens create --name viewer --scope read --addr "$addr" 2>>"$work/prepare.log") ||
	{ cat "$work/prepare.log" >&2; fail "creating the read-only token"; }
{
	"$shoal" dataset create tiny --addr "$addr"
	"$shoal" dataset import tiny "$tree" --addr "$addr"
	"$shoal" dataset snapshot tiny --addr "$addr"
	"$shoal" train --dataset tiny --snapshot 1 --epochs 2 --promote always --follow --addr "$addr"
} >"$work/prepare.log" 2>&1 || { cat "$work/prepare.log" >&2; fail "preparing the dataset and model with the CLI"; }
# Inference follows the promotion on its own; wait until it answers.
for _ in $(seq 1 150); do
	"$shoal" predict "$predict_image" --model tiny --addr "$addr" >/dev/null 2>&1 && break
	sleep 0.2
done

shots=${SHOAL_UI_SCREENSHOTS:-$work/screenshots}
case $shots in /*) ;; *) shots=$root/$shots ;; esac
log "end to end in Chromium ($http)"
SHOAL_E2E_URL=$http SHOAL_E2E_TOKEN=$(cat ./data/admin-token) SHOAL_E2E_VIEWER_TOKEN=$viewer_token SHOAL_E2E_PREDICT=$work/$predict_image SHOAL_E2E_UPLOAD=$work/$upload_image \
	SHOAL_E2E_SCREENSHOTS=$shots node "$root/frontend/e2e/console.e2e.mjs" || fail "end-to-end test"
rm -f "$shots/failure.png"
log "ok"
