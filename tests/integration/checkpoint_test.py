"""Checkpoints with real processes: periodic checkpoints complete, savepoint + stop, restore at
another parallelism with every key's sum exact, and bad snapshots refused without damage."""
import glob
import json
import os
import shutil
import unittest

from harness import Cluster, all_running, jsonl_rows, test_failed, wait_for

N = 300000        # ids in [0, N) are produced over both runs
KEYS = 50

JOB = """
name: keyed-sum
max_parallelism: 128
checkpointing: {{interval: 500ms, retained: 2}}
state_backend: {backend}
vertices:
  - id: gen
    type: datagen
    parallelism: 2
    config:
      rows_per_second: {rate}
      {total}
      fields: [{{name: k, expr: "id % {keys}"}}]
  - id: agg
    type: keyed_aggregate
    parallelism: {agg_p}
    config:
      key: [k]
      aggregations: [{{fn: count, as: n}}, {{fn: sum, field: id, as: s}}]
      emit: {emit}
  - id: out
    type: {sink}
    parallelism: {agg_p}
    {sink_config}
edges:
  - {{from: gen, to: agg, partition: hash, key: [k]}}
  - {{from: agg, to: out}}
"""


def job_text(agg_p, bounded, out_dir=None, backend="rocksdb", rate=20000):
    return JOB.format(
        backend=backend, rate=rate if not bounded else 0,
        total=f"total: {N}" if bounded else "", keys=KEYS, agg_p=agg_p,
        emit="final" if bounded else "updates",
        sink="file" if bounded else "blackhole",
        sink_config=f"config: {{path: {out_dir}}}" if bounded else "")


class CheckpointTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(taskmanagers=2, slots=3)
        self.sp_dir = os.path.join(self.cluster.dir, "savepoints")

    def tearDown(self):
        self.cluster.cleanup(dump_logs=test_failed(self))

    def start_unbounded(self, backend="rocksdb"):
        job = self.cluster.write_job("unbounded.yaml", job_text(2, bounded=False, backend=backend)
                                     .replace("checkpointing: {interval: 500ms",
                                              "checkpointing: {dir: " + self.cluster.dir +
                                              "/checkpoints, interval: 500ms"))
        job_id = self.cluster.cli("run", job, check=True).stdout.strip()
        wait_for(lambda: all_running(self.cluster.job(job_id)),
                 15, "all subtasks running")
        return job_id

    def take_savepoint_and_stop(self, job_id):
        # Let some checkpoints complete first, so the job has real state and history.
        wait_for(lambda: int(self.cluster.job(job_id)["checkpoints"]["completed"]) >= 2, 20,
                 "two completed checkpoints")
        r = self.cluster.cli("stop", job_id, "--savepoint", "--dir", self.sp_dir, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        path = r.stdout.strip()
        self.assertTrue(os.path.exists(os.path.join(path, "_metadata")), path)
        info = self.cluster.wait_state(job_id, "FINISHED", timeout=20)
        return path, info

    def restore_and_check(self, savepoint, agg_p, backend="rocksdb"):
        out = os.path.join(self.cluster.dir, f"out-p{agg_p}-{backend}")
        job = self.cluster.write_job(f"restore-{agg_p}.yaml",
                                     job_text(agg_p, bounded=True, out_dir=out, backend=backend))
        r = self.cluster.cli("run", job, "--from-savepoint", savepoint, "--wait", "--timeout", "120")
        self.assertEqual(r.returncode, 0, r.stderr)
        info = self.cluster.job(r.stdout.strip())
        self.assertIn(savepoint, info["restored_from"])
        rows = jsonl_rows(out)
        self.assertEqual(len(rows), KEYS, f"one row per key at parallelism {agg_p}")
        for row in rows:
            k = row["k"]
            ids = range(k, N, KEYS)
            self.assertEqual(row["n"], len(ids), f"key {k}: count at parallelism {agg_p}")
            self.assertEqual(row["s"], sum(ids), f"key {k}: sum at parallelism {agg_p}")

    def test_checkpoints_complete_and_old_ones_are_pruned(self):
        job_id = self.start_unbounded()
        info = wait_for(lambda: (lambda j: j if int(j["checkpoints"]["completed"]) >= 4 else None)(
            self.cluster.job(job_id)), 30, "four completed checkpoints")
        latest = info["checkpoints"]["latest_completed"]
        self.assertTrue(os.path.exists(os.path.join(latest["path"], "_metadata")))
        self.assertGreater(int(latest["state_size"]), 0)
        root = os.path.dirname(latest["path"])
        wait_for(lambda: len(glob.glob(os.path.join(root, "chk-*", "_metadata"))) <= 2, 5,
                 "pruning to the 2 retained checkpoints")
        status = self.cluster.cli("status", job_id, check=True).stdout
        self.assertIn("checkpoints:", status)
        self.assertIn("latest: id", status)
        self.cluster.cli("cancel", job_id, check=True)
        self.cluster.wait_state(job_id, "CANCELED")

    def test_savepoint_stop_and_restore_at_parallelism_1_and_3(self):
        job_id = self.start_unbounded()
        savepoint, _ = self.take_savepoint_and_stop(job_id)
        self.restore_and_check(savepoint, 1)
        self.restore_and_check(savepoint, 3)

    def test_heap_backend_savepoint_restores_into_rocksdb(self):
        job_id = self.start_unbounded(backend="heap")
        savepoint, _ = self.take_savepoint_and_stop(job_id)
        self.restore_and_check(savepoint, 2, backend="rocksdb")

    def test_bad_snapshots_are_refused_and_left_alone(self):
        job_id = self.start_unbounded()
        r = self.cluster.cli("savepoint", job_id, "--dir", self.sp_dir, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        savepoint = r.stdout.strip()
        self.cluster.cli("cancel", job_id, check=True)
        self.cluster.wait_state(job_id, "CANCELED")
        before = sorted(os.listdir(savepoint))
        job = self.cluster.write_job("b.yaml", job_text(2, True, os.path.join(self.cluster.dir, "o")))

        # A vertex renamed: refused, unless explicitly allowed.
        renamed = self.cluster.write_job("renamed.yaml", job_text(2, True, os.path.join(
            self.cluster.dir, "o2")).replace("id: agg", "id: agg2").replace("to: agg", "to: agg2")
            .replace("from: agg", "from: agg2"))
        r = self.cluster.cli("run", renamed, "--from-savepoint", savepoint)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("state of vertex 'agg'", r.stderr)
        r = self.cluster.cli("run", renamed, "--from-savepoint", savepoint,
                             "--allow-non-restored-state", "--wait", "--timeout", "60")
        self.assertEqual(r.returncode, 0, r.stderr)

        # A missing state file: refused, naming it.
        copy = savepoint + "-copy"
        shutil.copytree(savepoint, copy)
        victim = sorted(glob.glob(os.path.join(copy, "agg-*", "*")))[0]
        os.remove(victim)
        r = self.cluster.cli("run", job, "--from-savepoint", copy)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(os.path.basename(victim), r.stderr)

        # Corrupt and missing metadata.
        with open(os.path.join(copy, "_metadata"), "wb") as f:
            f.write(b"\x00garbage")
        r = self.cluster.cli("run", job, "--from-savepoint", copy)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("corrupt checkpoint metadata", r.stderr)
        r = self.cluster.cli("run", job, "--from-savepoint", os.path.join(self.cluster.dir, "nope"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no checkpoint metadata", r.stderr)

        self.assertEqual(sorted(os.listdir(savepoint)), before, "nothing in the savepoint changed")
        jobs = json.loads(self.cluster.cli("list", "--json", check=True).stdout)["jobs"]
        self.assertEqual(len(jobs), 2, "refused restores are not half-submitted")


if __name__ == "__main__":
    unittest.main()
