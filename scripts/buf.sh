#!/usr/bin/env bash
# Runs buf at the version tools.go.mod requires:
#
#   scripts/buf.sh lint            (any buf command)
#
# Buf publishes its release binaries on npm (@bufbuild/buf-linux-x64); on
# linux/x86_64 the binary is installed from there once into Shoal's cache,
# in seconds, where `go tool buf` compiles buf and its dependencies first
# (about ten minutes of a cold 2-core machine's CI). Elsewhere, or when npm
# cannot fetch it, it falls back to `go tool -modfile=tools.go.mod buf`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

version=$(awk '$1 == "github.com/bufbuild/buf" { sub(/^v/, "", $2); print $2 }' "$root/tools.go.mod")
dir="${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}/buf-$version"
bin="$dir/node_modules/@bufbuild/buf-linux-x64/bin/buf"

if [ -n "$version" ] && [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] && [ ! -x "$bin" ] && command -v npm >/dev/null; then
	mkdir -p "$(dirname "$dir")"
	# A temporary prefix moved into place: an interrupted install never
	# leaves a half-populated cache.
	tmp=$(mktemp -d "$dir.tmp.XXXXXX")
	if npm install --ignore-scripts --no-save --no-audit --no-fund --loglevel=error \
		--prefix "$tmp" "@bufbuild/buf-linux-x64@$version" >/dev/null 2>"$tmp.err" &&
		[ "$("$tmp/node_modules/@bufbuild/buf-linux-x64/bin/buf" --version 2>/dev/null)" = "$version" ]; then
		rm -rf "$dir"
		mv "$tmp" "$dir"
	else
		echo "buf: npm could not install @bufbuild/buf-linux-x64@$version ($(tail -n 1 "$tmp.err")); building it with go tool" >&2
		rm -rf "$tmp"
	fi
	rm -f "$tmp.err"
fi
if [ -x "$bin" ]; then
	exec "$bin" "$@"
fi
exec go tool -modfile="$root/tools.go.mod" buf "$@"
