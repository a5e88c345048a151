#!/usr/bin/env bash
# Installs Debian's dataset-fashion-mnist package (Fashion-MNIST by Zalando
# Research, MIT licence), from which `shoal demo-data` writes the offline demo
# dataset. Idempotent; needs root (or sudo) only when the package is missing.
#
#   scripts/setup-demo-data.sh && shoal demo-data --out ./data/import/fashion-mnist
set -euo pipefail

dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/t10k-labels-idx1-ubyte.gz" ]; then
	exit 0
fi
"$(dirname "$0")/apt-install.sh" dataset-fashion-mnist
if [ ! -f "$dir/t10k-labels-idx1-ubyte.gz" ]; then
	echo "setup-demo-data: dataset-fashion-mnist installed, but $dir has no IDX files" >&2
	exit 1
fi
