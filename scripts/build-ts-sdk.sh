#!/usr/bin/env bash
# Builds the TypeScript SDK (clients/typescript, @shoal/client) into its
# dist/: npm ci of its pinned packages, then tsc. Each step is skipped when
# its inputs have not changed since it last ran. The web console depends on
# the SDK as a local package, so scripts/build-ui.sh runs this first.
#
#   scripts/build-ts-sdk.sh           build if needed
#   scripts/build-ts-sdk.sh --deps    only install its npm packages (the generators)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/clients/typescript"

log() { echo "build-ts-sdk: $*" >&2; }

command -v npm >/dev/null || { log "npm is required (Debian: apt-get install -y nodejs npm)"; exit 1; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

lock_hash=$(hash_of package-lock.json)
if [ "$(cat node_modules/.shoal-lock 2>/dev/null)" != "$lock_hash" ]; then
	log "npm ci"
	npm ci --no-audit --no-fund --loglevel=error >&2
	echo "$lock_hash" >node_modules/.shoal-lock
fi
[ "${1:-}" = --deps ] && exit 0

src_hash=$(hash_of $( (find src -type f; ls package.json package-lock.json tsconfig.json) | LC_ALL=C sort))
if [ -f dist/index.js ] && [ "$(cat dist/.shoal-src 2>/dev/null)" = "$src_hash" ]; then
	exit 0
fi
log "tsc"
rm -rf dist
npx tsc -p tsconfig.json >&2
echo "$src_hash" >dist/.shoal-src
