"""What a job may do (docs/security-policy.md), against real processes: a forbidden Kafka
property is refused by the CLI and by the job manager before librdkafka could load anything; a
sink path outside security.allowed_paths is refused by the job manager (and by a task manager
with the policy, when the job manager has none); vertex ids such as ".." are refused.

A forged acknowledgement cannot be sent from here (no gRPC client in Python): it is covered by
tests/unit/job_manager_test.cc (ForgedAcknowledgementsAreRefusedAndDeleteNothing), which calls
the same JobManager::AcknowledgeCheckpoint the gRPC handler does."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import CLI_BIN, Cluster, test_failed, wait_for

KAFKA_JOB = """
name: kafka-plugin
vertices:
  - id: k
    type: kafka
    config:
      bootstrap: 127.0.0.1:1
      topics: [t]
      group_id: g
      properties: {{{prop}: "{value}"}}
  - {{id: out, type: blackhole}}
edges:
  - {{from: k, to: out}}
"""

FILE_JOB = """
name: files
vertices:
  - {{id: gen, type: datagen, config: {{total: 5, fields: [{{name: k, expr: "id"}}]}}}}
  - {{id: out, type: {sink}, config: {{path: "{path}"}}}}
edges:
  - {{from: gen, to: out}}
"""


def build_marker_library(d):
    """A shared library whose constructor creates <d>/loaded: proof that it was loaded. None
    when there is no C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None, None
    marker = os.path.join(d, "loaded")
    src = os.path.join(d, "plugin.c")
    with open(src, "w") as f:
        f.write('#include <stdio.h>\n'
                '__attribute__((constructor)) static void loaded(void) {\n'
                f'  FILE* f = fopen("{marker}", "w"); if (f) fclose(f);\n'
                '}\n'
                'int conf_init(void) { return 0; }\n')
    lib = os.path.join(d, "libweirplugin.so")
    subprocess.run([cc, "-shared", "-fPIC", "-o", lib, src], check=True)
    return lib, marker


class KafkaPropertyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="weir-policy-")
        self.lib, self.marker = build_marker_library(self.dir)
        if self.lib is None:
            self.skipTest("no C compiler to build the marker library")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def job(self, prop, value):
        path = os.path.join(self.dir, f"{prop}.yaml")
        with open(path, "w") as f:
            f.write(KAFKA_JOB.format(prop=prop, value=value))
        return path

    def test_cli_dry_run_refuses_before_loading_anything(self):
        for prop in ["plugin.library.paths", "ssl.engine.location", "ssl.providers",
                     "sasl.kerberos.kinit.cmd", "topic.offset.store.path"]:
            with self.subTest(prop=prop):
                value = self.lib if prop != "sasl.kerberos.kinit.cmd" else f"touch {self.marker}"
                r = subprocess.run([CLI_BIN, "run", "--dry-run", self.job(prop, value)],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(f"config.properties.{prop}: not allowed in a job", r.stderr)
                self.assertFalse(os.path.exists(self.marker), "the library was loaded")

    def test_job_manager_refuses_before_loading_anything(self):
        # The job manager links librdkafka and, before the policy, set every property on a
        # conf at submission: plugin.library.paths was dlopen'ed in the job manager.
        cluster = Cluster(taskmanagers=1)
        try:
            with open(self.job("plugin.library.paths", self.lib)) as f:
                body = f.read()
            status, answer, _ = cluster.rest("POST", "/jobs", body)
            self.assertEqual(status, 400, answer)
            self.assertIn("config.properties.plugin.library.paths: not allowed in a job",
                          answer["errors"][0] if isinstance(answer, dict) and "errors" in answer
                          else str(answer))
            self.assertFalse(os.path.exists(self.marker), "the job manager loaded the library")
            jobs = json.loads(cluster.cli("list", "--json", check=True).stdout).get("jobs", [])
            self.assertEqual(jobs, [], "a refused job is not kept")
        except BaseException:
            cluster.cleanup(dump_logs=True)
            raise
        cluster.cleanup(dump_logs=test_failed(self))


class AllowedPathsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="weir-policy-")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out)
        self.config = os.path.join(self.dir, "weir.yaml")
        with open(self.config, "w") as f:
            f.write(f"security:\n  allowed_paths: [{self.out}]\n")
        self.cluster = None

    def tearDown(self):
        if self.cluster:
            self.cluster.cleanup(dump_logs=test_failed(self))
        shutil.rmtree(self.dir, ignore_errors=True)

    def job(self, sink, path, name="job.yaml"):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(FILE_JOB.format(sink=sink, path=path))
        return p

    def test_job_manager_refuses_sink_paths_outside(self):
        self.cluster = Cluster(taskmanagers=1, jm_args=["--config", self.config])
        outside = os.path.join(self.dir, "outside")
        for sink in ["file", "committing_file"]:
            for bad in [outside, self.out + "side", self.out + "/../outside", "/etc/cron.d"]:
                with self.subTest(sink=sink, path=bad):
                    r = self.cluster.cli("run", self.job(sink, bad))
                    self.assertNotEqual(r.returncode, 0, r.stdout)
                    self.assertIn("vertex 'out': config.path", r.stderr)
                    self.assertIn("security.allowed_paths", r.stderr)
        self.assertFalse(os.path.exists(outside))
        # Inside: accepted and written.
        r = self.cluster.cli("run", "--wait", self.job("file", self.out + "/x"), timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wait_for(lambda: os.listdir(self.out + "/x"), 10, "the sink's output")
        # A savepoint directory outside is refused too (checked before the job is looked up).
        r = self.cluster.cli("savepoint", "no-such-job", "--dir", outside)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("savepoint directory", r.stderr)

    def test_task_manager_refuses_on_deploy_when_the_job_manager_has_no_policy(self):
        self.cluster = Cluster(taskmanagers=1, tm_args=["--config", self.config])
        outside = os.path.join(self.dir, "outside")
        r = self.cluster.cli("run", self.job("file", outside))
        self.assertEqual(r.returncode, 0, r.stderr)
        job_id = r.stdout.strip()
        info = self.cluster.wait_state(job_id, "FAILED", timeout=30)
        self.assertIn("security.allowed_paths", info["failure"])
        self.assertFalse(os.path.exists(outside))


class VertexIdTest(unittest.TestCase):
    def test_bad_vertex_ids_are_refused_by_the_cli_and_the_job_manager(self):
        d = tempfile.mkdtemp(prefix="weir-policy-")
        cluster = None
        try:
            for bad in ["..", "a/b", "", "caf\u00e9", "a.b"]:
                with self.subTest(id=bad):
                    path = os.path.join(d, "job.yaml")
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(FILE_JOB.format(sink="blackhole", path="x")
                                .replace("id: gen", f'id: "{bad}"')
                                .replace("from: gen", f'from: "{bad}"')
                                .replace(', config: {path: "x"}', ""))
                    r = subprocess.run([CLI_BIN, "run", "--dry-run", path], capture_output=True,
                                       text=True, timeout=30)
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn("vertex id", r.stderr)
            cluster = Cluster(taskmanagers=1)
            body = (FILE_JOB.format(sink="blackhole", path="x").replace("id: gen", 'id: ".."')
                    .replace("from: gen", 'from: ".."').replace(', config: {path: "x"}', ""))
            status, answer, _ = cluster.rest("POST", "/jobs", body)
            self.assertEqual(status, 400, answer)
            self.assertIn("vertex id '..'", str(answer))
        finally:
            if cluster:
                cluster.cleanup(dump_logs=test_failed(self))
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
