#!/usr/bin/env bash
# The fast check for every change (`make check`, about a minute once the
# caches are warm): formatting, vet, golangci-lint (pinned in lint.go.mod,
# configured by .golangci.yml), the Go tests in -short mode without SQL or S3
# servers, the file-length rule, and a duplicate-code scan that informs
# without failing. `make test` stays the full suite.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
step() { printf '\n== %s\n' "$1"; }

step "gofmt"
unformatted=$(git ls-files -co --exclude-standard '*.go' | grep -v '^gen/' | grep -v '^third_party/' | xargs gofmt -l)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; failed=1
fi

step "file length: a Go file over 500 lines says why at its top (// Long file: ...)"
for f in $(git ls-files -co --exclude-standard '*.go' | grep -v '^gen/' | grep -v '^third_party/'); do
	[ -f "$f" ] || continue
	n=$(wc -l <"$f")
	if [ "$n" -gt 500 ] && ! head -n 5 "$f" | grep -q '^// Long file: '; then
		echo "$f: $n lines and no '// Long file: <why>' comment in its first lines"; failed=1
	fi
done

step "go vet"
go vet ./... || failed=1

step "golangci-lint"
go tool -modfile=lint.go.mod golangci-lint run ./... || failed=1

step "go test -short (no servers)"
# Tests that need PostgreSQL, MariaDB or S3 skip without their variables.
env -u SHOAL_TEST_POSTGRES_DSN -u SHOAL_TEST_MYSQL_DSN -u SHOAL_TEST_S3_ENDPOINT \
	-u SHOAL_TEST_SQL_REQUIRED -u SHOAL_TEST_S3_REQUIRED -u SHOAL_TEST_FAULT -u SHOAL_TEST_SPLIT -u SHOAL_TEST_DEMO_REQUIRED \
	go test -short -count=1 ./... >/tmp/shoal-check-test.$$ 2>&1 || { cat /tmp/shoal-check-test.$$; failed=1; }
grep -v '^ok\|no test files' /tmp/shoal-check-test.$$ || true
rm -f /tmp/shoal-check-test.$$

step "duplicate code (informational)"
if command -v duplicates >/dev/null 2>&1; then
	# Generated code repeats itself by design: rows that touch gen/ are dropped.
	duplicates --most 200 --seconds 30 | grep -v 'gen/' | grep -v 'third_party/' | head -n 16 || true
else
	echo "duplicates is not installed here: skipped"
fi

if [ "$failed" -ne 0 ]; then
	printf '\ncheck: FAILED\n'; exit 1
fi
printf '\ncheck: clean\n'
