# Helpers shared by the scripts that start a server of their own; source it.

# free_ports N prints N free TCP ports of 127.0.0.1 on one line, chosen by
# the kernel.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])
PY
}

# cleanup is the EXIT trap of those scripts: it stops the server whose PID
# is in $pid (when set) and removes the temporary folder $work.
cleanup() {
	if [ -n "${pid:-}" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "${work:-}"
	# The cgroups confine_cpu made, once their processes have ended.
	rmdir /sys/fs/cgroup/shoal-bench-* /sys/fs/cgroup/cpu/shoal-bench-* 2>/dev/null || true
}

# start_platform DIR [ARG...] starts scripts/run.sh (what make run does)
# with DIR as its folder and ARGs for shoal serve, on free ports of
# 127.0.0.1, logging to DIR/run.log; it sets
# pid, gport and hport, and returns once run.sh says it is ready (after
# setting up, importing and training: minutes on a fresh machine). It
# returns 1 if run.sh exits first or is not ready within 10 minutes.
start_platform() {
	read -r gport hport < <(free_ports 2)
	SHOAL_RUN_DIR=$1 SHOAL_GRPC_LISTEN_ADDRESS=127.0.0.1:$gport SHOAL_HTTP_LISTEN_ADDRESS=127.0.0.1:$hport \
		"$(dirname "${BASH_SOURCE[0]}")/run.sh" "${@:2}" >"$1/run.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 1200); do
		grep -q '^run: ready' "$1/run.log" && return 0
		kill -0 "$pid" 2>/dev/null || { echo "scripts/run.sh exited before the platform was ready" >&2; return 1; }
		sleep 0.5
	done
	echo "scripts/run.sh: not ready within 10 minutes" >&2
	return 1
}

# note_scheduler warns when the kernel schedules by session (autogroup):
# then a benchmark's nice value only ranks it against its own session, and
# work niced to 19 in another session still takes half the cores from it.
note_scheduler() {
	if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] && [ "$(cut -d' ' -f1 /proc/loadavg | cut -d. -f1)" -ge 1 ]; then
		echo "$1: the kernel shares the cores between sessions whatever their nice values (kernel.sched_autogroup_enabled=1) and the load average is $(cut -d' ' -f1 /proc/loadavg): other work will move the figures; sysctl -w kernel.sched_autogroup_enabled=0 lets nice rank it below a benchmark" >&2
	fi
}

# confine_cpu PID CORES holds process PID (all its threads, and those it
# starts later) to CORES cores of CPU time with a CFS quota in a cgroup of
# its own (cgroup v2's cpu.max, else v1's cpu controller), in 10 ms
# periods so that a throttled server waits at most a few milliseconds.
# A benchmark whose load generator shares the machine confines the server
# so that what the generator spends comes from the cores left over, not
# from the server: as if the generator ran on a machine of its own. It
# returns 1, saying why, when the process cannot be confined (not root,
# no cpu controller); CORES 0 leaves the process as it is.
confine_cpu() {
	local target=$1 cores=$2 period=10000 quota dir
	[ "$cores" = 0 ] && return 0
	quota=$(python3 -c 'import sys; print(int(float(sys.argv[1]) * int(sys.argv[2])))' "$cores" "$period")
	if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
		dir=/sys/fs/cgroup/shoal-bench-$target
		grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
		mkdir -p "$dir" 2>/dev/null &&
			echo "$quota $period" >"$dir/cpu.max" 2>/dev/null &&
			echo "$target" >"$dir/cgroup.procs" 2>/dev/null && return 0
	elif [ -d /sys/fs/cgroup/cpu ]; then
		dir=/sys/fs/cgroup/cpu/shoal-bench-$target
		mkdir -p "$dir" 2>/dev/null &&
			echo "$period" >"$dir/cpu.cfs_period_us" 2>/dev/null &&
			echo "$quota" >"$dir/cpu.cfs_quota_us" 2>/dev/null &&
			echo "$target" >"$dir/cgroup.procs" 2>/dev/null && return 0
	fi
	echo "cannot confine process $target to $cores cores: it needs root and a cgroup cpu controller (/sys/fs/cgroup)" >&2
	return 1
}
