#!/usr/bin/env bash
# Builds the web console (frontend/) into internal/webui/dist/app, which
# `go build` then embeds into bin/shoal: the TypeScript SDK it calls the API
# with (clients/typescript, a local package: scripts/build-ts-sdk.sh), npm
# ci, the type check, vite build. Each step is skipped when its inputs have
# not changed since it last ran.
#
#   scripts/build-ui.sh           build if needed
#   scripts/build-ui.sh --deps    only build the SDK and install the npm packages
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/frontend"

log() { echo "build-ui: $*" >&2; }

command -v npm >/dev/null || { log "npm is required (Debian: apt-get install -y nodejs npm)"; exit 1; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

"$root/scripts/build-ts-sdk.sh"

lock_hash=$(hash_of package-lock.json)
if [ "$(cat node_modules/.shoal-lock 2>/dev/null)" != "$lock_hash" ]; then
	log "npm ci"
	npm ci --no-audit --no-fund --loglevel=error >&2
	echo "$lock_hash" >node_modules/.shoal-lock
fi

[ "${1:-}" = --deps ] && exit 0

out=$root/internal/webui/dist/app
inputs=$( (find src public -type f; ls index.html package-lock.json tsconfig.json vite.config.ts ../clients/typescript/dist/.shoal-src) | LC_ALL=C sort)
src_hash=$(hash_of $inputs)
if [ -f "$out/index.html" ] && [ "$(cat "$root/.build/ui.stamp" 2>/dev/null)" = "$src_hash" ]; then
	exit 0
fi
log "type check and vite build"
npx tsc --noEmit >&2
npx vite build --logLevel warn >&2
mkdir -p "$root/.build"
echo "$src_hash" >"$root/.build/ui.stamp"
