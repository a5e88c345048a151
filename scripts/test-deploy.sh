#!/usr/bin/env bash
# The compose stack in containers: builds localhost/shoal:dev from
# deployments/Dockerfile (scripts/images.sh: podman, local base images) and
# runs tests/split with every Shoal service of deployments/compose/compose.yaml
# as a podman container of that image, on the host's network: the user's
# path through the gateway (import, training with --follow, promotion,
# REST and gRPC predictions) while `podman kill` takes down the trainer
# that runs the job and an inference replica under load, and PostgreSQL
# restarts. PostgreSQL (the test's own, from initdb) and the S3 server
# (scripts/s3server.sh) run on the host: no image can be pulled here.
#
#   make test-deploy        (a step of make test)
#
# Uses the S3 server of SHOAL_TEST_S3_* when set (make test's), else starts
# one. The image store stays warm for the next run (root's podman storage).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

scripts/images.sh
echo "test-deploy: image built in $((SECONDS - start))s" >&2

if [ -z "${SHOAL_TEST_S3_ENDPOINT:-}" ]; then
	s3dir=$(mktemp -d)
	trap 'scripts/s3server.sh stop "$s3dir" >/dev/null 2>&1 || true; rm -rf "$s3dir"' EXIT
	eval "$(scripts/s3server.sh start "$s3dir")"
fi
scripts/setup-demo-data.sh
eval "$(scripts/images.sh env)"

# -v: the test's phases and their times.
rc=0
SHOAL_TEST_SPLIT=1 SHOAL_TEST_SPLIT_IMAGE=localhost/shoal:dev \
	go test -count=1 -timeout 15m -run 'TestSplitTopology$' -v ./tests/split || rc=$?
echo "test-deploy: exit status $rc in $((SECONDS - start))s" >&2
exit "$rc"
