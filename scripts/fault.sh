#!/usr/bin/env bash
# Fault injection (`make fault`): the tests of tests/fault with the 30-second
# storage outages included. They build the shoal binary, run it as a child
# process and break it on purpose: SIGKILL during an import, a training job,
# a model upload and a promotion; a private PostgreSQL server and a private
# S3 server (the one scripts/s3server.sh builds) stopped for 30 s each while it imports, trains and
# serves; and full disks (tmpfs, needs root) under its blob store, database
# and trainer work directory. RELIABILITY.md describes each check and the
# figures of the last run. `make test` runs the same package without the
# outages (SHOAL_TEST_FAULT=1).
#
#   make fault
#   FAULT_RUN=TestS3Outage make fault        one test (go test -run pattern)
#   SHOAL_TEST_FAULT_KEEP=1 make fault       keep the servers' folders and logs
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

log "ONNX Runtime, demo data and the S3 server binary"
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH SHOAL_TEST_ORT_REQUIRED=1
scripts/setup-demo-data.sh
scripts/s3server.sh build >/dev/null

log "go test ./tests/fault (with the outages)"
start=$SECONDS
status=0
SHOAL_TEST_FAULT=all go test -count=1 -v -timeout 30m ${FAULT_RUN:+-run "$FAULT_RUN"} ./tests/fault/ || status=$?
printf '\n== fault: %ds, exit status %d\n' $((SECONDS - start)) "$status" >&2
exit "$status"
