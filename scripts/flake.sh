#!/usr/bin/env bash
# Flaky-test hunt (`make flake`): runs a set of Go packages several times
# under -race while something else loads the cores, as a busy CI machine
# would, and prints each test that failed with how often. It starts the same
# servers as the suite (SQL, S3, ONNX Runtime, demo data).
#
#   make flake                                   5 runs of ./..., 2 CPU burners
#   FLAKE_RUNS=10 FLAKE_PKGS="./internal/app ./services/registry" make flake
#   FLAKE_LOAD=build make flake                  load: a parallel go build loop
#   FLAKE_UI=1 make flake                        also the console's end-to-end test each run
#
# Environment:
#   FLAKE_RUNS    runs (default 5)
#   FLAKE_PKGS    packages (default ./...)
#   FLAKE_RUN     go test -run pattern (default: every test)
#   FLAKE_LOAD    cpu:N (N busy loops, default cpu:2), build (go build -a in a
#                 loop, in its own cache), or none
#   FLAKE_P       go test -p (default 2, as make test)
#   FLAKE_UI      1: run scripts/test-ui.sh after each Go run
#   FLAKE_CI      1: also make test's other Go steps after each run: the
#                 training tests without -race and the split topology
#   FLAKE_OUT     folder for each run's go test -json output (default: a temporary one, kept)
# Exit status: 0 when every run passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

runs=${FLAKE_RUNS:-5}
pkgs=${FLAKE_PKGS:-./...}
load=${FLAKE_LOAD:-cpu:2}
out=${FLAKE_OUT:-$(mktemp -d /tmp/shoal-flake.XXXXXX)}
mkdir -p "$out"
log() { printf 'flake: %s\n' "$*" >&2; }

s3dir=$(mktemp -d)
load_pids=()
stop_load() {
	for p in "${load_pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
	load_pids=()
}
trap 'stop_load; scripts/s3server.sh stop "$s3dir" >/dev/null 2>&1 || true; rm -rf "$s3dir"' EXIT

eval "$(scripts/test-sql.sh)"
export SHOAL_TEST_SQL_REQUIRED=1
eval "$(scripts/s3server.sh start "$s3dir")"
export SHOAL_TEST_S3_REQUIRED=1
ONNXRUNTIME_SHARED_LIBRARY_PATH=$(scripts/setup-onnxruntime.sh)
export ONNXRUNTIME_SHARED_LIBRARY_PATH SHOAL_TEST_ORT_REQUIRED=1
scripts/setup-demo-data.sh
export SHOAL_TEST_DEMO_REQUIRED=1
# The same selection as make test's -race step: PyTorch exports and the
# kill -9 and full-disk faults.
SHOAL_TEST_EXPORTS=$(scripts/export-corpus.sh ci)
export SHOAL_TEST_EXPORTS SHOAL_TEST_EXPORTS_REQUIRED=1 SHOAL_TEST_FAULT=1
go test -race -count=1 -run '^$' $pkgs >/dev/null # compile first: the runs measure tests, not builds

# start_load starts the background load in its own process group.
start_load() {
	case $load in
	none) ;;
	cpu:*)
		for _ in $(seq 1 "${load#cpu:}"); do
			setsid bash -c 'while :; do :; done' &
			load_pids+=($!)
		done
		;;
	build)
		setsid bash -c "export GOCACHE=\$(mktemp -d); trap 'rm -rf \$GOCACHE' EXIT
			while :; do go build -a -o /dev/null ./cmd/shoal >/dev/null 2>&1; done" &
		load_pids+=($!)
		;;
	*) log "FLAKE_LOAD=$load: want cpu:N, build or none"; exit 2 ;;
	esac
}

failed_runs=0
for i in $(seq 1 "$runs"); do
	start_load
	log "run $i of $runs: go test -race -p ${FLAKE_P:-2} $pkgs (load: $load, load average $(cut -d' ' -f1-3 /proc/loadavg))"
	start=$SECONDS
	rc=0
	go test -race -count=1 -p "${FLAKE_P:-2}" -timeout 20m ${FLAKE_RUN:+-run "$FLAKE_RUN"} -json $pkgs >"$out/run-$i.json" 2>"$out/run-$i.stderr" || rc=$?
	if [ "${FLAKE_CI:-}" = 1 ]; then
		# make test's steps without -race, in go test -json for the summary.
		go test -count=1 -timeout 20m -json ./internal/ml ./services/trainer >>"$out/run-$i.json" 2>>"$out/run-$i.stderr" || rc=1
		SHOAL_TEST_SPLIT=1 go test -count=1 -timeout 15m -json ./tests/split >>"$out/run-$i.json" 2>>"$out/run-$i.stderr" || rc=1
	fi
	if [ "${FLAKE_UI:-}" = 1 ]; then
		scripts/test-ui.sh >"$out/ui-$i.log" 2>&1 || { rc=1; echo '{"Action":"fail","Package":"console e2e","Test":"scripts/test-ui.sh"}' >>"$out/run-$i.json"; }
	fi
	stop_load
	log "run $i: exit status $rc in $((SECONDS - start))s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	[ "$rc" = 0 ] || failed_runs=$((failed_runs + 1))
done

python3 - "$out" "$runs" <<'PY'
import collections, glob, json, os, sys
out, runs = sys.argv[1], int(sys.argv[2])
fails = collections.defaultdict(list)
for i in range(1, runs + 1):
    path = os.path.join(out, f"run-{i}.json")
    for line in open(path, errors="replace"):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("Action") == "fail":
            name = ev.get("Test") or "(package: build, timeout or TestMain)"
            fails[(ev.get("Package", "?"), name)].append(i)
print(f"\nflake: {runs} runs; output in {out}")
if not fails:
    print("flake: no test failed")
for (pkg, test), where in sorted(fails.items()):
    print(f"  {len(where)}/{runs}  {pkg} {test}  (runs {', '.join(map(str, where))})")
PY
[ "$failed_runs" = 0 ]
