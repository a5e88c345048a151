#!/usr/bin/env bash
# The whole test suite, as CI runs it: static checks, the contracts, every Go
# test with -race against real PostgreSQL, MariaDB and S3 servers (which this
# script starts when they are not running), the Python and TypeScript SDKs'
# tests and the web console's.
#
#   make test          (or scripts/test.sh)
#   SHOAL_TEST_PKGS=./internal/... scripts/test.sh    a subset of packages
set -euo pipefail
cd "$(dirname "$0")/.."
trap report_times EXIT

# Each step's wall time, printed at the end (also when a step fails), so the
# cold and warm times of CI are known step by step.
steps=() step_name= step_start=$SECONDS suite_start=$SECONDS
end_step() {
	[ -n "$step_name" ] && steps+=("$(printf '%5ds  %s' $((SECONDS - step_start)) "$step_name")")
	step_name=
}
log() {
	end_step
	step_name=$* step_start=$SECONDS
	printf '\n== %s\n' "$*" >&2
}
report_times() {
	local rc=$?
	end_step
	printf '\n== step times (wall)\n' >&2
	printf '%s\n' "${steps[@]}" >&2
	printf '%5ds  total, exit status %d\n' $((SECONDS - suite_start)) "$rc" >&2
}

# Every build here compiles with -trimpath, as deployments/Dockerfile's does:
# the image's build (make test-deploy) starts from this Go build cache
# (scripts/images.sh) and finds every package compiled already, where a
# cold machine would otherwise compile the whole tree a second time, in the
# container. Without it the cache keys hold the source directories, which
# differ inside the container.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"

log "web console build (embedded by go build)"
scripts/build-ui.sh

log "format, vet, build"
unformatted=$(git ls-files -co --exclude-standard '*.go' | grep -v '^gen/' | grep -v '^third_party/' | xargs -r gofmt -l)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go build ./...

log "deployment manifests"
scripts/check-deployments.sh

log "contracts"
scripts/check-proto.sh

log "SQL servers"
eval "$(scripts/test-sql.sh)"
export SHOAL_TEST_SQL_REQUIRED=1

log "S3 server"
s3dir=$(mktemp -d)
trap 'report_times; scripts/s3server.sh stop "$s3dir" >/dev/null 2>&1 || true; rm -rf "$s3dir"' EXIT
scripts/s3server.sh build >/dev/null
eval "$(scripts/s3server.sh start "$s3dir")"
export SHOAL_TEST_S3_REQUIRED=1

log "ONNX Runtime"
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh); export ONNXRUNTIME_SHARED_LIBRARY_PATH SHOAL_TEST_ORT_REQUIRED=1

log "demo data (Fashion-MNIST)"
scripts/setup-demo-data.sh; export SHOAL_TEST_DEMO_REQUIRED=1

# ONNX models exported by PyTorch, which the import tests fine-tune or see
# refused (Debian's python3-torch; cached in ~/.cache/shoal, so only a cold
# run exports). make test-exports runs the whole corpus.
log "PyTorch exports (make test's selection)"
SHOAL_TEST_EXPORTS=$(scripts/export-corpus.sh ci); export SHOAL_TEST_EXPORTS SHOAL_TEST_EXPORTS_REQUIRED=1
export SHOAL_TEST_FAULT=1 # tests/fault: kill -9 and full disks; its 30 s storage outages run in make fault

# Every test binary has -timeout 20m, well under CI's 90: a hang fails
# fast, and Go then prints every goroutine's stack, which says where.
log "go test -race"
# -p 2: this suite runs on 2-core machines; more parallel packages only
# contend for the same cores and the shared servers.
go test -race -count=1 -p 2 -timeout 20m ${SHOAL_TEST_PKGS:-./...}

log "go test internal/ml services/trainer, client's PyTorch export (without -race)"
# Under -race, checkptr aborts inside GoMLX's pure-Go matmul, so the
# training tests skip there; this run exercises them.
go test -count=1 -timeout 20m ./internal/ml ./services/trainer
go test -count=1 -timeout 20m -run TestFineTuningAPyTorchExport ./client

log "the split topology in containers: compose.yaml's services, with kills (make test-deploy)"
# The image built from deployments/Dockerfile (podman), and every service of
# deployments/compose/compose.yaml as a container of it, created from the
# file's definition (two trainers, two inference replicas), driven through
# the gateway while a trainer and a replica are killed and PostgreSQL
# restarts (tests/split). The same test runs the services as processes
# built from this tree without SHOAL_TEST_SPLIT_IMAGE (make flake does);
# here the containers stand for it, which covers the same scenario.
scripts/test-deploy.sh

log "rollout across the split topology's inference replicas, and its MySQL settings, as processes"
# promote --wait through the gateway returns once both inference replicas
# serve the version; it names each replica by its process (tests/split).
# Then the same services with compose.original.yaml's settings, on MariaDB
# and the S3 server: upload, train, promote, predict (about 25 s).
SHOAL_TEST_SPLIT=1 go test -count=1 -timeout 10m -run 'TestSplitRollout$|TestSplitOriginalStorage$' ./tests/split

log "Python SDK against shoal serve"
scripts/test-python.sh

log "TypeScript SDK against shoal serve"
scripts/test-typescript.sh

log "web console: Vitest, then end to end in Chromium against shoal serve"
scripts/test-ui.sh

log "the newcomer's path, end to end"
scripts/smoke.sh

log "the README's commands, on a fresh make run"
scripts/readme-test.sh
