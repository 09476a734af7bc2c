#!/usr/bin/env bash
# Resident memory of an idle task manager: starts weir-jobmanager and one weir-taskmanager on
# per-run loopback ports in a temp dir, waits 3 s, prints the task manager's VmRSS, and always
# stops both processes (trap EXIT).
#
# Usage: bench/idle_tm_rss.sh [BUILD_DIR]   (default ./build)
set -euo pipefail

build_dir="${1:-./build}"
jm_bin="$build_dir/jobmanager/weir-jobmanager"
tm_bin="$build_dir/taskmanager/weir-taskmanager"
for b in "$jm_bin" "$tm_bin"; do
  if [[ ! -x "$b" ]]; then
    echo "not found or not executable: $b (build first, or pass the build dir)" >&2
    exit 2
  fi
done

work="$(mktemp -d -t weir-idle-rss.XXXXXX)"
jm_pid=""
tm_pid=""

stop() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop "$tm_pid"
  stop "$jm_pid"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port for the job manager (the task manager's ports are ephemeral: port 0).
jm_port="$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')"
jm_addr="127.0.0.1:$jm_port"

"$jm_bin" --rpc-address "$jm_addr" --rest-address 127.0.0.1:0 >"$work/jm.log" 2>&1 &
jm_pid=$!
"$tm_bin" --jobmanager "$jm_addr" --rpc-address 127.0.0.1:0 --data-host 127.0.0.1 \
  --data-port 0 >"$work/tm.log" 2>&1 &
tm_pid=$!

sleep 3

for name in jm tm; do
  pid_var="${name}_pid"
  if ! kill -0 "${!pid_var}" 2>/dev/null; then
    echo "weir-$name exited early; its log:" >&2
    cat "$work/$name.log" >&2
    exit 1
  fi
done

rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$tm_pid/status")"
jm_rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$jm_pid/status")"
threads="$(awk '/^Threads:/ {print $2}' "/proc/$tm_pid/status")"
if grep -q "registered with job manager" "$work/tm.log"; then
  registered=yes
else
  registered=no
fi

echo "idle weir-taskmanager VmRSS: ${rss_kb} kB ($((rss_kb / 1024)) MiB), threads: $threads," \
  "registered: $registered"
echo "(weir-jobmanager VmRSS: ${jm_rss_kb} kB, job manager at $jm_addr)"
