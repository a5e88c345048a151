#!/usr/bin/env bash
# Tests the TypeScript SDK (clients/typescript) with Node's own test runner:
# test/offline.test.mjs needs no server (errors, the stream reader, upload
# bodies, the token on every call, folder layouts); test/live.test.mjs starts
# `shoal serve` itself (auth on, free ports, a temporary folder), uploads
# folders (placed as the CLI places them), trains a small model while
# following the job through a proxy that cuts the connection, and checks
# predict against REST /predict, tokens and scopes, the typed errors and the
# example. Sets up what it needs first: the SDK's npm packages and build,
# ONNX Runtime and the demo data's package.
#
#   scripts/test-typescript.sh     (a step of make test; its tests take about 12 s warm)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-ts-sdk.sh
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH
scripts/setup-demo-data.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/shoal" ./cmd/shoal

cd clients/typescript
SHOAL_BIN=$work/shoal node --test test/offline.test.mjs test/live.test.mjs
