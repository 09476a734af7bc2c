#!/usr/bin/env bash
# Starts a cluster: the job manager here, and task managers here or on the hosts of the workers
# file. Logs and pid files under $WEIR_RUN_DIR (default ./run). Waits until every task manager
# has registered.
#   deploy/start-cluster.sh [N] [--keep-alive] [--secure] [--insecure]
# N: N task managers on this host (127.0.0.1), ignoring the workers file. Without N: one task
# manager per line of the workers file ($WEIR_WORKERS, default deploy/workers: `host[:slots]`
# per line; the default file lists localhost twice). localhost / 127.0.0.1 are started here;
# any other host over $WEIR_SSH (ssh in BatchMode) running deploy/taskmanager.sh of the same
# install path ($WEIR_HOME) there, its pid files and logs in $WEIR_RUN_DIR/hosts/<host>.
# With other hosts, set WEIR_JM_HOST to this host's name as they reach it: the job manager then
# listens on every interface, which needs --secure (mutual TLS and a token) or --insecure
# (trusted networks only). Checkpoint and HA directories must be shared by all hosts (NFS):
# docs/deployment.md, "Several hosts".
# --keep-alive (or WEIR_KEEP_ALIVE=1) restarts a task manager that dies, on every host.
# --secure: mutual TLS and a bearer token, with development certificates (docs/security.md).
# The job manager records jobs in $WEIR_RUN_DIR/ha, so a restarted one resumes them.
# See deploy/common.sh for the environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n=""
secure=0
insecure=0
for a in "$@"; do
  case "$a" in
    --keep-alive) export WEIR_KEEP_ALIVE=1 ;;
    --secure) secure=1 ;;
    --insecure) insecure=1 ;;
    [0-9]*) n="$a" ;;
    *) die "usage: $0 [N] [--keep-alive] [--secure] [--insecure]" ;;
  esac
done
check_binaries
mkdir -p "$WEIR_RUN_DIR/log"
if is_alive "$WEIR_RUN_DIR/jobmanager.pid"; then
  die "a job manager is already running (pid $(cat "$WEIR_RUN_DIR/jobmanager.pid")); deploy/stop-cluster.sh first"
fi
# The task managers: "host slots" lines.
if [ -n "$n" ]; then
  workers=""
  for _ in $(seq "$n"); do workers+="localhost "$'\n'; done
else
  workers="$(read_workers "$WEIR_WORKERS")" || exit 1
  [ -n "$workers" ] || die "$WEIR_WORKERS lists no task manager"
fi
remote=0
while read -r host _; do
  [ -z "$host" ] && continue
  is_local_host "$host" || remote=1
done <<<"$workers"
jm_args=(--rpc-address "$WEIR_JM")
if [ "$remote" = 1 ]; then
  is_local_host "$WEIR_JM_HOST" &&
    die "$WEIR_WORKERS lists other hosts: set WEIR_JM_HOST to this host's name or address as they reach it"
  [ "$secure" = 1 ] || [ "$insecure" = 1 ] ||
    die "other hosts reach the job manager over the network: pass --secure (mutual TLS and a token) or --insecure (a trusted network only)"
  jm_args+=(--rpc-bind "0.0.0.0:$WEIR_JM_PORT")
fi
[ "$insecure" = 1 ] && jm_args+=(--insecure)
if [ "$secure" = 1 ]; then
  mkdir -p "$WEIR_SECURE_DIR"
  # Certificates name every host others dial: the job manager's and the workers'.
  hosts="${WEIR_CERT_HOSTS:-} $WEIR_JM_HOST $(cut -d' ' -f1 <<<"$workers" | tr -d '[]' | sort -u | tr '\n' ' ')"
  WEIR_CERT_HOSTS="$hosts" make_secure_configs
else
  rm -f "$WEIR_SECURE_DIR/enabled"
  JM_CONFIG="$WEIR_CONFIG" TM_CONFIG="$WEIR_CONFIG"
  unset WEIR_TLS_CA WEIR_TOKEN_FILE
