"""Failover with real processes: kill -9 a task manager under a checkpointed job; the job
restarts from its latest checkpoint on the remaining slots, and its keyed state is exact
(every id counted once) when it is later stopped with a savepoint and finished."""
import os
import time
import unittest

from checkpoint_test import KEYS, N, job_text
from harness import Cluster, jsonl_rows, test_failed, wait_for


class RecoveryTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(taskmanagers=3, slots=2, jm_args=["--heartbeat-timeout-ms", "3000"])

    def tearDown(self):
        self.cluster.cleanup(dump_logs=test_failed(self))

    def test_killed_task_manager_recovers_from_checkpoint_exactly(self):
        text = job_text(2, bounded=False).replace(
            "checkpointing: {interval: 500ms",
            "checkpointing: {dir: " + self.cluster.dir + "/checkpoints, interval: 300ms")
        job = self.cluster.write_job("job.yaml", text)
        job_id = self.cluster.cli("run", job, check=True).stdout.strip()
        running = lambda: all(s["state"] == "RUNNING" for s in self.cluster.job(job_id)["subtasks"])
        wait_for(running, 15, "all subtasks running")
        for kill in range(2):
            wait_for(lambda: int(self.cluster.job(job_id)["checkpoints"]["completed"]) >= 2 * (kill + 1),
                     20, "completed checkpoints")
            info = self.cluster.job(job_id)
            victim = sorted({s["tm_id"] for s in info["subtasks"]})[0]
            t0 = time.time()
            self.cluster.kill(victim)
            wait_for(lambda: int(self.cluster.job(job_id).get("restarts", 0)) >= kill + 1, 10,
                     "the restart")
            info = wait_for(lambda: (lambda j: j if j["state"] == "RUNNING" and all(
                s["state"] == "RUNNING" for s in j["subtasks"]) else None)(self.cluster.job(job_id)),
                15, "the job running again")
            print(f"\n  kill {kill + 1}: {victim} killed; all subtasks running again after "
                  f"{time.time() - t0:.2f} s; restored from {info['restored_from']}")
            self.assertNotIn(victim, {s["tm_id"] for s in info["subtasks"]})
            self.assertIn("lost", info["last_failure"])
            self.cluster.start_tm(victim)  # it comes back for the next round
            wait_for(lambda: len(self.cluster.taskmanagers()) == 3, 10, "the task manager back")
        sp = os.path.join(self.cluster.dir, "savepoints")
        r = self.cluster.cli("stop", job_id, "--savepoint", "--dir", sp, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        savepoint = r.stdout.strip()
        out = os.path.join(self.cluster.dir, "out")
        job2 = self.cluster.write_job("final.yaml", job_text(2, bounded=True, out_dir=out))
        r = self.cluster.cli("run", job2, "--from-savepoint", savepoint, "--wait", "--timeout", "120")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = jsonl_rows(out)
        self.assertEqual(len(rows), KEYS)
        for row in rows:
            ids = range(row["k"], N, KEYS)
            self.assertEqual(row["n"], len(ids), f"key {row['k']}: count after two failovers")
            self.assertEqual(row["s"], sum(ids), f"key {row['k']}: sum after two failovers")


class JobManagerRecoveryTest(unittest.TestCase):
    def setUp(self):
        import tempfile
        self.ha = tempfile.mkdtemp(prefix="weir-ha-")
        self.cluster = Cluster(taskmanagers=2, slots=2, jm_args=["--ha-dir", self.ha])

    def tearDown(self):
        import shutil
        self.cluster.cleanup(dump_logs=test_failed(self))
        shutil.rmtree(self.ha, ignore_errors=True)

    def test_killed_job_manager_resumes_its_job_from_the_latest_checkpoint(self):
        text = job_text(2, bounded=False).replace(
            "checkpointing: {interval: 500ms",
            "checkpointing: {dir: " + self.cluster.dir + "/checkpoints, interval: 300ms")
        job_id = self.cluster.cli("run", self.cluster.write_job("job.yaml", text),
                                  check=True).stdout.strip()
        wait_for(lambda: int(self.cluster.job(job_id)["checkpoints"]["completed"]) >= 2, 20,
                 "completed checkpoints")
        self.cluster.kill("jm")
        t0 = time.time()
        self.cluster.restart_jm()
        info = wait_for(lambda: (lambda j: j if j["state"] == "RUNNING" and all(
            s["state"] == "RUNNING" for s in j["subtasks"]) else None)(self.cluster.job(job_id)),
            20, "the job running again under the new job manager")
        print(f"\n  job manager restarted; job running again after {time.time() - t0:.2f} s; "
              f"restored from {info['restored_from']}")
        self.assertGreaterEqual(info["attempt"], 1)
        self.assertIn("chk-", info["restored_from"])
        wait_for(lambda: int(self.cluster.job(job_id)["checkpoints"]["completed"]) >= 1, 20,
                 "a checkpoint of the resumed job")
        sp = os.path.join(self.cluster.dir, "savepoints")
        r = self.cluster.cli("stop", job_id, "--savepoint", "--dir", sp, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = os.path.join(self.cluster.dir, "out")
        job2 = self.cluster.write_job("final.yaml", job_text(2, bounded=True, out_dir=out))
        r = self.cluster.cli("run", job2, "--from-savepoint", r.stdout.strip(), "--wait",
                             "--timeout", "120")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = jsonl_rows(out)
        self.assertEqual(len(rows), KEYS)
        for row in rows:
            ids = range(row["k"], N, KEYS)
            self.assertEqual((row["n"], row["s"]), (len(ids), sum(ids)), f"key {row['k']}")
        self.assertEqual(os.listdir(self.ha), [], "finished jobs leave the HA directory")


if __name__ == "__main__":
    unittest.main()
