#!/usr/bin/env bash
# Tests the Python SDK (clients/python) against a live `shoal serve`: its
# unittest suite starts the server itself (auth on, free ports, a temporary
# folder), uploads the demo dataset, trains two small models and checks
# predict against REST /predict, watch_job through cut connections,
# upload_dir against the CLI, the typed errors, mutual TLS and the example
# script; test_offline.py needs no server. Sets up what it needs first:
# Debian's Python gRPC, protobuf and protoc (scripts/setup-python.sh), ONNX
# Runtime and the demo data's package.
#
#   scripts/test-python.sh     (a step of make test; about 15 s warm)
set -euo pipefail
cd "$(dirname "$0")/.."

py=$(scripts/setup-python.sh)
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH
scripts/setup-demo-data.sh
scripts/protodeps.sh # google/api's protos, for the test of googleapis-common-protos' precedence

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/shoal" ./cmd/shoal

SHOAL_BIN=$work/shoal PYTHONPATH=clients/python/src PYTHONDONTWRITEBYTECODE=1 \
	"$py" -m unittest discover -s clients/python/tests -t clients/python/tests -v
