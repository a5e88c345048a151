#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that the Registry (and later
# Inference) load, once, into Shoal's cache, and prints its absolute path.
#
#   export ONNXRUNTIME_SHARED_LIBRARY_PATH="$(scripts/setup-onnxruntime.sh)"
#
# The library comes from the npm package onnxruntime-node, which ships the
# Linux x64 build of libonnxruntime. Its install script downloads extra
# GPU providers from a host that is not reachable here and is not needed
# for CPU inference, so scripts are skipped.
set -euo pipefail

version=1.30.0
dir="${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}/onnxruntime-$version"
lib="$dir/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"

case "$(uname -s)/$(uname -m)" in
Linux/x86_64) ;;
*)
	echo "setup-onnxruntime: only linux/x86_64 is packaged; point ONNXRUNTIME_SHARED_LIBRARY_PATH at your own libonnxruntime" >&2
	exit 1
	;;
esac

if [ ! -f "$lib" ]; then
	command -v npm >/dev/null || {
		echo "setup-onnxruntime: npm is required to fetch onnxruntime-node@$version" >&2
		exit 1
	}
	mkdir -p "$dir"
	# Install into a temporary prefix and move it into place, so that an
	# interrupted install never leaves a half-populated cache behind.
	tmp=$(mktemp -d "$dir.tmp.XXXXXX")
	trap 'rm -rf "$tmp" "$tmp.err"' EXIT
	if ! npm install --ignore-scripts --no-save --no-audit --no-fund --loglevel=error \
		--prefix "$tmp" "onnxruntime-node@$version" >&2 2>"$tmp.err"; then
		cat "$tmp.err" >&2
		if grep -q 'SELF_SIGNED_CERT\|UNABLE_TO_GET_ISSUER_CERT\|UNABLE_TO_VERIFY_LEAF' "$tmp.err"; then
			echo "setup-onnxruntime: npm does not trust the registry's certificate; behind a TLS-inspecting proxy, set NODE_EXTRA_CA_CERTS to its CA bundle (e.g. /etc/ssl/certs/ca-certificates.crt)" >&2
		fi
		rm -f "$tmp.err"
		exit 1
	fi
	rm -f "$tmp.err"
	if [ ! -f "$tmp/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" ]; then
		echo "setup-onnxruntime: onnxruntime-node@$version does not contain libonnxruntime.so.1 where expected" >&2
		exit 1
	fi
	rm -rf "$dir/node_modules"
	mv "$tmp/node_modules" "$dir/node_modules"
fi
echo "$lib"
