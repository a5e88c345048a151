#!/usr/bin/env bash
# A real S3 server for tests: the Versity S3 Gateway (versitygw) with its
# POSIX backend, built from the Go module proxy through the wrapper module in
# scripts/s3server/ and listening on loopback only.
#
#   scripts/s3server.sh build        build the server (or reuse the cached binary); print its path
#   scripts/s3server.sh start DIR    start a server with its data in DIR; print export lines
#   scripts/s3server.sh stop DIR     stop the server started in DIR
#
# Typical use:
#   eval "$(scripts/s3server.sh start /tmp/shoal-s3)"
#   go test -race ./internal/storage/blob/...
#   scripts/s3server.sh stop /tmp/shoal-s3
#
# Environment:
#   SHOAL_CACHE_DIR                 cache root (default ~/.cache/shoal); the binary goes to bin/
#   SHOAL_S3SERVER_BUILD_JOBS       go build -p (default 2)
#   SHOAL_S3SERVER_START_TIMEOUT    seconds to wait for the S3 endpoint (default 60)
#   SHOAL_S3SERVER_PORT             port to try first (default: a random free one)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=$script_dir/s3server
cache_dir=${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}

log() { printf 's3server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# binary_name names the binary after the versitygw version the wrapper module
# pins and a hash of the wrapper's sources, so that any change to them makes
# a new build rather than reusing a stale one.
binary_name() {
	local v h
	v=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/versity/versitygw") { print $(i + 1); exit } }' "$build_dir/go.mod")
	[[ -n $v ]] || die "no github.com/versity/versitygw requirement in $build_dir/go.mod"
	h=$(cat "$build_dir/go.mod" "$build_dir/go.sum" "$build_dir/main.go" | sha256sum | cut -c1-12)
	printf 's3server-versitygw-%s-%s\n' "$v" "$h"
}

cmd_build() {
	command -v go >/dev/null || die "go is not on PATH"
	local name bin log_file tmp start
	name=$(binary_name)
	bin=$cache_dir/bin/$name
	if [[ -x $bin ]]; then
		printf '%s\n' "$bin"
		return
	fi
	mkdir -p "$cache_dir/bin" "$cache_dir/logs"
	# Two jobs starting at once must not both build.
	exec 9>"$cache_dir/bin/.$name.lock"
	flock 9
	if [[ -x $bin ]]; then
		printf '%s\n' "$bin"
		return
	fi
	log_file=$cache_dir/logs/$name-build.log
	tmp=$bin.tmp.$$
	log "building $name (about 3 minutes of CPU time); log: $log_file"
	start=$SECONDS
	# -mod=readonly: build exactly what go.mod and go.sum pin, never re-resolve.
	# CGO off: a static binary, and no C toolchain needed. GOWORK off: a
	# go.work further up must not pull Shoal's modules into this build.
	if ! (cd "$build_dir" && CGO_ENABLED=0 GOWORK=off go build -mod=readonly -buildvcs=false \
		-p "${SHOAL_S3SERVER_BUILD_JOBS:-2}" -trimpath -ldflags='-s -w' -o "$tmp" .) >"$log_file" 2>&1; then
		rm -f "$tmp"
		tail -n 40 "$log_file" >&2
		die "building the S3 server failed; full log: $log_file"
	fi
	mv -f "$tmp" "$bin"
	log "built $bin in $((SECONDS - start))s"
	printf '%s\n' "$bin"
}

# listening_ports prints the TCP ports something listens on (any address).
listening_ports() {
	local hex
	# State 0A is LISTEN; the local port is the hex after the last colon.
	awk 'FNR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		while read -r hex; do printf '%d\n' "$((16#$hex))"; done
}

# pick_port prints a port nothing listens on, below the Linux ephemeral range
# (32768+), where the kernel's own outgoing connections cannot take it
# between our check and the server's bind.
pick_port() {
	local used p
	used=" $(listening_ports | tr '\n' ' ') "
	while :; do
		p=$((20000 + RANDOM % 12000))
		[[ $used == *" $p "* ]] || break
	done
	printf '%s\n' "$p"
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# is_our_server PID DIR reports whether PID is the server serving DIR, so
# that a stale pid file never gets an unrelated process killed.
is_our_server() {
	local pid=$1 dir=$2 cmdline
	[[ -r /proc/$pid/cmdline ]] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
	[[ $cmdline == */s3server-versitygw-*" -dir $dir/data "* ]]
}

# s3_call METHOD PATH [BODY]: one signed S3 request; prints the HTTP status.
s3_call() {
	# curl before 8.x does not send x-amz-content-sha256, which S3 requires.
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$1" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
		--aws-sigv4 'aws:amz:us-east-1:s3' --user "$access_key:$secret_key" \
		${3:+--data-binary "$3"} "http://127.0.0.1:$s3_port$2" || true
}

# s3_ready reports whether the server authenticates us and stores objects.
s3_ready() {
	local probe=/shoal-ready-probe code
	[[ $(s3_call GET /) == 200 ]] || return 1
	code=$(s3_call PUT "$probe")
	[[ $code == 200 || $code == 409 ]] || return 1
	[[ $(s3_call PUT "$probe/probe" ok) == 200 ]] || return 1
	[[ $(s3_call DELETE "$probe/probe") == 204 ]] || return 1
	[[ $(s3_call DELETE "$probe") == 204 ]] || return 1
}

# launch starts the server on PORT; it returns 3 if the server exited because
# the port was taken meanwhile (worth retrying), 1 on other failures.
launch() {
	local dir=$1 bin=$2 timeout=${SHOAL_S3SERVER_START_TIMEOUT:-60} deadline pid rc
	s3_port=$3
	mkdir -p "$dir/data"
	# The keys go through the environment, not the command line that every
	# user of the machine can read.
	SHOAL_S3SERVER_ACCESS_KEY=$access_key SHOAL_S3SERVER_SECRET_KEY=$secret_key \
		nohup "$bin" -addr "127.0.0.1:$s3_port" -dir "$dir/data" \
		</dev/null >>"$dir/s3server.log" 2>&1 &
	pid=$!
	printf '%s\n' "$pid" >"$dir/s3server.pid"

	deadline=$((SECONDS + timeout))
	until s3_ready; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rc=0
			wait "$pid" || rc=$?
			rm -f "$dir/s3server.pid"
			# The server exits with 3 when its address is in use.
			((rc == 3)) && return 3
			return 1
		fi
		if ((SECONDS >= deadline)); then
			log "S3 endpoint 127.0.0.1:$s3_port not ready after ${timeout}s (SHOAL_S3SERVER_START_TIMEOUT)"
			stop_pid "$dir"
			return 1
		fi
		sleep 0.2
	done
}

cmd_start() {
	[[ $# -eq 1 ]] || usage
	command -v curl >/dev/null || die "curl is needed to check the S3 endpoint"
	local dir bin attempt rc port
	mkdir -p "$1"
	dir=$(cd "$1" && pwd)
	if [[ -f $dir/s3server.pid ]] && is_our_server "$(cat "$dir/s3server.pid")" "$dir"; then
		die "an S3 server already runs from $dir (pid $(cat "$dir/s3server.pid")); run: $0 stop $dir"
	fi
	bin=$(cmd_build)
	access_key=shoal$(random_hex 8)
	secret_key=$(random_hex 20)
	: >"$dir/s3server.log"
	port=${SHOAL_S3SERVER_PORT:-$(pick_port)}
	for attempt in 1 2 3; do
		rc=0
		launch "$dir" "$bin" "$port" || rc=$?
		case $rc in
		0) break ;;
		3)
			log "port $port is taken (attempt $attempt); retrying on another port"
			port=$(pick_port)
			;;
		*)
			log "the S3 server failed to start; last lines of $dir/s3server.log:"
			tail -n 30 "$dir/s3server.log" >&2
			exit 1
			;;
		esac
	done
	if ((rc != 0)); then
		tail -n 30 "$dir/s3server.log" >&2
		die "the S3 server could not get a free port after 3 attempts"
	fi
	local env
	env=$(printf 'export SHOAL_TEST_S3_ENDPOINT=127.0.0.1:%s\nexport SHOAL_TEST_S3_ACCESS_KEY=%s\nexport SHOAL_TEST_S3_SECRET_KEY=%s\n' \
		"$s3_port" "$access_key" "$secret_key")
	(umask 077 && printf '%s\n' "$env" >"$dir/env")
	log "S3 server (pid $(cat "$dir/s3server.pid")) on 127.0.0.1:$s3_port; log: $dir/s3server.log"
	printf '%s\n' "$env"
}

# stop_pid stops the server recorded in DIR/s3server.pid, if it still runs.
stop_pid() {
	local dir=$1 pid deadline
	[[ -f $dir/s3server.pid ]] || return 0
	pid=$(cat "$dir/s3server.pid")
	if is_our_server "$pid" "$dir"; then
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + 30))
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "the S3 server (pid $pid) ignored SIGTERM for 30s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$dir/s3server.pid"
}

cmd_stop() {
	[[ $# -eq 1 ]] || usage
	[[ -d $1 ]] || die "no such directory: $1"
	stop_pid "$(cd "$1" && pwd)"
}

case ${1:-} in
build) shift; [[ $# -eq 0 ]] || usage; cmd_build ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
*) usage ;;
esac
