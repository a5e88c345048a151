#!/usr/bin/env bash
# Writes the corpus of ONNX models exported by PyTorch that the import tests
# fine-tune (scripts/export-corpus.py says what is in it), once, into
# Shoal's cache, and prints the path of the selection's manifest: a JSON
# list of every export's description (NAME.json) with its file's path.
#
#   export SHOAL_TEST_EXPORTS=$(scripts/export-corpus.sh ci)    what make test runs
#   export SHOAL_TEST_EXPORTS=$(scripts/export-corpus.sh all)   the whole matrix (make test-exports)
#
# PyTorch and torchvision are Debian's (scripts/setup-python.sh torch). The
# cache is keyed by the export script's content and the packages' versions,
# so a change to either writes a fresh corpus (old ones stay: remove
# ~/.cache/shoal/pytorch-exports-* by hand; the whole corpus is 2.5 GB); each
# export is written once, by name, and a run exports only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# What make test fine-tunes: the two networks that must, at the usual
# opset with a dynamic batch (their exports share equal initialisers
# through Identity nodes, which GoMLX cannot differentiate), and two
# exports the import refuses: SqueezeNet's classifier is a convolution,
# and onnx-gomlx has no LeakyRelu.
ci=(
	resnet18-opset13-dyn-logits
	mobilenetv2-opset13-dyn-softmax
	squeezenet-opset13-dyn-logits
	leakycnn-opset13-dyn-logits
)

which=${1:-ci}
case "$which" in
ci | all) ;;
*)
	echo "export-corpus: unknown selection $which; want ci or all" >&2
	exit 2
	;;
esac
# Warm, neither torch nor a package check is needed: just their versions.
py=/usr/bin/python3
if ! versions=$(dpkg-query -W -f='${Package} ${Version} ${Status}\n' python3-torch python3-torchvision 2>/dev/null) ||
	[ "$(grep -c 'ok installed' <<<"$versions")" != 2 ]; then
	py=$(scripts/setup-python.sh torch)
	versions=$(dpkg-query -W -f='${Package} ${Version} ${Status}\n' python3-torch python3-torchvision)
fi
key=$({ cat scripts/export-corpus.py; echo "$versions"; } | sha256sum | cut -c1-16)
dir="${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}/pytorch-exports-$key"
mkdir -p "$dir"

if [ "$which" = all ]; then
	mapfile -t names < <("$py" scripts/export-corpus.py list)
else
	names=("${ci[@]}")
fi
missing=()
for n in "${names[@]}"; do
	[ -f "$dir/$n.json" ] || missing+=("$n")
done
if [ ${#missing[@]} -gt 0 ]; then
	py=$(scripts/setup-python.sh torch)
	start=$SECONDS
	echo "export-corpus: exporting ${#missing[@]} models with torch.onnx.export into $dir" >&2
	# Two exporters at a time (each loads torch once per 8 models).
	printf '%s\n' "${missing[@]}" | xargs -P 2 -n 8 "$py" scripts/export-corpus.py export "$dir"
	echo "export-corpus: done in $((SECONDS - start)) s" >&2
fi

manifest="$dir/manifest-$which.json"
"$py" - "$dir" "$manifest" "${names[@]}" <<'PY'
import json, os, sys
d, manifest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
entries = []
for n in names:
    with open(os.path.join(d, n + ".json")) as f:
        e = json.load(f)
    e["file"] = os.path.join(d, n + ".onnx")
    entries.append(e)
with open(manifest + ".tmp", "w") as f:
    json.dump(entries, f, indent=1)
os.replace(manifest + ".tmp", manifest)
PY
echo "$manifest"
