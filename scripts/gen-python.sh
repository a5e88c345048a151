#!/usr/bin/env bash
# Generates the Python SDK's stubs, clients/python/src/shoal_client/gen, from
# proto/ with buf (buf.gen.python.yaml) and Debian's protoc and
# grpc_python_plugin. Part of `make generate`; scripts/check-proto.sh runs it
# into a temporary folder to check that the committed stubs are current.
#
#   scripts/gen-python.sh [OUT]    OUT: where clients/ goes (default: here)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.}

scripts/setup-python.sh >/dev/null
scripts/protodeps.sh
gen=$out/clients/python/src/shoal_client/gen
rm -rf "$gen"
scripts/buf.sh generate --template buf.gen.python.yaml -o "$out"

# protoc writes imports by proto path (`from shoal.trainer.v1 import ...`),
# which would need gen/ on sys.path as top-level packages named shoal,
# inference, google.api and buf.validate. Make them imports from within
# shoal_client; google.api goes through shoal_client._googleapi, which prefers
# googleapis-common-protos when installed (two different google/api/http.proto
# in one process's descriptor pool would not load), and buf.validate through
# shoal_client._bufvalidate, which prefers the protovalidate package.
find "$gen" -name '*.py' -o -name '*.pyi' | xargs sed -i -E \
	-e 's/^from (shoal|inference)([. ])/from shoal_client.gen.\1\2/' \
	-e 's/^from google\.api import /from shoal_client._googleapi import /' \
	-e 's/^from buf\.validate import /from shoal_client._bufvalidate import /'
find "$gen/google/api" -name '*.py' -o -name '*.pyi' | xargs sed -i -E \
	-e 's/^from shoal_client\._googleapi import /from shoal_client.gen.google.api import /'
find "$gen" -type d -exec touch {}/__init__.py \;
