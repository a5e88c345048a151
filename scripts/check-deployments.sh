#!/usr/bin/env bash
# Validates the scaled-mode manifests (deployments/Dockerfile, the compose
# project, the Kubernetes kustomize base) without Docker or a cluster: the
# Go tests of the separate module deployments/validate decode them with the
# tools' own libraries, check the invariants the scaled mode needs, and run
# the shoal binary built here with --check-config on every process they
# describe. They also check the Grafana dashboard (deployments/grafana):
# its shape, its queries parsed as PromQL, and every metric they name
# exported by a running `shoal serve` that trained a model and predicted.
#
#   scripts/check-deployments.sh
#
# Needs Go and the Go module proxy (for the module's first download), and
# for the dashboard's process ONNX Runtime and the demo data, which it sets
# up (scripts/setup-onnxruntime.sh, scripts/setup-demo-data.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
scripts/setup-demo-data.sh
export ONNXRUNTIME_SHARED_LIBRARY_PATH SHOAL_TEST_ORT_REQUIRED=1 SHOAL_TEST_DEMO_REQUIRED=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/shoal" ./cmd/shoal

cd deployments/validate
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change (deployments/validate):" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
SHOAL_BIN="$tmp/shoal" go test -count=1 ./...
