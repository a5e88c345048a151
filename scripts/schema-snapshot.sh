#!/usr/bin/env bash
# Records the schema this tree's migrations create on SQLite, MariaDB/MySQL
# and PostgreSQL in tests/upgrade/testdata/schema.<driver>.json: run it when
# a release is cut, and commit the files with the release. Until the next
# release, tests/upgrade (part of make test) holds every change to it: the
# new migrations, run on that schema with a row in every table, may only
# add (README, "Rolling upgrades").
#
#   make schema-snapshot        (or scripts/schema-snapshot.sh)
#
# Needs the SQL servers, which scripts/test-sql.sh starts when they are down.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/test-sql.sh)"
export SHOAL_TEST_SQL_REQUIRED=1 # a snapshot for every dialect, or none
go test -count=1 -run 'TestRollingUpgrade$' ./tests/upgrade -args -update
git status --short tests/upgrade/testdata
