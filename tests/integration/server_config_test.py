"""Bad settings for the servers (deploy/weir.yaml's keys and the flags) are refused at start
with exit code 2 and a message naming the setting; nothing is left running."""
import os
import subprocess
import tempfile
import unittest

from harness import JM_BIN, TM_BIN


class ServerConfigTest(unittest.TestCase):
    def run_bin(self, binary, config_text=None, args=()):
        with tempfile.TemporaryDirectory(prefix="weir-cfg-") as d:
            argv = [binary, *args]
            if config_text is not None:
                path = os.path.join(d, "weir.yaml")
                with open(path, "w") as f:
                    f.write(config_text)
                argv += ["--config", path]
            # A server that wrongly accepted the settings would serve: the timeout ends it.
            try:
                r = subprocess.run(argv + ["--rpc-address", "127.0.0.1:0"], capture_output=True,
                                   text=True, timeout=10, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                self.fail(f"{os.path.basename(binary)} started with bad settings")
            return r

    def assert_refused(self, r, words):
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(words, r.stdout + r.stderr)

    def test_task_manager_refuses_bad_upload_threads_and_block_cache(self):
        for text, words in [
            ("taskmanager: {upload_threads: 0}\n", "taskmanager.upload_threads: must be 1..64, got 0"),
            ("taskmanager: {upload_threads: 65}\n", "taskmanager.upload_threads: must be 1..64, got 65"),
            ("taskmanager: {upload_threads: many}\n", "upload_threads"),
            ("taskmanager: {rocksdb_block_cache: 1kb}\n", "taskmanager.rocksdb_block_cache: must be >= 1mb"),
            ("taskmanager: {rocksdb_block_cache: lots}\n", "rocksdb_block_cache"),
            ("taskmanager: {state_cache: -1mb}\n", "state_cache"),
            ("taskmanager: {state_cache: 100gb}\n", "taskmanager.state_cache: must be 0 (off) to 64gb"),
            ("taskmanager: {state_dir: [a, b]}\n", "state_dir"),
            ("taskmanager: {slots: 0}\n", "taskmanager.slots (1..4096)"),
        ]:
            with self.subTest(text=text):
                self.assert_refused(self.run_bin(TM_BIN, text), words)
        self.assert_refused(self.run_bin(TM_BIN, args=["--rocksdb-block-cache-mb", "0"]),
                            "--rocksdb-block-cache-mb: must be >= 1")

    def test_task_manager_refuses_bad_addresses(self):
        """Bind and advertised addresses (docs/deployment.md, "Several hosts"), from the config
        and from flags: each error names the setting."""
        for text, words in [
            ("taskmanager: {rpc_advertise: 'tm 1:7000'}\n", "taskmanager.rpc_advertise"),
            ("taskmanager: {rpc_advertise: 'tm1:99999'}\n", "port that is not 0..65535"),
            ("taskmanager: {data_advertise: '::1:5'}\n", "IPv6 address without brackets"),
            ("taskmanager: {data_bind: ':7000'}\n", "taskmanager.data_bind"),
            ("taskmanager: {host: 'tm1:7000'}\n", "taskmanager.host (--host): 'tm1:7000' has a port"),
            ("taskmanager: {rpc_advertise: [a]}\n", "rpc_advertise"),
            ("jobmanager: {rpc_address: 'jm.example.com'}\n", "jobmanager.rpc_address (--jobmanager)"),
        ]:
            with self.subTest(text=text):
                self.assert_refused(self.run_bin(TM_BIN, text), words)
        for args, words in [
            (["--rpc-advertise", "tm/1"], "taskmanager.rpc_advertise (--rpc-advertise): 'tm/1' is not a host"),
            (["--data-advertise", "[::1"], "has no closing ']'"),
            (["--data-bind", "127.0.0.1:x"], "--data-bind: '127.0.0.1:x' has a port"),
            (["--jobmanager", "nohost"], "jobmanager.rpc_address (--jobmanager): 'nohost' has no port"),
            (["--rpc-advertise", "tm1:0"], "advertises port 0"),
        ]:
            with self.subTest(args=args):
                r = self.run_bin(TM_BIN, args=args)
                self.assertIn(words, r.stdout + r.stderr)
                self.assertIn(r.returncode, (1, 2), r.stdout + r.stderr)
        # A wildcard bind without an advertised address: nobody could dial it.
        r = self.run_bin(TM_BIN, args=["--data-bind", "0.0.0.0:0"])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("taskmanager.data_advertise: the server binds 0.0.0.0:0 (every interface)",
                      r.stdout + r.stderr)

    def test_job_manager_refuses_bad_addresses(self):
        self.assert_refused(self.run_bin(JM_BIN, "jobmanager: {rpc_bind: '0.0.0.0'}\n"),
                            "jobmanager.rpc_bind (--rpc-bind): '0.0.0.0' has no port")
        r = self.run_bin(JM_BIN, args=["--rpc-bind", "[::1]:70000"])
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("jobmanager.rpc_bind (--rpc-bind)", r.stdout + r.stderr)

    def test_job_manager_refuses_bad_retained_jobs(self):
        self.assert_refused(self.run_bin(JM_BIN, "jobmanager: {retained_jobs: -1}\n"),
                            "jobmanager.retained_jobs: must be >= 0, got -1")
        self.assert_refused(self.run_bin(JM_BIN, "jobmanager: {retained_jobs: all}\n"),
                            "retained_jobs")


if __name__ == "__main__":
    unittest.main()
