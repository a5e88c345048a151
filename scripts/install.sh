#!/usr/bin/env bash
# Installs bin/shoal (build it first: make install does) as `shoal` in a
# folder for programs: $(go env GOBIN), else $(go env GOPATH)/bin when that
# is on the PATH, else ~/.local/bin when that is; with neither on the PATH,
# $(go env GOPATH)/bin, and it says how to add it. SHOAL_INSTALL_DIR picks
# the folder.
#
#   make install
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/bin/shoal
[ -x "$src" ] || { echo "install: $src is missing: run make build (or make install)" >&2; exit 1; }

on_path() { case ":$PATH:" in *":$1:"*) return 0 ;; esac; return 1; }

gobin=$(go env GOBIN)
gopath_bin=$(go env GOPATH)/bin
if [ -n "${SHOAL_INSTALL_DIR:-}" ]; then
	dir=$SHOAL_INSTALL_DIR
elif [ -n "$gobin" ]; then
	dir=$gobin
elif on_path "$gopath_bin"; then
	dir=$gopath_bin
elif on_path "$HOME/.local/bin"; then
	dir=$HOME/.local/bin
else
	dir=$gopath_bin
fi
mkdir -p "$dir"
# Through a temporary name, so a running shoal is replaced, not overwritten.
cp "$src" "$dir/.shoal.tmp"
mv -f "$dir/.shoal.tmp" "$dir/shoal"
echo "install: installed shoal to $dir/shoal"
if ! on_path "$dir"; then
	echo "install: $dir is not on your PATH; add it, e.g. in ~/.bashrc:"
	echo "  export PATH=\"$dir:\$PATH\""
elif [ "$(command -v shoal)" != "$dir/shoal" ]; then
	echo "install: note: \`shoal\` on your PATH is $(command -v shoal), which comes before $dir"
else
	echo "install: $dir is on your PATH: try \`shoal --help\`"
fi
