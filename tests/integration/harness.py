"""A real Weir cluster for integration tests: one weir-jobmanager and N weir-taskmanager
processes on 127.0.0.1 with ephemeral ports (gRPC and REST), in a temp dir, always stopped at
the end."""
import datetime
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

BUILD = os.environ.get("WEIR_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
JM_BIN = os.path.join(BUILD, "jobmanager/weir-jobmanager")
TM_BIN = os.path.join(BUILD, "taskmanager/weir-taskmanager")
CLI_BIN = os.path.join(BUILD, "cli/weir")
GEN_CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "gen-certs.sh")


def test_failed(testcase):
    """True iff `testcase` (a unittest.TestCase in its tearDown) has failed or errored."""
    result = getattr(testcase._outcome, "result", None)
    return bool(result) and any(t is testcase for t, _ in result.failures + result.errors)


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class ProcessCluster:
    """What every test cluster of real processes offers: `procs` (name -> Popen), `dir` (its
    logs and files), `jm` and `cli_args`; a subclass may wrap the CLI's command (cli_argv)."""

    log_dump_limit = None  # characters of each log written by cleanup(dump_logs=True)

    def cli_argv(self, argv):
        return argv

    def cli(self, *args, check=False, timeout=60):
        r = subprocess.run(self.cli_argv([CLI_BIN, "-m", self.jm, *self.cli_args, *args]),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"weir {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.pop(name)
        p.send_signal(sig)
        p.wait(10)

    def exited(self, name):
        """True once the process `name` has ended on its own (e.g. at a crash point)."""
        p = self.procs.get(name)
        return p is not None and p.poll() is not None

    def log(self, name):
        with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
            return f.read()

    def taskmanagers(self):
        r = self.cli("taskmanagers", "--json")
        if r.returncode != 0:
            return []
        return json.loads(r.stdout).get("taskmanagers", [])

    def job(self, job_id):
        return json.loads(self.cli("status", job_id, "--json", check=True).stdout)

    def wait_state(self, job_id, states, timeout=30):
        states = {states} if isinstance(states, str) else set(states)
        return wait_for(lambda: (lambda j: j if j["state"] in states else None)(self.job(job_id)),
                        timeout, f"job {job_id} to reach {states}")

    def write_job(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def stop(self):
        stop_processes(self.procs)

    def cleanup(self, dump_logs=False):
        self.stop()
        if dump_logs:
            dump_logs_of(self.dir, self.log, limit=self.log_dump_limit)
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster(ProcessCluster):
    def __init__(self, taskmanagers=2, slots=2, jm_args=(), tm_args=(), tm_env=None, secure=False):
        self.dir = tempfile.mkdtemp(prefix="weir-it-")
        self.procs = {}
        self.tm_args = list(tm_args)
        self.slots = slots
        port_file = os.path.join(self.dir, "jm.port")
        self.jm_args = list(jm_args)
        self.cli_args = []
        self.rest_headers = {}
        if secure:
            self._secure()
        self._spawn("jm", [JM_BIN, "--rpc-address", "127.0.0.1:0", "--port-file", port_file,
                           *self._rest_args(), *self.jm_args])
        port = wait_for(lambda: self._read_file(port_file), 10, "the job manager's port")
        self.jm = f"127.0.0.1:{port}"
        self._read_rest_port()
        for i in range(taskmanagers):
            self.start_tm(f"tm-{i + 1}", env=tm_env)
        wait_for(lambda: len(self.taskmanagers()) == taskmanagers, 10,
                 f"{taskmanagers} task managers to register")

    @staticmethod
    def _read_file(path):
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read().strip()

    def _rest_args(self):
        """The REST API on an ephemeral port (never the default 8081: tests run in parallel),
        unless the test chose its own --rest-address."""
        self.rest_port_file = os.path.join(self.dir, "jm.rest-port")
        if os.path.exists(self.rest_port_file):
            os.remove(self.rest_port_file)
        args = ["--rest-port-file", self.rest_port_file]
        if "--rest-address" not in self.jm_args:
            args += ["--rest-address", "127.0.0.1:0"]
        # Checkpoints and savepoints of jobs that name no directory go to this test's temp
        # dir, never the shared default under /tmp/weir.
        if "--checkpoint-dir" not in self.jm_args:
            args += ["--checkpoint-dir", os.path.join(self.dir, "checkpoints")]
        if "--savepoint-dir" not in self.jm_args:
            args += ["--savepoint-dir", os.path.join(self.dir, "savepoints")]
        return args

    def _read_rest_port(self):
        """Sets rest_url (http://127.0.0.1:PORT, https on a secure cluster) once the job manager
        wrote its REST port; None when REST is off."""
        port = wait_for(lambda: self._read_file(self.rest_port_file), 10, "the REST port")
        scheme = "https" if getattr(self, "certs", None) else "http"
        self.rest_url = f"{scheme}://127.0.0.1:{port}" if port != "0" else None

    def _spawn(self, name, argv, env=None):
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        with open(os.path.join(self.dir, f"{name}.log"), "ab") as log:
            self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=full_env)

    def restart_jm(self):
        """Starts the job manager again on the same port (after kill())."""
        self._spawn("jm", [JM_BIN, "--rpc-address", self.jm, *self._rest_args(), *self.jm_args])
        wait_for(lambda: self.cli("list").returncode == 0, 10, "the job manager to serve")
        self._read_rest_port()

    def start_tm(self, name, slots=None, env=None):
        self._spawn(name, [TM_BIN, "--jobmanager", self.jm, "--id", name, "--slots",
                           str(slots or self.slots), *self.tm_args], env=env)

    def _secure(self):
        """A secure cluster (docs/security.md): certificates and a token from deploy/gen-certs.sh,
        mutual TLS between the servers, the CLI with the CA and the token, REST with the token."""
        certs = os.path.join(self.dir, "certs")
        subprocess.run([GEN_CERTS, certs], check=True, capture_output=True)
        self.certs = certs

        def config(name, role):
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write("security:\n"
                        f"  tls: {{cert: {certs}/{role}.pem, key: {certs}/{role}.key, ca: {certs}/ca.pem}}\n"
                        f"  token_file: {certs}/token\n")
            return path
        self.jm_config = config("jm-secure.yaml", "jobmanager")
        self.tm_config = config("tm-secure.yaml", "taskmanager")
        self.jm_args += ["--config", self.jm_config]
        self.tm_args += ["--config", self.tm_config]
        self.cli_args = ["--tls-ca", f"{certs}/ca.pem", "--token-file", f"{certs}/token"]
        with open(f"{certs}/token") as f:
            self.rest_headers = {"Authorization": "Bearer " + f.read().strip()}

    def rest(self, method, path, body=None, headers=None, timeout=30):
        """One HTTP request to the REST API: (status, parsed JSON or text, response headers).
        `body`: str/bytes sent as is, anything else as JSON."""
        import urllib.error
        import urllib.request
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
        req = urllib.request.Request(self.rest_url + path, data=data, method=method,
                                     headers={**self.rest_headers, **(headers or {})})
        context = None
        if self.rest_url.startswith("https:"):  # trust the cluster's CA only
            import ssl
            context = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem"))
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
                status, raw, hdrs = r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, raw, hdrs = e.code, e.read(), dict(e.headers)
        ctype = hdrs.get("Content-Type", "")
        if ctype.startswith("application/json"):
            return status, json.loads(raw), hdrs
        return status, raw.decode(errors="replace"), hdrs

def stop_processes(procs):
    """Stops every process of the dict (name -> Popen) and empties it: SIGCONT (a stopped
    process cannot act on SIGTERM), SIGTERM, 10 s, then SIGKILL."""
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    procs.clear()


def dump_logs_of(directory, log, limit=None):
    """Writes every <name>.log of `directory` (read with log(name)) to stderr."""
    import sys
    for name in sorted(os.listdir(directory)):
        if name.endswith(".log"):
            text = log(name[:-4])
            sys.stderr.write(f"----- {name} -----\n{text[-limit:] if limit else text}\n")


def committed_rows(path):
    """Rows of every committed file below `path` (JSON lines), skipping hidden ('.' or '_')
    directories and files: staging, side outputs and success markers."""
    return [r for rows in rows_by_partition(path).values() for r in rows]


def marked_partitions(path, marker="_SUCCESS"):
    """Relative partition dirs below `path` holding `marker`. Read these before the rows: a
    marker follows all of its partition's rows, so rows read afterwards are complete (read the
    other way round, a commit between the two reads looks like an early marker)."""
    marked = set()
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        if marker in files:
            marked.add(os.path.relpath(root, path))
    return marked


PARQUET_READER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parquet",
                              "read_parquet.mjs")


