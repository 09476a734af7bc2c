"""A checkpoint is complete only when it is durable, with real processes: when the HA
directory cannot be written, or the checkpoint directory is full, checkpoints fail (counted,
with the reason) and no sink commits; once the disk is back, checkpoints complete again and
every row is committed exactly once."""
import collections
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Cluster, checkpoints, committed_rows, test_failed, wait_for

JOB = """
name: durability
checkpointing: {{interval: 200ms, dir: {ckpt}}}
restart_strategy: {{type: fixed-delay, attempts: -1, delay: 100ms}}
vertices:
  - id: gen
    type: datagen
    parallelism: 2
    config:
      total: {total}
      hold: true
      rows_per_second: {rate}
      fields: [{{name: k, expr: "id % 50"}}]
  - id: agg
    type: keyed_aggregate
    parallelism: 2
    config:
      key: [k]
      aggregations: [{{fn: count, as: n}}]
  - id: ids
    type: committing_file
    parallelism: 2
    config: {{path: {out}/ids}}
  - id: counts
    type: committing_file
    parallelism: 2
    config: {{path: {out}/counts}}
edges:
  - {{from: gen, to: ids, partition: rebalance}}
  - {{from: gen, to: agg, partition: hash, key: [k]}}
  - {{from: agg, to: counts}}
"""


class DurabilityTest(unittest.TestCase):
    def setUp(self):
        self.cluster = None
        self.tmp = tempfile.mkdtemp(prefix="weir-durability-")
        self.mounted = None

    def tearDown(self):
        if self.cluster:
            self.cluster.cleanup(dump_logs=test_failed(self))
        if self.mounted:
            subprocess.run(["umount", "-l", self.mounted], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_job(self, ckpt, total, rate, jm_args=()):
        self.cluster = Cluster(taskmanagers=2, slots=2, jm_args=list(jm_args))
        out = os.path.join(self.cluster.dir, "out")
        text = JOB.format(ckpt=ckpt, out=out, total=total, rate=rate)
        job = self.cluster.cli("run", self.cluster.write_job("job.yaml", text), check=True).stdout.strip()
        wait_for(lambda: checkpoints(self.cluster.job(job)) >= 2, 30, "two checkpoints")
        return job, out

    def outage_then_recovery(self, job, out, total, break_disk, repair_disk, reason):
        """Breaks the disk: checkpoints fail with `reason`, nothing more is committed. Repairs
        it: checkpoints complete again and every id is committed exactly once."""
        break_disk()
        # Whatever was in flight settles; from then on nothing completes.
        info = wait_for(lambda: (lambda j: j if checkpoints(j, "failed") >= 2 else None)(self.cluster.job(job)),
                        30, "checkpoints to fail")
        settled_completed = checkpoints(info)
        settled_rows = len(committed_rows(os.path.join(out, "ids")))
        time.sleep(1.5)
        info = self.cluster.job(job)
        self.assertEqual(info["state"], "RUNNING", info.get("failure"))
        self.assertEqual(checkpoints(info), settled_completed, "a checkpoint completed on a broken disk")
        self.assertEqual(len(committed_rows(os.path.join(out, "ids"))), settled_rows,
                         "a sink committed data of a checkpoint that is not durable")
        failures = [f.get("failure", "") for f in info["checkpoints"].get("recent_failures", [])]
        self.assertTrue(any(reason in f for f in failures), failures)
        repair_disk()
        wait_for(lambda: checkpoints(self.cluster.job(job)) > settled_completed + 1, 30,
                 "checkpoints to complete again")
        wait_for(lambda: len(committed_rows(os.path.join(out, "ids"))) >= total, 60,
                 f"all {total} ids committed", interval=0.3)
        time.sleep(0.8)  # later checkpoints: anything beyond would be a duplicate
        ids = [r["id"] for r in committed_rows(os.path.join(out, "ids"))]
        dup = [i for i, c in collections.Counter(ids).items() if c > 1]
        self.assertFalse(dup, f"{len(dup)} ids committed twice")
        self.assertEqual(set(ids), set(range(total)))
        # The running counts are exactly 1..n per key: no update lost or applied twice.
        by_key = collections.defaultdict(list)
        for r in committed_rows(os.path.join(out, "counts")):
            by_key[r["k"]].append(r["n"])
        for k, ns in by_key.items():
            self.assertEqual(sorted(ns), list(range(1, len(ns) + 1)), f"key {k}")
        self.assertEqual(sum(len(v) for v in by_key.values()), total)

    def test_unwritable_ha_directory_fails_checkpoints_until_it_is_back(self):
        ha = os.path.join(self.tmp, "ha")
        total = 20000
        job, out = self.run_job(os.path.join(self.tmp, "checkpoints"), total, 4000,
                                jm_args=["--ha-dir", ha])

        def break_disk():
            # A plain file where the directory was: every write fails, also for root.
            os.rename(ha, ha + ".away")
            with open(ha, "w") as f:
                f.write("not a directory")

        def repair_disk():
            os.remove(ha)
            os.rename(ha + ".away", ha)

        self.outage_then_recovery(job, out, total, break_disk, repair_disk, "HA record")

    def test_full_checkpoint_directory_fails_checkpoints_until_there_is_room(self):
        ckpt = os.path.join(self.tmp, "small")
        os.makedirs(ckpt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", ckpt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a small tmpfs for a full disk: {r.stderr.strip()}")
        self.mounted = ckpt
        total = 20000
        job, out = self.run_job(ckpt, total, 4000)
        filler = os.path.join(ckpt, "filler")

        def break_disk():
            # Fill the file system up to the last byte (unbuffered: each write hits the disk).
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                for size in (1 << 20, 4096, 1):
                    try:
                        while True:
                            os.write(fd, b"\0" * size)
                    except OSError:
                        pass
            finally:
                os.close(fd)

        def repair_disk():
            os.remove(filler)

        self.outage_then_recovery(job, out, total, break_disk, repair_disk, "No space left")


if __name__ == "__main__":
    unittest.main()
