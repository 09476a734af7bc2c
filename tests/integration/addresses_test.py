"""Bind and advertised addresses on loopback (docs/deployment.md, "Several hosts"): a task
manager advertising an address nobody answers at is refused at registration with a clear error
and exits, instead of hanging; one advertising a host name runs jobs; certificates are checked
against the advertised name; a task manager that does not see the job manager's checkpoint
directory refuses to register."""
import os
import socket
import subprocess
import time
import unittest

from harness import TM_BIN, Cluster, jsonl_rows, test_failed, wait_for

JOB = """
name: addr
vertices:
  - {{id: gen, type: datagen, parallelism: 2, config: {{total: 2000, fields: [{{name: k, expr: "id % 7"}}]}}}}
  - {{id: out, type: file, parallelism: 2, config: {{path: {out}}}}}
edges:
  - {{from: gen, to: out, partition: hash, key: [k]}}
"""


def closed_port():
    """A port on 127.0.0.1 that nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class AddressesTest(unittest.TestCase):
    def setUp(self):
        self.cluster = None

    def tearDown(self):
        if self.cluster:
            self.cluster.cleanup(dump_logs=test_failed(self))

    def start_tm_and_wait_exit(self, name, args, timeout=30, env=None):
        """Starts a task manager that should give up; returns (exit code, seconds, log)."""
        c = self.cluster
        t0 = time.time()
        c._spawn(name, [TM_BIN, "--jobmanager", c.jm, "--id", name, *c.tm_args, *args], env=env)
        p = c.procs[name]
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"{name} did not give up within {timeout} s: {c.log(name)}")
        return rc, time.time() - t0, c.log(name)

    def test_unreachable_advertised_address_fails_registration(self):
        self.cluster = Cluster(taskmanagers=0)
        port = closed_port()
        rc, took, log = self.start_tm_and_wait_exit("tm-x", ["--rpc-advertise", f"127.0.0.1:{port}"])
        self.assertEqual(rc, 1, log)
        self.assertIn(f"cannot reach its advertised RPC address 127.0.0.1:{port}", log)
        self.assertIn("registration with job manager", log)
        self.assertEqual(self.cluster.taskmanagers(), [])
        self.assertIn("refused: its advertised RPC address", self.cluster.log("jm"))
        print(f"unreachable advertised address: the task manager gave up {took:.1f} s after start")

    def test_host_name_is_advertised_and_jobs_run(self):
        self.cluster = Cluster(taskmanagers=0, tm_args=["--host", "localhost"])
        for name in ("tm-1", "tm-2"):
            self.cluster.start_tm(name)
        wait_for(lambda: len(self.cluster.taskmanagers()) == 2, 20, "two task managers")
        for tm in self.cluster.taskmanagers():
            self.assertTrue(tm["rpc_address"].startswith("localhost:"), tm)
            self.assertTrue(tm["data_address"].startswith("localhost:"), tm)
        out = os.path.join(self.cluster.dir, "out")
        job = self.cluster.cli("run", self.cluster.write_job("j.yaml", JOB.format(out=out)),
                               check=True).stdout.strip()
        self.cluster.wait_state(job, "FINISHED", 60)
        self.assertEqual(sorted(r["id"] for r in jsonl_rows(out)), list(range(2000)))

    def test_certificate_must_name_the_advertised_address(self):
        # gen-certs' certificates name localhost and 127.0.0.1, not 127.0.0.2: the job manager's
        # TLS check of the dial-back fails, and the registration is refused with the address.
        self.cluster = Cluster(taskmanagers=0, secure=True)
        rc, _, log = self.start_tm_and_wait_exit(
            "tm-bad", ["--rpc-bind", "127.0.0.2:0", "--rpc-advertise", "127.0.0.2"])
        self.assertEqual(rc, 1, log)
        self.assertIn("cannot reach its advertised RPC address 127.0.0.2:", log)
        # Named in the certificate: accepted.
        self.cluster.start_tm("tm-1")
        self.cluster._spawn("tm-2", [TM_BIN, "--jobmanager", self.cluster.jm, "--id", "tm-2",
                                     *self.cluster.tm_args, "--host", "localhost"])
        wait_for(lambda: len(self.cluster.taskmanagers()) == 2, 20, "two task managers")

    def test_checkpoint_directory_not_shared_is_refused(self):
        # The task manager runs in a mount namespace where the job manager's checkpoint
        # directory is another (empty) file system: it must notice and refuse to register.
        probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("unshare --mount is not permitted here: " + probe.stderr.decode().strip())
        self.cluster = Cluster(taskmanagers=0)
        ckpt = os.path.join(self.cluster.dir, "checkpoints")
        c = self.cluster
        t0 = time.time()
        log_path = os.path.join(c.dir, "tm-nfs.log")
        with open(log_path, "wb") as log:
            p = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount -t tmpfs weir-not-shared "$1" && shift && exec "$@"', "sh", ckpt,
                 TM_BIN, "--jobmanager", c.jm, "--id", "tm-nfs"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        c.procs["tm-nfs"] = p
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            self.fail("the task manager did not give up: " + c.log("tm-nfs"))
        log = c.log("tm-nfs")
        self.assertEqual(rc, 1, log)
        self.assertIn("cannot read the job manager's probe file " + ckpt + "/.weir-probe/jm-", log)
        self.assertIn("must be the same shared directory", log)
        self.assertEqual(c.taskmanagers(), [])
        # The same task manager seeing the directory registers.
        c.start_tm("tm-1")
        wait_for(lambda: len(c.taskmanagers()) == 1, 20, "the task manager to register")
        print(f"unshared checkpoint directory: refused {time.time() - t0:.1f} s after start")


if __name__ == "__main__":
    unittest.main()
