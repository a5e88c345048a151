#!/usr/bin/env bash
# Runs Shoal's Go native fuzz targets (the parsers of outside bytes), one
# target at a time for FUZZTIME each, and fails if any finds a crash,
# saying where the failing input was saved. `make test` replays the seed
# corpora and every saved input (testdata/fuzz/FuzzXxx/) as regression
# tests; this script searches for new ones.
#
#   make fuzz                                       (or scripts/fuzz.sh)
#   FUZZTIME=1m scripts/fuzz.sh                     shorter runs
#   scripts/fuzz.sh ./internal/imaging              only these packages
#   FUZZTARGETS=Archive scripts/fuzz.sh             only targets matching a regexp
#   scripts/fuzz.sh --seeds                         rewrite the seed corpora
#
# Env: FUZZTIME (per target, default 5m), FUZZPARALLEL (workers per
# target; default one per core), FUZZMINIMIZETIME (default 0, see below),
# FUZZTARGETS (regexp of target names, default all).
#
# The targets are found with `go test -list '^Fuzz'` in the packages whose
# tests define them. A crash is kept by `go test` as
# <package>/testdata/fuzz/<target>/<hash>: fix the code, keep the file.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-5m}
# Go minimizes every input that finds new coverage, for up to this long,
# before it fuzzes on; on a 2-core machine that took most of a minute's
# run (the tar target: 15,000 execs a minute with 1s, 80,000 with 0). A
# crasher is then saved as found rather than minimized.
minimize=${FUZZMINIMIZETIME:-0}
parallel=${FUZZPARALLEL:-}
filter=${FUZZTARGETS:-.}

if [ "$#" -gt 0 ] && [ "$1" != "--seeds" ]; then
	pkgs=("$@")
else
	mapfile -t pkgs < <(git ls-files -co --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u | sed 's|^|./|')
fi

if [ "${1:-}" = "--seeds" ]; then
	SHOAL_WRITE_FUZZ_SEEDS=1 go test -count=1 -run '^TestWriteFuzzSeeds$' "${pkgs[@]}"
	exit
fi

summary=()
failed=0
for pkg in "${pkgs[@]}"; do
	mapfile -t targets < <(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' | grep -E -- "$filter" || true)
	for t in "${targets[@]}"; do
		dir="$pkg/testdata/fuzz/$t"
		before=$(ls "$dir" 2>/dev/null | sort || true)
		log=$(mktemp)
		printf '\n== %s %s (%s)\n' "$pkg" "$t" "$fuzztime" >&2
		set +e
		# -timeout 0: -fuzztime bounds the run; the test timeout would cut
		# a long one short.
		go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" \
			${parallel:+-parallel "$parallel"} -timeout 0 "$pkg" >"$log" 2>&1
		rc=$?
		set -e
		grep -v '^fuzz: elapsed' "$log" >&2 || true
		last=$(grep '^fuzz: elapsed' "$log" | tail -1 | sed 's/^fuzz: //')
		new=$(comm -13 <(echo "$before") <(ls "$dir" 2>/dev/null | sort || true) | grep . || true)
		if [ "$rc" -eq 0 ]; then
			result=ok
		elif [ -n "$new" ]; then
			result=CRASH
			failed=1
			for f in $new; do
				printf 'crasher saved: %s/%s\n  re-run: go test -run=%s/%s %s\n' "$dir" "$f" "$t" "$f" "$pkg" >&2
			done
		elif grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input' "$log"; then
			# Go 1.26's coordinator can report its own -fuzztime deadline
			# as a failure, with no input (go.dev/issue/75804).
			result="ok (Go's spurious deadline error)"
		else
			result=FAILED
			failed=1
		fi
		summary+=("$(printf '%-26s %-26s %-10s %s' "$pkg" "$t" "$result" "$last")")
		rm -f "$log"
	done
done

printf '\n== fuzzing summary (FUZZTIME=%s per target)\n' "$fuzztime" >&2
printf '%s\n' "${summary[@]}" >&2
exit "$failed"
