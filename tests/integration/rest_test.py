"""The job manager's REST API (docs/rest-api.md) against a real cluster: every GET endpoint on a
running job, submit (YAML and JSON), cancel, savepoint, stop with a savepoint and resubmit from
it; bad requests get a 4xx with {"errors": [...]} naming what is wrong and the server lives on;
the web UI's files and Debian's d3 and Chart.js are served, nothing outside their roots."""
import http.client
import json
import os
import random
import socket
import subprocess
import unittest
import urllib.parse

from harness import JM_BIN, Cluster, test_failed, wait_for

JOB_YAML = """
name: rest-test
max_parallelism: 16
checkpointing: {interval: 500ms}
vertices:
  - id: events
    type: datagen
    parallelism: 2
    config:
      rows_per_second: 200
      fields:
        - {name: user, expr: "concat('user-', id % 10)"}
        - {name: amount, expr: "double(id % 100)"}
  - id: big
    type: filter
    parallelism: 2
    config: {where: "amount >= 10"}
  - id: per-user
    type: keyed_aggregate
    parallelism: 2
    config:
      key: [user]
      aggregations:
        - {fn: count, as: orders}
  - id: sink
    type: blackhole
    parallelism: 2
edges:
  - {from: events, to: big}
  - {from: big, to: per-user, partition: hash, key: [user]}
  - {from: per-user, to: sink}
"""

JOB_JSON = {
    "name": "rest-test-json",
    "vertices": [
        {"id": "gen", "type": "datagen", "parallelism": 1,
         "config": {"rows_per_second": 50, "fields": [{"name": "x", "expr": "id"}]}},
        {"id": "out", "type": "blackhole", "parallelism": 1},
    ],
    "edges": [{"from": "gen", "to": "out"}],
}


class RestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(taskmanagers=2, slots=4)
        cls.sp_dir = os.path.join(cls.cluster.dir, "savepoints")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup(dump_logs=getattr(cls, "failed", False))

    def tearDown(self):
        if test_failed(self):
            type(self).failed = True

    # ------------------------------------------------------------------ helpers
    def rest(self, method, path, body=None, headers=None):
        return self.cluster.rest(method, path, body, headers)

    def get(self, path):
        status, body, _ = self.rest("GET", path)
        self.assertEqual(status, 200, f"GET {path}: {body}")
        return body

    def assert_error(self, status, body, want_status, words):
        self.assertEqual(status, want_status, body)
        self.assertIsInstance(body, dict, body)
        self.assertIn("errors", body)
        self.assertTrue(any(words in e for e in body["errors"]), f"{words!r} not in {body}")

    def submit(self, text, query="", content_type="application/yaml"):
        status, body, _ = self.rest("POST", "/jobs" + query, text, {"Content-Type": content_type})
        self.assertEqual(status, 200, body)
        return body["jobid"]

    def wait_job(self, job_id, states, timeout=60):
        states = {states} if isinstance(states, str) else set(states)
        return wait_for(lambda: (lambda j: j if j["state"] in states else None)(
            self.get(f"/jobs/{job_id}")), timeout, f"job {job_id} to reach {states}", 0.2)

    def wait_savepoint(self, job_id, rid, timeout=120):
        def done():
            s = self.get(f"/jobs/{job_id}/savepoints/{rid}")
            return s if s["status"]["id"] == "COMPLETED" else None
        s = wait_for(done, timeout, f"savepoint request {rid}", 0.2)
        self.assertIn("location", s["operation"], s)
        return s["operation"]["location"]

    # ------------------------------------------------------------------ tests
    def test_get_endpoints_on_a_running_job(self):
        job_id = self.submit(JOB_YAML)
        try:
            self.wait_job(job_id, "RUNNING")
            o = self.get("/overview")
            self.assertEqual(o["taskmanagers"], 2)
            self.assertEqual(o["slots-total"], 8)
            self.assertLessEqual(o["slots-available"], 6)
            self.assertGreaterEqual(o["jobs-running"], 1)
            for k in ("jobs-finished", "jobs-cancelled", "jobs-failed"):
                self.assertIn(k, o)

            jobs = self.get("/jobs")["jobs"]
            self.assertIn({"id": job_id, "status": "RUNNING"}, jobs)
            ov = [j for j in self.get("/jobs/overview")["jobs"] if j["jid"] == job_id]
            self.assertEqual(len(ov), 1)
            self.assertEqual(ov[0]["name"], "rest-test")

            job = self.get(f"/jobs/{job_id}")
            self.assertEqual(job["jid"], job_id)
            self.assertEqual(job["state"], "RUNNING")
            self.assertTrue(job["vertices"], job)
            for v in job["vertices"]:
                for k in ("id", "name", "parallelism", "status", "metrics"):
                    self.assertIn(k, v)
                for k in ("read-records", "write-records", "read-records-per-second",
                          "write-records-per-second", "busy-ratio", "backpressured-ratio"):
                    self.assertIn(k, v["metrics"])
            self.assertIn("nodes", job["plan"])
            nodes = {n["id"]: n for n in job["plan"]["nodes"]}
            if job["plan"]["nodes"] and any(n["inputs"] for n in job["plan"]["nodes"]):
                strategies = {i["ship_strategy"] for n in nodes.values() for i in n["inputs"]}
                self.assertIn("HASH", strategies)

            vid = job["vertices"][0]["id"]
            v = self.get(f"/jobs/{job_id}/vertices/{urllib.parse.quote(vid)}")
            self.assertEqual(v["id"], vid)
            self.assertEqual(len(v["subtasks"]), 2)
            self.assertIn("metrics", v["subtasks"][0])
            self.assertIn("taskmanager-id", v["subtasks"][0])
            self.assertEqual(len(self.get(f"/jobs/{job_id}/vertices")["vertices"]),
                             len(job["vertices"]))

            ck = wait_for(lambda: (lambda c: c if c["counts"]["completed"] >= 1 else None)(
                self.get(f"/jobs/{job_id}/checkpoints")), 30, "a completed checkpoint", 0.2)
            for k in ("restored", "total", "in_progress", "completed", "failed"):
                self.assertIn(k, ck["counts"])
            self.assertTrue(ck["history"], ck)
            self.assertEqual(ck["history"][0]["status"], "COMPLETED")
            self.assertIsNotNone(ck["latest"]["completed"])
            for k in ("id", "trigger_timestamp", "end_to_end_duration", "state_size",
                      "checkpointed_size", "external_path"):
                self.assertIn(k, ck["history"][0])
            self.assertIn("reconciliation", ck)

            ex = self.get(f"/jobs/{job_id}/exceptions")
            self.assertIn("root-exception", ex)
            self.assertEqual(ex["exceptionHistory"]["entries"], [])

            self.assertIsInstance(self.get(f"/jobs/{job_id}/throughput")["samples"], list)

            tms = self.get("/taskmanagers")["taskmanagers"]
            self.assertEqual(len(tms), 2)
            self.assertEqual(tms[0]["slotsNumber"], 4)
            tm = self.get(f"/taskmanagers/{tms[0]['id']}")
            self.assertEqual(tm["id"], tms[0]["id"])
            self.assert_error(*self.rest("GET", "/taskmanagers/nope")[:2], 404, "nope")

            cfg = self.get("/config")
            self.assertIn("refresh-interval", cfg)
            self.assertEqual(cfg["rpc-address"], "127.0.0.1:0")
            status, body, headers = self.rest("GET", "/metrics")
            self.assertEqual(status, 200, body)
            self.assertIn("text/plain", headers["Content-Type"])
            self.assertIn("# TYPE", body)
        finally:
            self.rest("PATCH", f"/jobs/{job_id}?mode=cancel")

    def test_submit_json_then_cancel(self):
        job_id = self.submit(json.dumps(JOB_JSON), content_type="application/json")
        self.wait_job(job_id, "RUNNING")
        status, body, _ = self.rest("PATCH", f"/jobs/{job_id}?mode=cancel")
        self.assertEqual(status, 202, body)
        self.wait_job(job_id, "CANCELED")
        # Cancelling again: the job is already over.
        self.assert_error(*self.rest("POST", f"/jobs/{job_id}/cancel")[:2], 409, "already CANCELED")

    def test_savepoint_stop_and_resubmit_from_it(self):
        job_id = self.submit(JOB_YAML)
        self.wait_job(job_id, "RUNNING")
        status, body, _ = self.rest("POST", f"/jobs/{job_id}/savepoints",
                                    {"target-directory": self.sp_dir, "cancel-job": False})
        self.assertEqual(status, 202, body)
        sp = self.wait_savepoint(job_id, body["request-id"])
        self.assertTrue(os.path.exists(os.path.join(sp, "_metadata")), sp)
        self.assertEqual(self.get(f"/jobs/{job_id}")["state"], "RUNNING")

        status, body, _ = self.rest("POST", f"/jobs/{job_id}/stop", {"targetDirectory": self.sp_dir})
        self.assertEqual(status, 202, body)
        stop_sp = self.wait_savepoint(job_id, body["request-id"])
        self.assertTrue(os.path.exists(os.path.join(stop_sp, "_metadata")), stop_sp)
        self.wait_job(job_id, "FINISHED")
        ck = self.get(f"/jobs/{job_id}/checkpoints")
        self.assertEqual(ck["latest"]["savepoint"]["external_path"], stop_sp)

        query = "?" + urllib.parse.urlencode({"savepointPath": stop_sp,
                                              "allowNonRestoredState": "false"})
        again = self.submit(JOB_YAML, query)
        job = self.wait_job(again, "RUNNING")
        self.assertIn(stop_sp, job["restored-from"])
        self.assertEqual(self.get(f"/jobs/{again}/checkpoints")["counts"]["restored"], 1)
        self.assertEqual(self.rest("PATCH", f"/jobs/{again}")[0], 202)  # mode defaults to cancel
        self.wait_job(again, "CANCELED")

    def test_bad_requests_get_4xx_naming_what_is_wrong(self):
        # Job files.
        bad_key = JOB_YAML.replace("type: blackhole", "typo: blackhole")
        self.assert_error(*self.rest("POST", "/jobs", bad_key)[:2], 400, "typo")
        unknown_op = JOB_YAML.replace("type: blackhole", "type: nosuchsink")
        self.assert_error(*self.rest("POST", "/jobs", unknown_op)[:2], 400, "nosuchsink")
        self.assert_error(*self.rest("POST", "/jobs", "vertices: [1, 2")[:2], 400, "job file")
        self.assert_error(*self.rest("POST", "/jobs", "")[:2], 400, "empty")
        self.assert_error(*self.rest("POST", "/jobs?allowNonRestoredState=maybe", JOB_YAML)[:2],
                          400, "allowNonRestoredState")
        self.assert_error(*self.rest("POST", "/jobs?savepointPath=/nonexistent/sp", JOB_YAML)[:2],
                          400, "/nonexistent/sp")
        # Unknown job, vertex, savepoint request, path.
        self.assert_error(*self.rest("GET", "/jobs/no-such-job")[:2], 404, "no-such-job")
        self.assert_error(*self.rest("GET", "/jobs/no-such-job/checkpoints")[:2], 404, "no-such-job")
        self.assert_error(*self.rest("PATCH", "/jobs/no-such-job?mode=cancel")[:2], 404, "no-such-job")
        self.assert_error(*self.rest("POST", "/jobs/no-such-job/savepoints", {})[:2], 404,
                          "no-such-job")
        self.assert_error(*self.rest("GET", "/jobs/x/nonsense/deeper")[:2], 404, "not found")
        self.assert_error(*self.rest("GET", "/overview/more")[:2], 404, "not found")
        # Wrong methods.
        status, body, headers = self.rest("DELETE", "/jobs")
        self.assert_error(status, body, 405, "DELETE")
        self.assertEqual(headers.get("Allow"), "GET, POST")
        self.assert_error(*self.rest("PUT", "/overview", "x")[:2], 405, "PUT")
        self.assert_error(*self.rest("GET", "/jobs/x/stop")[:2], 405, "POST")
        self.assert_error(*self.rest("POST", "/taskmanagers", "x")[:2], 405, "GET")
        # Bad JSON bodies, on a real job.
        job_id = self.submit(json.dumps(JOB_JSON), content_type="application/json")
        try:
            self.wait_job(job_id, "RUNNING")
            sp = f"/jobs/{job_id}/savepoints"
            self.assert_error(*self.rest("POST", sp, "{not json")[:2], 400, "not a JSON object")
            self.assert_error(*self.rest("POST", sp, "[1, 2]")[:2], 400, "not a JSON object")
            self.assert_error(*self.rest("POST", sp, {"target_directory": "/tmp"})[:2], 400,
                              "unknown field 'target_directory'")
            self.assert_error(*self.rest("POST", sp, {"cancel-job": "yes"})[:2], 400, "cancel-job")
            self.assert_error(*self.rest("POST", sp, {"target-directory": 5})[:2], 400,
                              "target-directory")
            self.assert_error(*self.rest("POST", f"/jobs/{job_id}/stop", {"drain": True})[:2],
                              400, "drain")
            self.assert_error(*self.rest("PATCH", f"/jobs/{job_id}?mode=explode")[:2], 400, "mode")
            self.assert_error(*self.rest("GET", f"/jobs/{job_id}/savepoints/feedbeef")[:2], 404,
                              "feedbeef")
            self.assert_error(*self.rest("GET", f"/jobs/{job_id}/vertices/nope")[:2], 404, "nope")
            # Oversized body: 413, and the job manager lives on.
            big = "#" * (5 << 20)
            self.assert_error(*self.rest("POST", "/jobs", big)[:2], 413, "larger than")
            self.assertEqual(self.get(f"/jobs/{job_id}")["state"], "RUNNING")
        finally:
            self.rest("PATCH", f"/jobs/{job_id}?mode=cancel")
        self.assertIsNone(self.cluster.procs["jm"].poll(), "the job manager died")

    def test_rest_port_in_use_stops_the_start_naming_the_address(self):
        taken = self.cluster.rest_url[len("http://"):]
        r = subprocess.run([JM_BIN, "--rpc-address", "127.0.0.1:0", "--rest-address", taken],
                           capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"cannot serve REST on {taken}", r.stdout + r.stderr)

    def raw_get(self, path):
        host, port = self.cluster.rest_url[len("http://"):].split(":")
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            c.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)
            c.endheaders()
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace"), r.getheader("Content-Type", "")
        finally:
            c.close()

    def test_random_hostile_requests_never_crash_the_server(self):
        # A seeded fuzz over the wire: random methods, paths (API words, traversal, escapes,
        # binary), query strings and bodies (job-file-like, JSON-like, garbage), and raw bytes
        # that are not HTTP at all. Every HTTP answer is a status < 500 with a JSON error for
        # the API; the job manager lives on and still answers.
        rng = random.Random(11)
        host, port = self.cluster.rest_url[len("http://"):].split(":")
        words = ["jobs", "overview", "vertices", "checkpoints", "exceptions", "taskmanagers",
                 "config", "savepoints", "stop", "cancel", "throughput", "metrics", "lib", "..",
                 "%2e%2e", "%00", "x" * 300, "0" * 17, "\u00e9", "web", "index.html"]
        bodies = [b"", b"{", b"[]", b"null", b'{"target-directory": 5}', b'{"drain": "yes"}',
                  b"name: x\nvertices: [", b"vertices: {}", bytes(rng.randrange(256) for _ in range(300)),
                  json.dumps({"a": [1] * 1000}).encode(), b"\xff\xfe" * 50]
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "BREW"]
        for i in range(600):
            path = "/" + "/".join(rng.choice(words) for _ in range(rng.randrange(1, 5)))
            if rng.random() < 0.3:
                path += "?" + "&".join(f"{rng.choice(['mode', 'savepointPath', 'allowNonRestoredState', 'q'])}="
                                       f"{urllib.parse.quote(rng.choice(words))}" for _ in range(rng.randrange(1, 3)))
            method = rng.choice(methods)
            body = rng.choice(bodies) if method in ("POST", "PATCH", "PUT") else None
            c = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                c.putrequest(method, urllib.parse.quote(path, safe="/?&=%"), skip_accept_encoding=True)
                if body is not None:
                    c.putheader("Content-Length", str(len(body)))
                c.endheaders(body)
                r = c.getresponse()
                data = r.read()
                self.assertLess(r.status, 500, f"{method} {path}: {r.status} {data[:200]!r}")
                if r.status >= 400 and method != "HEAD" and not path.startswith(("/lib", "/web")):
                    try:
                        doc = json.loads(data)
                    except ValueError:
                        self.fail(f"{method} {path}: {r.status} not JSON: {data[:200]!r}")
                    self.assertIn("errors", doc, f"{method} {path}")
            finally:
                c.close()
        for i in range(50):  # not HTTP
            with socket.create_connection((host, int(port)), timeout=10) as s:
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000))) + b"\r\n\r\n")
                try:
                    s.recv(4096)
                except OSError:
                    pass
        self.assertEqual(self.get("/overview")["taskmanagers"], 2)
        self.assertIsNone(self.cluster.procs["jm"].poll(), "the job manager is alive")

    def test_ui_and_libraries_served_and_no_traversal(self):
        status, body, ctype = self.raw_get("/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", ctype)
        self.assertIn("app.js", body)
        status, body, ctype = self.raw_get("/app.js")
        self.assertEqual(status, 200)
        self.assertIn("javascript", ctype)
        status, body, _ = self.raw_get("/lib/d3.js")
        self.assertEqual(status, 200)
        self.assertIn("d3", body[:2000])
        status, body, _ = self.raw_get("/lib/chart.min.js")
        self.assertEqual(status, 200)
        self.assertIn("Chart", body[:5000])
        for path in ["/../etc/passwd", "/../../../../etc/passwd", "/lib/../../../etc/passwd",
                     "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd",
                     "/lib/..%2f..%2f..%2f..%2fetc%2fpasswd", "/lib/passwd", "/.git/config",
                     "/ui/../CMakeLists.txt", "//etc/passwd"]:
            with self.subTest(path=path):
                status, body, _ = self.raw_get(path)
                self.assertGreaterEqual(status, 400, f"{path}: {status}")
                self.assertLess(status, 500, f"{path}: {status}")
                self.assertNotIn("root:", body)
                self.assertNotIn("cmake_minimum_required", body)


if __name__ == "__main__":
    unittest.main()
