#!/usr/bin/env bash
# Generates the TypeScript SDK's types, clients/typescript/src/gen/schema.ts,
# from the OpenAPI document (gen/openapi/shoal.swagger.json) with the SDK's
# pinned generators (clients/typescript/scripts/generate.mjs). Part of
# `make generate`, after the document is written; scripts/check-proto.sh
# runs it into a temporary folder to check that the committed file is
# current.
#
#   scripts/gen-typescript.sh [OUT]    OUT: where gen/ was written and clients/ goes (default: here)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(cd "${1:-$root}" && pwd)

"$root/scripts/build-ts-sdk.sh" --deps
node "$root/clients/typescript/scripts/generate.mjs" "$out/gen/openapi/shoal.swagger.json" \
	"$out/clients/typescript/src/gen/schema.ts"
