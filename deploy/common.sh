# Shared by the deploy scripts. Sourced, not run.
# Environment (all optional):
#   WEIR_HOME       repository root (default: the parent of this directory)
#   WEIR_BUILD_DIR  where the binaries are (default: $WEIR_HOME/build)
#   WEIR_RUN_DIR    logs and pid files (default: $WEIR_HOME/run)
#   WEIR_CONFIG     cluster config (default: $WEIR_HOME/deploy/weir.yaml)
#   WEIR_JM_PORT    job manager gRPC port (default: 6123)
#   WEIR_JM_HOST    the job manager's host as task managers dial it (default: 127.0.0.1; set
#                   it to this host's name when deploy/workers lists other hosts)
#   WEIR_REST_PORT  job manager REST API and web UI port (default: 8081)
#   WEIR_WORKERS    the workers file (default: $WEIR_HOME/deploy/workers)
#   WEIR_SSH        how to reach a worker host (default: ssh -o BatchMode=yes -o ConnectTimeout=10)
#   WEIR_TM_HOST    (set by start-cluster.sh on a worker) the host name a task manager advertises
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WEIR_HOME="${WEIR_HOME:-$(dirname "$DEPLOY_DIR")}"
WEIR_BUILD_DIR="${WEIR_BUILD_DIR:-$WEIR_HOME/build}"
WEIR_RUN_DIR="${WEIR_RUN_DIR:-$WEIR_HOME/run}"
WEIR_CONFIG="${WEIR_CONFIG:-$DEPLOY_DIR/weir.yaml}"
WEIR_JM_PORT="${WEIR_JM_PORT:-6123}"
WEIR_JM_HOST="${WEIR_JM_HOST:-127.0.0.1}"
WEIR_JM="$WEIR_JM_HOST:$WEIR_JM_PORT"
WEIR_WORKERS="${WEIR_WORKERS:-$DEPLOY_DIR/workers}"
WEIR_SSH="${WEIR_SSH:-ssh -o BatchMode=yes -o ConnectTimeout=10}"
WEIR_REST_PORT="${WEIR_REST_PORT:-8081}"
WEIR_REST="127.0.0.1:$WEIR_REST_PORT"
JM_BIN="$WEIR_BUILD_DIR/jobmanager/weir-jobmanager"
TM_BIN="$WEIR_BUILD_DIR/taskmanager/weir-taskmanager"
CLI_BIN="$WEIR_BUILD_DIR/cli/weir"

# A secure cluster (start-cluster.sh --secure, docs/security.md): a development CA, certificates
# and a token in $WEIR_SECURE_DIR/certs, and per-role configs (the cluster config plus a
# `security:` section). While it is on, every script (and the CLI it runs) uses them.
WEIR_SECURE_DIR="${WEIR_SECURE_DIR:-$WEIR_RUN_DIR/secure}"
JM_CONFIG="$WEIR_CONFIG"
TM_CONFIG="$WEIR_CONFIG"
if [ -f "$WEIR_SECURE_DIR/enabled" ]; then
  JM_CONFIG="$WEIR_SECURE_DIR/jobmanager.yaml"
  TM_CONFIG="$WEIR_SECURE_DIR/taskmanager.yaml"
  export WEIR_TLS_CA="$WEIR_SECURE_DIR/certs/ca.pem"
  export WEIR_TOKEN_FILE="$WEIR_SECURE_DIR/certs/token"
fi

# make_secure_configs: certificates (deploy/gen-certs.sh, kept if present) and the two configs.
make_secure_configs() {
  grep -q '^security:' "$WEIR_CONFIG" &&
    die "--secure writes its own security: section; $WEIR_CONFIG has one already"
  "$DEPLOY_DIR/gen-certs.sh" "$WEIR_SECURE_DIR/certs" jobmanager taskmanager >/dev/null
  local c="$WEIR_SECURE_DIR/certs" role
  for role in jobmanager taskmanager; do
    { cat "$WEIR_CONFIG"
      printf '\nsecurity:\n  tls: {cert: %s/%s.pem, key: %s/%s.key, ca: %s/ca.pem}\n' "$c" "$role" "$c" "$role" "$c"
      printf '  token_file: %s/token\n' "$c"
    } >"$WEIR_SECURE_DIR/$role.yaml"
  done
  touch "$WEIR_SECURE_DIR/enabled"
  JM_CONFIG="$WEIR_SECURE_DIR/jobmanager.yaml"
  TM_CONFIG="$WEIR_SECURE_DIR/taskmanager.yaml"
  export WEIR_TLS_CA="$c/ca.pem" WEIR_TOKEN_FILE="$c/token"
}

die() { echo "weir: $*" >&2; exit 1; }

# read_workers FILE: prints "host slots" per task manager of the workers file (one
# `host[:slots]` per line, as Flink's conf/workers; `#` starts a comment; blank lines are
# skipped; a host listed twice runs two task managers; slots empty: the config's default).
# Dies naming the file and line of anything else.
read_workers() {
  local file="$1" n=0 line host slots
  [ -f "$file" ] || die "workers file $file does not exist"
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line="${line%%#*}"
    line="$(sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"$line")"
    [ -z "$line" ] && continue
    if [[ "$line" =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:([0-9]+))?$ ]]; then
      host="${BASH_REMATCH[1]}" slots="${BASH_REMATCH[3]}"
    else
      die "$file line $n: '$line' is not host[:slots]"
    fi
    if [ -n "$slots" ] && { [ "$slots" -lt 1 ] || [ "$slots" -gt 4096 ]; }; then
      die "$file line $n: slots must be 1..4096, got $slots"
    fi
    echo "$host ${slots:-}"
  done <"$file"
}

# is_local_host HOST: started without ssh (localhost, 127.x.x.x, ::1).
is_local_host() {
  case "$1" in
    localhost | 127.* | "[::1]" | ::1) return 0 ;;
    *) return 1 ;;
  esac
}

check_binaries() {
  for b in "$JM_BIN" "$TM_BIN" "$CLI_BIN"; do
    [ -x "$b" ] || die "missing $b; build first (see README)"
  done
}

# is_alive PIDFILE: true iff the pid file names a live process.
is_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pid PIDFILE NAME: SIGTERM, wait up to 5 s, then SIGKILL; removes the pid file.
stop_pid() {
  local f="$1" name="$2" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name ($pid) did not stop in 5 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped $name ($pid)"
  fi
  rm -f "$f"
}
