#!/usr/bin/env bash
# The whole corpus of ONNX models exported by PyTorch (scripts/export-corpus.py):
# exports what the cache lacks, then takes every export through what a
# fine-tuning job does with it (internal/ml's TestPyTorchExports: import,
# check, a few training steps, export, ONNX Runtime against GoMLX) and
# prints the table of results: fine-tunes, refused (the reason) or failing.
# TestPartialExports then unfreezes the last stage of each (the frozen part
# in ONNX Runtime, the rest trained, the whole network exported).
#
#   make test-exports    (or scripts/test-exports.sh)
#
# It exits non-zero if any export fails. The pure-Go backend trains these
# networks slowly: see the README for the last run's time.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH SHOAL_TEST_ORT_REQUIRED=1
SHOAL_TEST_EXPORTS=$(scripts/export-corpus.sh all)
export SHOAL_TEST_EXPORTS SHOAL_TEST_EXPORTS_REQUIRED=1
exported=$((SECONDS - start))

report=$(mktemp)
trap 'rm -f "$report"' EXIT
rc=0
SHOAL_TEST_EXPORTS_REPORT=$report go test -count=1 -timeout 8h -run '^(TestPyTorchExports|TestPartialExports)$' ./internal/ml || rc=$?
echo
cat "$report"
echo
printf 'test-exports: %d fine-tune, %d refused, %d failing; %d s (exports %d s), load average %s\n' \
	"$(grep -c '| fine-tunes |' "$report" || true)" "$(grep -c '| refused |' "$report" || true)" \
	"$(grep -c '| failing |' "$report" || true)" $((SECONDS - start)) "$exported" "$(cut -d' ' -f1-3 /proc/loadavg)"
exit $rc
