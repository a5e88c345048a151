#!/usr/bin/env bash
# The rolling update, end to end: shoal built at the commit of the last
# release (the one tests/upgrade/testdata's snapshot names) and shoal built
# from this tree run side by side on one database and one bucket — on
# MariaDB, then on PostgreSQL — and each reads, lists, replays and predicts
# with what the other wrote (tests/upgrade, TestPreviousReleaseSideBySide).
# Not part of make test: it builds the previous release too.
#
#   make test-upgrade        (or scripts/test-upgrade.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/test-sql.sh)"
export SHOAL_TEST_SQL_REQUIRED=1
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh); export ONNXRUNTIME_SHARED_LIBRARY_PATH SHOAL_TEST_ORT_REQUIRED=1
scripts/setup-demo-data.sh
s3dir=$(mktemp -d)
trap 'scripts/s3server.sh stop "$s3dir" >/dev/null 2>&1 || true; rm -rf "$s3dir"' EXIT
eval "$(scripts/s3server.sh start "$s3dir")"

SHOAL_TEST_UPGRADE_PREVIOUS=1 go test -count=1 -timeout 20m -v -run 'TestPreviousReleaseSideBySide$' ./tests/upgrade
