#!/usr/bin/env bash
# Validates the scaled-mode manifests (deployments/Dockerfile, the compose
# project, the Kubernetes kustomize base) without Docker or a cluster: the
# Go tests of the separate module deployments/validate decode them with the
# tools' own libraries, check the invariants the scaled mode needs, and run
# the shoal binary built here with --check-config on every process they
# describe.
#
#   scripts/check-deployments.sh
#
# Needs only Go and the Go module proxy (for the module's first download).
set -euo pipefail
cd "$(dirname "$0")/.."

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
