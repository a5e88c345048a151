#!/usr/bin/env bash
# Builds the web console (frontend/) into internal/webui/dist/app, which
# `go build` then embeds into bin/shoal: npm ci, the typed REST client
# generated from gen/openapi/shoal.swagger.json, the type check, vite build.
# Each step is skipped when its inputs have not changed since it last ran.
#
#   scripts/build-ui.sh           build if needed
#   scripts/build-ui.sh --deps    only install the npm packages and generate the client
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/frontend"

log() { echo "build-ui: $*" >&2; }

command -v npm >/dev/null || { log "npm is required (Debian: apt-get install -y nodejs npm)"; exit 1; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

lock_hash=$(hash_of package-lock.json)
if [ "$(cat node_modules/.shoal-lock 2>/dev/null)" != "$lock_hash" ]; then
	log "npm ci"
	npm ci --no-audit --no-fund --loglevel=error >&2
	echo "$lock_hash" >node_modules/.shoal-lock
fi

schema=src/api/schema.d.ts
if [ ! -f "$schema" ] || [ "$root/gen/openapi/shoal.swagger.json" -nt "$schema" ] || [ scripts/generate-client.mjs -nt "$schema" ]; then
	npm run --silent generate >&2
fi
[ "${1:-}" = --deps ] && exit 0

out=$root/internal/webui/dist/app
inputs=$( (find src public -type f; ls index.html package-lock.json tsconfig.json vite.config.ts) | LC_ALL=C sort)
src_hash=$(hash_of $inputs)
if [ -f "$out/index.html" ] && [ "$(cat "$root/.build/ui.stamp" 2>/dev/null)" = "$src_hash" ]; then
	exit 0
fi
log "type check and vite build"
npx tsc --noEmit >&2
npx vite build --logLevel warn >&2
mkdir -p "$root/.build"
echo "$src_hash" >"$root/.build/ui.stamp"
