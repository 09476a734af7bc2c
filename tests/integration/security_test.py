"""A secure cluster (docs/security.md) with real processes: mutual TLS between the job manager
and the task managers, the CLI with the CA and a bearer token, the REST API with the token.
Refused: a CLI without TLS, without the token, with a wrong token or trusting another CA; a task
manager without a certificate or with one of another CA; a caller of the task manager service
without a client certificate; REST calls without the token, in plaintext or from a client
that trusts another CA (REST is HTTPS); a non-loopback address without security. A job runs end to end on the secure cluster."""
import base64
import json
import os
import ssl
import subprocess
import unittest
import urllib.error
import urllib.request

from harness import CLI_BIN, GEN_CERTS, JM_BIN, TM_BIN, Cluster, test_failed, wait_for

JOB = """
name: secure
checkpointing: {interval: 300ms}
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 20000, rows_per_second: 20000, fields: [{name: k, expr: "id % 7"}]}}
  - {id: count, type: keyed_aggregate, parallelism: 2, config: {key: [k], aggregations: [{fn: count, as: n}], emit: final}}
  - {id: out, type: file, parallelism: 1, config: {path: OUT}}
edges:
  - {from: gen, to: count, partition: hash, key: [k]}
  - {from: count, to: out, partition: rebalance}
"""


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(taskmanagers=2, slots=2, secure=True)
        cls.other = os.path.join(cls.cluster.dir, "other-ca")
        subprocess.run([GEN_CERTS, cls.other], check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup(dump_logs=getattr(cls, "failed", False))

    def tearDown(self):
        if test_failed(self):
            type(self).failed = True

    def weir(self, *args, jm=None):
        return subprocess.run([CLI_BIN, "-m", jm or self.cluster.jm, *args], capture_output=True,
                              text=True, timeout=60)

    def test_cli_needs_the_ca_and_the_token(self):
        c = self.cluster
        self.assertEqual(self.weir("list").returncode, 3)  # plaintext to a TLS server
        r = self.weir("--tls-ca", f"{c.certs}/ca.pem", "list")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("a bearer token is required", r.stderr)
        wrong = os.path.join(c.dir, "wrong-token")
        with open(wrong, "w") as f:
            f.write("not-the-token\n")
        r = self.weir("--tls-ca", f"{c.certs}/ca.pem", "--token-file", wrong, "list")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("the bearer token is wrong", r.stderr)
        r = self.weir("--tls-ca", f"{self.other}/ca.pem", "--token-file", f"{c.certs}/token", "list")
        self.assertEqual(r.returncode, 3, r.stderr)  # the server's certificate is not trusted
        self.assertIn("certificate verify failed", r.stderr)
        # The cluster config works as well as the flags.
        r = self.weir("--config", c.jm_config, "taskmanagers", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count('"tm_id"'), 2)

    def test_task_managers_need_a_certificate_of_the_cluster(self):
        c = self.cluster
        bad = os.path.join(c.dir, "tm-other-ca.yaml")
        with open(bad, "w") as f:
            f.write(f"security:\n  tls: {{cert: {self.other}/taskmanager.pem, "
                    f"key: {self.other}/taskmanager.key, ca: {self.other}/ca.pem}}\n")
        procs = []
        try:
            for name, extra in (("intruder-plain", []), ("intruder-other-ca", ["--config", bad])):
                log = open(os.path.join(c.dir, f"{name}.log"), "w")
                procs.append((subprocess.Popen([TM_BIN, "--jobmanager", c.jm, "--id", name, *extra],
                                               stdout=log, stderr=subprocess.STDOUT), log))
            def both_tried():
                logs = [open(os.path.join(c.dir, f"{n}.log")).read()
                        for n in ("intruder-plain", "intruder-other-ca")]
                return all("registration with job manager" in l for l in logs)
            wait_for(both_tried, 20, "both intruders to try to register")
            ids = c.cli("taskmanagers", "--json", check=True).stdout
            self.assertNotIn("intruder", ids)
            self.assertEqual(ids.count('"tm_id"'), 2)
        finally:
            for p, log in procs:
                p.terminate()
                p.wait(10)
                log.close()

    def test_task_manager_service_requires_a_client_certificate(self):
        c = self.cluster
        import json
        tms = json.loads(c.cli("taskmanagers", "--json", check=True).stdout)["taskmanagers"]
        host, port = tms[0]["rpc_address"].rsplit(":", 1)
        # A gRPC client (the CLI) that trusts the CA but has no certificate of its own: the task
        # manager ends the TLS session, so the call never reaches a service (UNAVAILABLE, exit 3)
        # rather than failing inside it (the CLI's JobManagerService is UNIMPLEMENTED there).
        r = self.weir("--tls-ca", f"{c.certs}/ca.pem", "--token-file", f"{c.certs}/token", "list",
                      jm=f"{host}:{port}")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertNotIn("unimplemented", r.stderr.lower())
        # The job manager, which presents its certificate, deploys there: the cluster works
        # (test_a_job_runs_on_the_secure_cluster).

    def test_rest_needs_the_token(self):
        c = self.cluster
        status, body, headers = c.rest("GET", "/overview", headers={"Authorization": ""})
        self.assertEqual(status, 401, body)
        self.assertIn("bearer token", body["errors"][0])
        self.assertIn("Bearer", headers.get("WWW-Authenticate", ""))
        status, body, _ = c.rest("GET", "/metrics", headers={"Authorization": "Bearer nope"})
        self.assertEqual(status, 401, body)
        status, body, _ = c.rest("GET", "/overview")  # the harness sends the right token
        self.assertEqual(status, 200, body)
        self.assertEqual(body["taskmanagers"], 2)
        status, _, _ = c.rest("GET", "/", headers={"Authorization": ""})  # the UI's page itself
        self.assertEqual(status, 200)

    def test_task_manager_metrics_need_the_token(self):
        c = self.cluster
        tms = json.loads(c.cli("taskmanagers", "--json", check=True).stdout)["taskmanagers"]
        token = c.rest_headers["Authorization"].split(" ", 1)[1]
        ca = ssl.create_default_context(cafile=os.path.join(c.certs, "ca.pem"))
        for t in tms:
            url = f"https://{t['metrics_address']}/metrics"  # HTTPS with security.tls
            for auth in (None, "weir:wrong", "weir:"):
                req = urllib.request.Request(url)
                if auth is not None:
                    req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
                with self.assertRaises(urllib.error.HTTPError, msg=f"{url} with {auth}") as cm:
                    urllib.request.urlopen(req, timeout=10, context=ca)
                self.assertEqual(cm.exception.code, 401)
            req = urllib.request.Request(url)
            req.add_header("Authorization", "Basic " + base64.b64encode(f"prometheus:{token}".encode()).decode())
            with urllib.request.urlopen(req, timeout=10, context=ca) as r:
                self.assertIn("weir_process_", r.read().decode())
            # Not in plaintext: the token would cross the network in the clear.
            with self.assertRaises(Exception) as cm:
                urllib.request.urlopen(url.replace("https:", "http:"), timeout=10)
            self.assertNotIsInstance(cm.exception, urllib.error.HTTPError)

    def test_a_job_runs_on_the_secure_cluster(self):
        c = self.cluster
        out = os.path.join(c.dir, "out")
        job = c.cli("run", c.write_job("secure.yaml", JOB.replace("OUT", out)), check=True).stdout.strip()
        c.wait_state(job, "FINISHED", timeout=60)
        info = c.job(job)
        self.assertGreaterEqual(int(info["checkpoints"]["completed"]), 1)
        rows = []
        for name in os.listdir(out):
            with open(os.path.join(out, name)) as f:
                rows += [l for l in f if l.strip()]
        self.assertEqual(len(rows), 7)  # one final count per key

    def test_a_non_loopback_address_needs_security_or_insecure(self):
        # 10.255.255.1 is never bound: the check comes first, and with --insecure the bind fails.
        r = subprocess.run([JM_BIN, "--rpc-address", "10.255.255.1:0", "--rest-address", "off"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("refusing to serve on 10.255.255.1:0 (not loopback) without security.tls",
                      r.stdout + r.stderr)
        r = subprocess.run([JM_BIN, "--rpc-address", "10.255.255.1:0", "--rest-address", "off",
                            "--insecure"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("WITHOUT TLS or a token", r.stdout + r.stderr)
        self.assertIn("cannot listen on 10.255.255.1:0", r.stdout + r.stderr)
        # Secure, REST off loopback: allowed (it is HTTPS); here the bind fails.
        r = subprocess.run([JM_BIN, "--config", self.cluster.jm_config, "--rpc-address",
                            "127.0.0.1:0", "--rest-address", "10.255.255.1:0"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("refusing", r.stdout + r.stderr)
        self.assertIn("cannot serve HTTPS on 10.255.255.1:0", r.stdout + r.stderr)

    def test_rest_is_https_only_with_the_clusters_certificate(self):
        c = self.cluster
        self.assertTrue(c.rest_url.startswith("https://"), c.rest_url)
        port = int(c.rest_url.rsplit(":", 1)[1])
        # Plain HTTP on the HTTPS port gets no answer: the handshake fails, the connection closes.
        with self.assertRaises(Exception) as cm:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/overview", timeout=10)
        self.assertNotIsInstance(cm.exception, urllib.error.HTTPError)
        # A client that trusts another CA refuses the job manager's certificate.
        other = ssl.create_default_context(cafile=os.path.join(self.other, "ca.pem"))
        with self.assertRaises(urllib.error.URLError) as cm:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/overview", timeout=10, context=other)
        self.assertIsInstance(cm.exception.reason, ssl.SSLCertVerificationError)
        # The right CA, no token: TLS works, the API says 401; with the token, 200 (the harness).
        good = ssl.create_default_context(cafile=os.path.join(c.certs, "ca.pem"))
        req = urllib.request.Request(f"https://localhost:{port}/jobs")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10, context=good)
        self.assertEqual(cm.exception.code, 401)
        status, body, _ = c.rest("GET", "/jobs")
        self.assertEqual(status, 200, body)
        # A large answer arrives whole through the TLS front (the UI's script).
        status, text, _ = c.rest("GET", "/app.js")
        self.assertEqual(status, 200)
        self.assertGreater(len(text), 16384)


if __name__ == "__main__":
    unittest.main()
