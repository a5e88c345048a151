#!/usr/bin/env bash
# Copies the protos that Shoal's contracts import into .build/protodeps, from
# Go modules in the Go module cache (downloaded through the module proxy if
# missing). They are build inputs, never committed.
#   google/api/{annotations,http,httpbody}.proto: the grpc-gateway v1.16.0
#     module's copy of googleapis; field_behavior.proto, which that copy
#     lacks, from the grpc-gateway/v2 v2.2.0 module's (the last that
#     carried one).
#   buf/validate/validate.proto (the rules of protovalidate): the
#     github.com/bufbuild/protovalidate module, at the version tools.go.mod
#     requires; it matches the Go types that buf.build/go/protovalidate
#     validates with (go.mod).
set -euo pipefail
cd "$(dirname "$0")/.."

moddir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }

dir=$(moddir github.com/grpc-ecosystem/grpc-gateway@v1.16.0)
src="$dir/third_party/googleapis/google/api"
[ -f "$src/annotations.proto" ] || { echo "protodeps: $src/annotations.proto not found" >&2; exit 1; }
out=.build/protodeps/google/api
mkdir -p "$out"
for f in annotations.proto http.proto httpbody.proto; do
  install -m 0644 "$src/$f" "$out/$f"
done
src="$(moddir github.com/grpc-ecosystem/grpc-gateway/v2@v2.2.0)/third_party/googleapis/google/api"
[ -f "$src/field_behavior.proto" ] || { echo "protodeps: $src/field_behavior.proto not found" >&2; exit 1; }
install -m 0644 "$src/field_behavior.proto" "$out/field_behavior.proto"

pv=github.com/bufbuild/protovalidate
version=$(go list -modfile=tools.go.mod -m -f '{{.Version}}' "$pv")
src="$(moddir "$pv@$version")/proto/protovalidate/buf/validate"
[ -f "$src/validate.proto" ] || { echo "protodeps: $src/validate.proto not found" >&2; exit 1; }
out=.build/protodeps/buf/validate
mkdir -p "$out"
install -m 0644 "$src/validate.proto" "$out/validate.proto"