def duckdb(sql):
    """DuckDB's rows for `sql` (tests/parquet/read_parquet.mjs, an independent Parquet reader,
    pinned by its package-lock.json; deploy/test.sh installs it), as dicts."""
    if not os.path.isdir(os.path.join(os.path.dirname(PARQUET_READER), "node_modules", "@duckdb")):
        raise AssertionError("DuckDB is not installed: npm ci --prefix tests/parquet")
    p = subprocess.run(["node", PARQUET_READER, "-"], input=sql, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"DuckDB failed: {p.stderr.strip()}")
    return [json.loads(line) for line in p.stdout.splitlines()]


def parquet_rows(files):
    """{file: [rows]} of Parquet files, read by DuckDB in one query."""
    if not files:
        return {}
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    out = {f: [] for f in files}
    for r in duckdb(f"SELECT * FROM read_parquet([{listed}], filename = true)"):
        out[r.pop("filename")].append(r)
    return out


def rows_by_partition(path):
    """{relative partition dir: [rows]} for committed files below `path`: JSON lines, or Parquet
    (*.parquet, read by DuckDB)."""
    out = {}
    parquet = {}
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        for name in files:
            if name.startswith((".", "_")):
                continue
            part = os.path.relpath(root, path)
            if name.endswith(".parquet"):
                parquet[os.path.join(root, name)] = part
                continue
            with open(os.path.join(root, name)) as fh:
                out.setdefault(part, []).extend(json.loads(line) for line in fh if line.strip())
    for f, rows in parquet_rows(sorted(parquet)).items():
        out.setdefault(parquet[f], []).extend(rows)
    return out


def jsonl_rows(path):
    """Rows of every *.jsonl file directly in `path` (the plain `file` sink's output)."""
    rows = []
    for f in sorted(glob.glob(os.path.join(path, "*.jsonl"))):
        with open(f) as fh:
            rows.extend(json.loads(line) for line in fh)
    return rows


def all_running(info):
    """The job (CLI status JSON) and every one of its subtasks are RUNNING."""
    return info["state"] == "RUNNING" and bool(info.get("subtasks")) and all(
        s["state"] == "RUNNING" for s in info["subtasks"])


def checkpoints(info, what="completed"):
    """A checkpoint count of the job: completed, failed or in_progress."""
    return int(info.get("checkpoints", {}).get(what, 0))


def partition_hour(part):
    """'dt=1970-01-03/hour=05[/...]' -> hours since the epoch (2 * 24 + 5)."""
    dt, hour = part.split("/")[:2]
    day = datetime.date.fromisoformat(dt.split("=")[1]) - datetime.date(1970, 1, 1)
    return day.days * 24 + int(hour.split("=")[1])
