#!/usr/bin/env bash
# Keeps one process alive: runs the command, and when it exits for any reason other than a
# stop request, starts it again after a short pause (what systemd's Restart=always does).
#   supervise.sh PIDFILE LOGFILE -- COMMAND [ARGS...]
# PIDFILE always holds the current child's pid (so `kill -9 $(cat PIDFILE)` kills the
# process, not the supervisor); SIGTERM to the supervisor stops the child and the supervisor.
set -u
pidfile="$1"; log="$2"; shift 3
child=0
stopping=0
on_term() {
  stopping=1
  [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null
}
trap on_term TERM INT
while [ "$stopping" = 0 ]; do
  "$@" >>"$log" 2>&1 </dev/null &
  child=$!
  echo "$child" >"$pidfile"
  wait "$child"
  rc=$?
  # `wait` returns early when a trapped signal arrives: wait for the child itself to end.
  while kill -0 "$child" 2>/dev/null; do wait "$child"; done
  [ "$stopping" = 1 ] && break
  echo "supervise: $(date '+%F %T') process exited ($rc); restarting in 0.5 s" >>"$log"
  sleep 0.5
done
rm -f "$pidfile"
