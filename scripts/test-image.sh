#!/usr/bin/env bash
# The container image, end to end: builds it from deployments/Dockerfile
# (scripts/images.sh, podman, local base images) and runs the newcomer's
# path and its checks (scripts/smoke.sh) with the server in that image:
# the demo dataset imported, a model trained and promoted, /predict, gRPC
# Predict and OIP agreeing, the Go SDK example, a clean SIGTERM.
#
#   make test-image
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/images.sh
echo "test-image: image built in $((SECONDS - start))s" >&2
SHOAL_RUN_IMAGE=localhost/shoal:dev scripts/smoke.sh
echo "test-image: ok in $((SECONDS - start))s" >&2