fi
nohup "$JM_BIN" --config "$JM_CONFIG" "${jm_args[@]}" --rest-address "$WEIR_REST" \
  --ha-dir "$WEIR_RUN_DIR/ha" >>"$WEIR_RUN_DIR/log/jobmanager.log" 2>&1 </dev/null &
echo $! >"$WEIR_RUN_DIR/jobmanager.pid"
echo "started job manager on $WEIR_JM (pid $!), log $WEIR_RUN_DIR/log/jobmanager.log"
for _ in $(seq 100); do
  "$CLI_BIN" -m "$WEIR_JM" taskmanagers >/dev/null 2>&1 && break
  is_alive "$WEIR_RUN_DIR/jobmanager.pid" || die "job manager exited; see $WEIR_RUN_DIR/log/jobmanager.log"
  sleep 0.1
done
# Remote hosts started, for stop-cluster.sh (even if the workers file changes meanwhile).
: >"$WEIR_RUN_DIR/remote-workers"
i=0
count=0
while read -r host slots; do
  [ -z "$host" ] && continue
  i=$((i + 1))
  count=$((count + 1))
  if is_local_host "$host"; then
    "$DEPLOY_DIR/taskmanager.sh" start "tm-$i" ${slots:+"$slots"}
  else
    # The same install path there; its own run directory (the install may be on NFS too).
    q() { printf '%q' "$1"; }
    cmd="cd $(q "$WEIR_HOME") && WEIR_RUN_DIR=$(q "$WEIR_RUN_DIR/hosts/$host") WEIR_SECURE_DIR=$(q "$WEIR_SECURE_DIR")"
    cmd+=" WEIR_BUILD_DIR=$(q "$WEIR_BUILD_DIR") WEIR_CONFIG=$(q "$WEIR_CONFIG") WEIR_JM_HOST=$(q "$WEIR_JM_HOST")"
    cmd+=" WEIR_JM_PORT=$(q "$WEIR_JM_PORT") WEIR_KEEP_ALIVE=${WEIR_KEEP_ALIVE:-0} WEIR_TM_HOST=$(q "$(tr -d '[]' <<<"$host")")"
    cmd+=" deploy/taskmanager.sh start tm-$i ${slots:-}"
    # shellcheck disable=SC2086  # WEIR_SSH is a command with options
    $WEIR_SSH "$host" "$cmd" </dev/null || die "cannot start task manager tm-$i on $host over ssh ($WEIR_SSH)"
    echo "$host tm-$i" >>"$WEIR_RUN_DIR/remote-workers"
  fi
done <<<"$workers"
for _ in $(seq 300); do
  registered=$("$CLI_BIN" -m "$WEIR_JM" taskmanagers --json 2>/dev/null | grep -c '"tm_id"' || true)
  [ "$registered" -ge "$count" ] && break
  sleep 0.1
done
"$CLI_BIN" -m "$WEIR_JM" taskmanagers
[ "$registered" -ge "$count" ] ||
  echo "weir: only $registered of $count task managers registered within 30 s; see their logs" >&2
if [ "$secure" = 1 ]; then
  echo "web UI and REST API: https://$WEIR_REST/ (docs/rest-api.md; the browser must trust $WEIR_TLS_CA)"
  echo "secure cluster: mutual TLS, bearer token. For the CLI and curl in your shell:"
  echo "  export WEIR_TLS_CA=$WEIR_TLS_CA WEIR_TOKEN_FILE=$WEIR_TOKEN_FILE"
  echo "  curl --cacert $WEIR_TLS_CA -H \"Authorization: Bearer \$(cat $WEIR_TOKEN_FILE)\" https://$WEIR_REST/overview"
else
  echo "web UI and REST API: http://$WEIR_REST/ (docs/rest-api.md)"
fi
