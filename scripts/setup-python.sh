#!/usr/bin/env bash
# Installs what the Python SDK (clients/python) needs from Debian, since PyPI
# may be out of reach: gRPC and protobuf for Debian's /usr/bin/python3, and
# the generators behind `make generate`'s Python stubs (protoc and gRPC's
# grpc_python_plugin). With the argument `torch`, also PyTorch and
# torchvision, with which scripts/export-corpus.sh writes the ONNX exports
# the import tests fine-tune. Idempotent and quiet; needs root (or sudo) only
# when a package is missing. Prints the interpreter to use:
#
#   py=$(scripts/setup-python.sh) && "$py" -c 'import shoal_client'
#   py=$(scripts/setup-python.sh torch) && "$py" -c 'import torch'
set -euo pipefail

py=/usr/bin/python3
packages=(python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc)
modules="grpc, google.protobuf"
case "${1:-}" in
"") ;;
torch)
	packages+=(python3-torch python3-torchvision)
	modules+=", torch, torchvision"
	;;
*)
	echo "setup-python: unknown argument $1; want none or torch" >&2
	exit 2
	;;
esac

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	"$(dirname "$0")/apt-install.sh" "${missing[@]}"
fi
if ! "$py" -c "import $modules" 2>/dev/null; then
	echo "setup-python: ${packages[*]} installed, but $py cannot import $modules" >&2
	exit 1
fi
echo "$py"
