#!/usr/bin/env bash
# Runs the README's command blocks as a reader would after `make run`:
# scripts/run.sh in an empty folder sets up, starts `shoal serve`, imports
# the demo dataset and trains the demo model; then tests/readme runs every
# ```sh block of README.md there, in order, against that server, and fails
# on an error or on output that no longer matches what the README shows.
# tests/readme/readme_test.go says how blocks run and how one is skipped.
#
#   scripts/readme-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD

log() { echo "readme-test: $*" >&2; }
fail() { log "FAIL: $*"; [ -f "$work/run.log" ] && tail -n 40 "$work/run.log" >&2; exit 1; }

work=$(mktemp -d)
pid=
trap cleanup EXIT

# Build what the blocks use before the server starts.
go tool -modfile=tools.go.mod grpcurl -version >/dev/null 2>&1
go test -c -o "$work/readme.test" ./tests/readme

start_platform "$work" || fail "scripts/run.sh"
(cd tests/readme && SHOAL_README_DIR=$work SHOAL_README_GRPC=127.0.0.1:$gport SHOAL_README_HTTP=127.0.0.1:$hport \
	SHOAL_README_BIN=$root/bin "$work/readme.test" -test.v -test.count=1 -test.run '^TestREADMECommands$' -test.timeout 20m) ||
	fail "the README's commands"
