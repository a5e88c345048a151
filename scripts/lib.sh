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
}
