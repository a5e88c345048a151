#!/usr/bin/env bash
# Makes sure the PostgreSQL and MariaDB servers the SQL tests use are up, starting
# whichever is down, then prints the environment that points the tests at them:
#
#   eval "$(scripts/test-sql.sh)" && go test -race ./internal/storage/db/...
#
# Only the export lines go to stdout; progress and errors go to stderr. The DSNs
# name the servers' `test` database: the tests (internal/storage/db/dbtest) create
# and drop a database of their own per test.
set -euo pipefail

host=127.0.0.1
pg_port=5432
mysql_port=3306
wait_seconds=${SHOAL_SQL_WAIT_SECONDS:-30}

log() { echo "test-sql: $*" >&2; }
die() { log "error: $*"; exit 1; }

pg_ready() { pg_isready -q -h "$host" -p "$pg_port" -t 2; }
mysql_ready() { mariadb-admin --host="$host" --port="$mysql_port" --user=root --connect-timeout=2 ping >/dev/null 2>&1; }

# wait_for NAME CHECK: polls CHECK once a second for up to $wait_seconds.
wait_for() {
	local name=$1 check=$2 i
	for ((i = 0; i < wait_seconds; i++)); do
		if "$check"; then
			return 0
		fi
		sleep 1
	done
	die "$name did not accept connections on $host within ${wait_seconds}s (SHOAL_SQL_WAIT_SECONDS raises the limit)"
}

for tool in pg_isready psql mariadb mariadb-admin; do
	command -v "$tool" >/dev/null || die "$tool not found: install PostgreSQL and MariaDB (Debian: postgresql mariadb-server)"
done

if ! pg_ready; then
	versions=(/etc/postgresql/*)
	[[ -d ${versions[0]} ]] || die "no PostgreSQL cluster under /etc/postgresql"
	log "starting PostgreSQL ${versions[0]##*/}"
	pg_ctlcluster --skip-systemctl-redirect "${versions[0]##*/}" main start >&2 ||
		die "pg_ctlcluster could not start PostgreSQL (see /var/log/postgresql/)"
	wait_for PostgreSQL pg_ready
fi

if ! mysql_ready; then
	log "starting MariaDB"
	install -d -o mysql -g mysql /run/mysqld # its socket directory, gone after a reboot
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >&2 ||
		die "start-stop-daemon could not start /usr/sbin/mariadbd"
	wait_for MariaDB mysql_ready
fi

# Accepting connections is not enough: the tests log in as these users.
psql -h "$host" -p "$pg_port" -U postgres -d test -qAt -c 'select 1' >/dev/null ||
	die "PostgreSQL is up but 'psql -h $host -U postgres test' failed"
mariadb -h "$host" -P "$mysql_port" -u root test -e 'select 1' >/dev/null ||
	die "MariaDB is up but 'mariadb -h $host -u root test' failed"
log "PostgreSQL and MariaDB are ready"

echo "export SHOAL_TEST_POSTGRES_DSN='postgres://postgres@$host:$pg_port/test?sslmode=disable'"
echo "export SHOAL_TEST_MYSQL_DSN='root@tcp($host:$mysql_port)/test'"
