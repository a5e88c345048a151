#!/usr/bin/env bash
# Copies the google/api protos that Shoal's contracts import into
# .build/protodeps, from the grpc-gateway v1.16.0 module in the Go module
# cache (downloaded through the module proxy if missing). They are build
# inputs, never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(go mod download -json github.com/grpc-ecosystem/grpc-gateway@v1.16.0 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
src="$dir/third_party/googleapis/google/api"
[ -f "$src/annotations.proto" ] || { echo "protodeps: $src/annotations.proto not found" >&2; exit 1; }
out=.build/protodeps/google/api
mkdir -p "$out"
for f in annotations.proto http.proto httpbody.proto; do
  install -m 0644 "$src/$f" "$out/$f"
done
