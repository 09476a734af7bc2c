"""deploy/start-cluster.sh and stop-cluster.sh with a workers file (docs/deployment.md, "Several
hosts"): a bad line is refused naming the file and line; a host other than localhost is started
through $WEIR_SSH (here a stand-in for ssh that runs the command on this machine and records the
call) with the same install path, advertising that host's name; --keep-alive works there too;
stop-cluster.sh stops every task manager, remote ones through $WEIR_SSH, and leaves nothing."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
START = os.path.join(REPO, "deploy", "start-cluster.sh")
STOP = os.path.join(REPO, "deploy", "stop-cluster.sh")
TM_SH = os.path.join(REPO, "deploy", "taskmanager.sh")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class ScriptsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="weir-scripts-")
        self.run_dir = os.path.join(self.dir, "run")
        self.ssh_log = os.path.join(self.dir, "ssh.log")
        fake_ssh = os.path.join(self.dir, "fake-ssh")
        with open(fake_ssh, "w") as f:
            # ssh HOST COMMAND: record it, run COMMAND here (this machine plays every host).
            f.write(f'#!/bin/sh\necho "$1|$2" >>{self.ssh_log}\nexec sh -c "$2"\n')
        os.chmod(fake_ssh, 0o755)
        self.config = os.path.join(self.dir, "weir.yaml")
        with open(self.config, "w") as f:
            f.write(f"jobmanager:\n  checkpoint_dir: {self.dir}/checkpoints\n")
        self.env = {**os.environ, "WEIR_BUILD_DIR": os.path.abspath(BUILD),
                    "WEIR_RUN_DIR": self.run_dir, "WEIR_CONFIG": self.config,
                    "WEIR_JM_PORT": str(free_port()), "WEIR_REST_PORT": str(free_port()),
                    "WEIR_SSH": fake_ssh, "WEIR_TM_METRICS_PORT_BASE": str(free_port() - 10000)}
        self.started = False

    def tearDown(self):
        if self.started:
            subprocess.run([STOP], env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)

    def workers(self, text):
        path = os.path.join(self.dir, "workers")
        with open(path, "w") as f:
            f.write(text)
        self.env["WEIR_WORKERS"] = path

    def start(self, *args):
        self.started = True
        return subprocess.run([START, *args], env=self.env, capture_output=True, text=True,
                              timeout=120)

    def cli(self, *args):
        return subprocess.run([os.path.join(BUILD, "cli/weir"), "-m",
                               f"127.0.0.1:{self.env['WEIR_JM_PORT']}", *args],
                              capture_output=True, text=True, timeout=30)

    def test_bad_workers_lines_are_refused_naming_the_line(self):
        for text, words in [
            ("localhost\nhost a\n", "line 2: 'host a' is not host[:slots]"),
            ("# c\n\nhost:0\n", "line 3: slots must be 1..4096, got 0"),
            ("host:two\n", "line 1: 'host:two' is not host[:slots]"),
            ("host/x\n", "line 1: 'host/x' is not host[:slots]"),
            ("# only a comment\n", "lists no task manager"),
        ]:
            with self.subTest(text=text):
                self.workers(text)
                r = self.start()
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn(words, r.stderr)
                self.assertFalse(os.path.exists(os.path.join(self.run_dir, "jobmanager.pid")),
                                 "nothing may be started")
        self.env["WEIR_WORKERS"] = os.path.join(self.dir, "missing")
        r = self.start()
        self.assertIn("does not exist", r.stderr)

    def test_remote_hosts_over_ssh_need_a_job_manager_host_and_security(self):
        self.workers("otherhost\n")
        r = self.start()
        self.assertEqual(r.returncode, 1)
        self.assertIn("set WEIR_JM_HOST", r.stderr)
        self.env["WEIR_JM_HOST"] = socket.gethostname()
        r = self.start()
        self.assertEqual(r.returncode, 1)
        self.assertIn("pass --secure", r.stderr)

    def test_local_and_remote_task_managers_start_and_stop(self):
        host = socket.gethostname()  # resolves here; not "localhost", so it goes over ssh
        self.workers(f"# two here, one on {host}\n127.0.0.1:1\nlocalhost\n{host}:3   # remote\n")
        self.env["WEIR_JM_HOST"] = host
        r = self.start("--keep-alive", "--insecure")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        tms = {t["tm_id"]: t for t in json.loads(self.cli("taskmanagers", "--json").stdout)["taskmanagers"]}
        self.assertEqual(sorted(tms), ["tm-1", "tm-2", "tm-3"], r.stdout)
        self.assertEqual(tms["tm-1"]["slots"], 1)
        self.assertEqual(tms["tm-3"]["slots"], 3)
        self.assertTrue(tms["tm-3"]["rpc_address"].startswith(host + ":"), tms["tm-3"])
        self.assertTrue(tms["tm-3"]["data_address"].startswith(host + ":"), tms["tm-3"])
        with open(self.ssh_log) as f:
            calls = f.read().splitlines()
        self.assertEqual(len(calls), 1, calls)
        self.assertTrue(calls[0].startswith(host + "|cd " + REPO), calls[0])
        self.assertIn("taskmanager.sh start tm-3 3", calls[0])
        # The remote one is kept alive like the local ones: kill -9 it, it registers again.
        remote_run = os.path.join(self.run_dir, "hosts", host)
        pid_file = os.path.join(remote_run, "tm", "tm-3.pid")
        old = int(open(pid_file).read())
        registered = int(tms["tm-3"]["registered_time_ms"])
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: os.path.exists(pid_file) and int(open(pid_file).read()) != old, 20,
                 "the supervisor to start tm-3 again")

        def registered_again():
            r = self.cli("taskmanagers", "--json")
            return r.returncode == 0 and any(
                t["tm_id"] == "tm-3" and int(t["registered_time_ms"]) > registered
                for t in json.loads(r.stdout)["taskmanagers"])
        wait_for(registered_again, 20, "tm-3 to register again")
        pids = [int(open(os.path.join(d, f)).read())
                for d in (os.path.join(self.run_dir, "tm"), os.path.join(remote_run, "tm"))
                for f in os.listdir(d) if f.endswith((".pid", ".supervisor"))]
        r = subprocess.run([STOP], env=self.env, capture_output=True, text=True, timeout=120)
        self.started = False
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("stopped supervisor of tm-3", r.stdout)
        with open(self.ssh_log) as f:
            self.assertIn("taskmanager.sh stop tm-3", f.read())
        time.sleep(0.5)
        for pid in pids:
            with self.subTest(pid=pid):
                self.assertFalse(os.path.exists(f"/proc/{pid}") and
                                 open(f"/proc/{pid}/stat").read().split()[2] != "Z",
                                 f"process {pid} still running")


if __name__ == "__main__":
    unittest.main()
