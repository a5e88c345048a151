#!/usr/bin/env bash
# Checks the contracts: buf lint, buf breaking against the previous commit
# (WIRE_JSON), and that gen/, the Python SDK's stubs and the TypeScript SDK's
# types are exactly what the pinned generators produce (Debian's protoc for
# Python: scripts/setup-python.sh; npm packages pinned in
# clients/typescript/package-lock.json for TypeScript).
#
#   scripts/check-proto.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bufsh="$(pwd)/scripts/buf.sh"
buf() { "$bufsh" "$@"; }
log() { echo "check-proto: $*" >&2; }

scripts/protodeps.sh
log "buf lint"
buf lint

# Breaking changes are judged against the last commit when proto/ has
# uncommitted edits (a developer's check), else against the commit before
# (CI's check of what this commit changed).
against=HEAD~1
if ! git diff --quiet HEAD -- proto 2>/dev/null || [ -n "$(git ls-files --others --exclude-standard proto)" ]; then
	against=HEAD
fi
if git rev-parse --verify --quiet "$against^{commit}" >/dev/null && git cat-file -e "$against:buf.yaml" 2>/dev/null; then
	prev=$(mktemp -d)
	trap 'rm -rf "$prev"' EXIT
	git archive "$against" buf.yaml proto | tar -x -C "$prev"
	mkdir -p "$prev/.build"
	cp -R .build/protodeps "$prev/.build/"
	log "buf breaking against $against ($(git rev-parse --short "$against"))"
	buf breaking --against "$prev"
else
	log "buf breaking: no earlier commit with contracts; nothing to compare"
fi

log "gen/ drift"
out=$(mktemp -d)
buf generate -o "$out"
go run ./cmd/shoal-openapi "$out/gen/openapi/shoal.swagger.json" # as make generate does
if ! diff -r gen "$out/gen" >/dev/null; then
	{ diff -r gen "$out/gen" || true; } | head -40 >&2
	rm -rf "$out"
	log "gen/ is not what proto/ generates: run 'make generate' and commit gen/"
	exit 1
fi

log "Python SDK stubs drift"
pygen=clients/python/src/shoal_client/gen
scripts/gen-python.sh "$out"
if ! diff -r -x __pycache__ "$pygen" "$out/$pygen" >/dev/null; then
	{ diff -r -x __pycache__ "$pygen" "$out/$pygen" || true; } | head -40 >&2
	rm -rf "$out"
	log "$pygen is not what proto/ generates: run 'make generate' and commit it"
	exit 1
fi

log "TypeScript SDK types drift"
tsgen=clients/typescript/src/gen/schema.ts
scripts/gen-typescript.sh "$out"
if ! diff "$tsgen" "$out/$tsgen" >/dev/null; then
	{ diff "$tsgen" "$out/$tsgen" || true; } | head -40 >&2
	rm -rf "$out"
	log "$tsgen is not what gen/openapi/shoal.swagger.json generates: run 'make generate' and commit it"
	exit 1
fi
rm -rf "$out"
log "ok"
