#!/usr/bin/env bash
# A real S3 server for tests: SeaweedFS `weed mini`, built from the Go module
# proxy through the wrapper module in scripts/seaweedfs/.
#
#   scripts/seaweedfs.sh build        build weed (or reuse the cached binary); print its path
#   scripts/seaweedfs.sh start DIR    start weed mini with its data in DIR; print export lines
#   scripts/seaweedfs.sh stop DIR     stop the server started in DIR
#
# Typical use:
#   eval "$(scripts/seaweedfs.sh start /tmp/shoal-s3)"
#   go test -race ./internal/storage/blob/...
#   scripts/seaweedfs.sh stop /tmp/shoal-s3
#
# Environment:
#   SHOAL_CACHE_DIR               cache root (default ~/.cache/shoal); the binary goes to bin/weed-<version>
#   SHOAL_WEED_BUILD_JOBS         go build -p (default 2)
#   SHOAL_WEED_START_TIMEOUT      seconds to wait for the S3 endpoint (default 120)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=$script_dir/seaweedfs
cache_dir=${SHOAL_CACHE_DIR:-$HOME/.cache/shoal}
weed_pkg=github.com/seaweedfs/seaweedfs/weed

log() { printf 'seaweedfs.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# weed_version prints the SeaweedFS version the wrapper module pins.
weed_version() {
	local v
	v=$(awk '$1 == "github.com/seaweedfs/seaweedfs" { print $2; exit }' "$build_dir/go.mod")
	[[ -n $v ]] || die "no github.com/seaweedfs/seaweedfs requirement in $build_dir/go.mod"
	printf '%s\n' "$v"
}

cmd_build() {
	command -v go >/dev/null || die "go is not on PATH"
	local version bin log_file tmp start
	version=$(weed_version)
	bin=$cache_dir/bin/weed-$version
	if [[ -x $bin ]]; then
		printf '%s\n' "$bin"
		return
	fi
	mkdir -p "$cache_dir/bin" "$cache_dir/logs"
	# Two jobs starting at once must not both spend ~12 minutes building.
	exec 9>"$cache_dir/bin/.weed-$version.lock"
	flock 9
	if [[ -x $bin ]]; then
		printf '%s\n' "$bin"
		return
	fi
	log_file=$cache_dir/logs/weed-build-$version.log
	tmp=$bin.tmp.$$
	log "building weed $version (about 12 minutes on 2 cores); log: $log_file"
	start=$SECONDS
	# -mod=readonly: build exactly what go.mod and go.sum pin, never re-resolve.
	# CGO off: a static binary, and no C toolchain needed.
	if ! (cd "$build_dir" && CGO_ENABLED=0 go build -mod=readonly -p "${SHOAL_WEED_BUILD_JOBS:-2}" \
		-trimpath -ldflags='-s -w' -o "$tmp" "$weed_pkg") >"$log_file" 2>&1; then
		rm -f "$tmp"
		tail -n 40 "$log_file" >&2
		die "building weed failed; full log: $log_file"
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

# pick_ports N prints N distinct free ports below the Linux ephemeral range
# (32768+), where the kernel's own outgoing connections cannot take them
# between our check and weed's bind.
pick_ports() {
	local n=$1 used picked=" " p
	used=" $(listening_ports | tr '\n' ' ') "
	while ((n > 0)); do
		p=$((20000 + RANDOM % 12000))
		[[ $used == *" $p "* || $picked == *" $p "* ]] && continue
		picked+="$p "
		printf '%s\n' "$p"
		n=$((n - 1))
	done
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# is_our_weed PID reports whether PID is a running weed mini, so that a stale
# pid file never gets an unrelated process killed.
is_our_weed() {
	local pid=$1 cmdline
	[[ -r /proc/$pid/cmdline ]] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
	[[ $cmdline == *weed* && $cmdline == *" mini "* ]]
}

# s3_call METHOD PATH [BODY]: one signed S3 request; prints the HTTP status.
s3_call() {
	# curl before 8.x does not send x-amz-content-sha256, which S3 requires
	# (SeaweedFS answers SignatureDoesNotMatch without it).
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$1" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
		--aws-sigv4 'aws:amz:us-east-1:s3' --user "$access_key:$secret_key" \
		${3:+--data-binary "$3"} "http://127.0.0.1:$s3_port$2" || true
}

# s3_ready reports whether the server authenticates us and stores objects: a
# listening port alone does not mean the volume server has registered yet.
s3_ready() {
	local probe=/shoal-ready-probe code
	[[ $(s3_call GET /) == 200 ]] || return 1
	code=$(s3_call PUT "$probe")
	[[ $code == 200 || $code == 409 ]] || return 1
	[[ $(s3_call PUT "$probe/probe" ok) == 200 ]] || return 1
	s3_call DELETE "$probe/probe" >/dev/null
	s3_call DELETE "$probe" >/dev/null
}

# launch starts weed mini on fresh ports; it returns 3 if weed exited at once
# because a port was taken meanwhile (worth retrying), 1 on other failures.
launch() {
	local dir=$1 bin=$2 timeout=${SHOAL_WEED_START_TIMEOUT:-120} ports deadline
	mapfile -t ports < <(pick_ports 11)
	s3_port=${ports[0]}
	cat >"$dir/s3.json" <<EOF
{
  "identities": [
    {
      "name": "shoal-test",
      "credentials": [{"accessKey": "$access_key", "secretKey": "$secret_key"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF
	chmod 600 "$dir/s3.json"
	mkdir -p "$dir/data"
	# Every port is explicit: weed mini moves a defaulted port that is taken
	# but fails on an explicit one, so the S3 port we print is the real one.
	# Loopback only; no telemetry, web UIs, WebDAV, Iceberg or Lance.
	nohup "$bin" mini \
		-dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
		-s3.config="$dir/s3.json" \
		-s3.port="${ports[0]}" -s3.port.grpc="${ports[1]}" \
		-master.port="${ports[2]}" -master.port.grpc="${ports[3]}" \
		-volume.port="${ports[4]}" -volume.port.grpc="${ports[5]}" \
		-filer.port="${ports[6]}" -filer.port.grpc="${ports[7]}" \
		-webdav=false -webdav.port="${ports[8]}" \
		-admin.ui=false -admin.port="${ports[9]}" -admin.port.grpc="${ports[10]}" -admin.port.legacy=0 \
		-s3.port.iceberg=0 -s3.port.lance=0 \
		-master.telemetry=false \
		</dev/null >"$dir/weed.log" 2>&1 &
	local pid=$!
	printf '%s\n' "$pid" >"$dir/weed.pid"

	deadline=$((SECONDS + timeout))
	until s3_ready; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$dir/weed.pid"
			grep -qiE 'not available|address already in use' "$dir/weed.log" && return 3
			return 1
		fi
		if ((SECONDS >= deadline)); then
			log "S3 endpoint 127.0.0.1:$s3_port not ready after ${timeout}s (SHOAL_WEED_START_TIMEOUT)"
			stop_pid "$dir"
			return 1
		fi
		sleep 0.5
	done
}

cmd_start() {
	[[ $# -eq 1 ]] || usage
	command -v curl >/dev/null || die "curl is needed to check the S3 endpoint"
	local dir bin attempt rc
	mkdir -p "$1"
	dir=$(cd "$1" && pwd)
	if [[ -f $dir/weed.pid ]] && is_our_weed "$(cat "$dir/weed.pid")"; then
		die "weed already runs from $dir (pid $(cat "$dir/weed.pid")); run: $0 stop $dir"
	fi
	bin=$(cmd_build)
	access_key=shoal$(random_hex 8)
	secret_key=$(random_hex 20)
	for attempt in 1 2 3; do
		rc=0
		launch "$dir" "$bin" || rc=$?
		case $rc in
		0) break ;;
		3) log "a port was taken meanwhile (attempt $attempt); retrying on other ports" ;;
		*)
			log "weed mini failed to start; last lines of $dir/weed.log:"
			tail -n 30 "$dir/weed.log" >&2
			exit 1
			;;
		esac
	done
	if ((rc != 0)); then
		tail -n 30 "$dir/weed.log" >&2
		die "weed mini could not get free ports after 3 attempts"
	fi
	local env
	env=$(printf 'export SHOAL_TEST_S3_ENDPOINT=127.0.0.1:%s\nexport SHOAL_TEST_S3_ACCESS_KEY=%s\nexport SHOAL_TEST_S3_SECRET_KEY=%s\n' \
		"$s3_port" "$access_key" "$secret_key")
	printf '%s\n' "$env" >"$dir/env"
	log "weed mini (pid $(cat "$dir/weed.pid")) serves S3 on 127.0.0.1:$s3_port; log: $dir/weed.log"
	printf '%s\n' "$env"
}

# stop_pid stops the weed recorded in DIR/weed.pid, if it still runs.
stop_pid() {
	local dir=$1 pid deadline
	[[ -f $dir/weed.pid ]] || return 0
	pid=$(cat "$dir/weed.pid")
	if is_our_weed "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + 30))
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "weed (pid $pid) ignored SIGTERM for 30s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$dir/weed.pid"
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
