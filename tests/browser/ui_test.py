"""Real-browser test of the web UI: starts a cluster (tests/integration/harness.py), submits an
endless job with checkpoints over REST, then runs ui_test.js (puppeteer-core driving Debian's
chromium headless). Needs `npm ci --prefix tests/browser` (deploy/test.sh --all does it) and
chromium (deploy/install-deps.sh --browser). Screenshots: $WEIR_TEST_OUT (default
build/test-output/browser). It runs twice: on a plain cluster, and on a secure one (HTTPS, the
bearer token typed into the UI's prompt)."""
import base64
import hashlib
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import BUILD, Cluster, test_failed  # noqa: E402

JOB = """
name: ui-test
max_parallelism: 16
checkpointing: {interval: 1s}
vertices:
  - id: events
    type: datagen
    parallelism: 2
    config:
      rows_per_second: 2000
      fields:
        - {name: user, expr: "concat('user-', id % 50)"}
        - {name: amount, expr: "double(id % 1000) / 10"}
  - id: big
    type: filter
    parallelism: 2
    config: {where: "amount >= 20"}
  - id: per-user
    type: keyed_aggregate
    parallelism: 2
    config:
      key: [user]
      aggregations:
        - {fn: count, as: orders}
        - {fn: sum, field: amount, as: revenue}
  - id: sink
    type: blackhole
    parallelism: 2
edges:
  - {from: events, to: big}
  - {from: big, to: per-user, partition: hash, key: [user]}
  - {from: per-user, to: sink}
"""


def spki_sha256(cert):
    """The base64 SHA-256 of a certificate's public key (chromium's
    --ignore-certificate-errors-spki-list), with openssl."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True,
                         capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class BrowserUiTest(unittest.TestCase):
    def setUp(self):
        if not os.path.isdir(os.path.join(HERE, "node_modules", "puppeteer-core")):
            self.fail("puppeteer-core is not installed: run npm ci --prefix tests/browser")
        self.cluster = None

    def tearDown(self):
        if self.cluster:
            self.cluster.cleanup(dump_logs=test_failed(self))

    def run_ui(self, secure):
        self.cluster = Cluster(taskmanagers=2, slots=2, secure=secure)
        status, body, _ = self.cluster.rest("POST", "/jobs", JOB)
        self.assertEqual(status, 200, body)
        job_id = body["jobid"]
        out = os.environ.get("WEIR_TEST_OUT", os.path.join(BUILD, "test-output", "browser"))
        if secure:
            out = os.path.join(out, "secure")
        env = dict(os.environ, WEIR_UI_URL=self.cluster.rest_url, WEIR_JOB_ID=job_id,
                   WEIR_TEST_OUT=out)
        if secure:
            env["WEIR_TOKEN"] = self.cluster.rest_headers["Authorization"].split(" ", 1)[1]
            env["WEIR_SPKI"] = spki_sha256(os.path.join(self.cluster.certs, "jobmanager.pem"))
        r = subprocess.run(["node", os.path.join(HERE, "ui_test.js")], env=env, timeout=240,
                           capture_output=True, text=True)
        sys.stderr.write(r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_overview_job_graph_and_checkpoints_in_chromium(self):
        self.run_ui(secure=False)

    def test_the_same_over_https_with_the_token_on_a_secure_cluster(self):
        self.assertTrue(self.run_ui(secure=True).count("secure: "), "the secure run must say so")


if __name__ == "__main__":
    unittest.main()
