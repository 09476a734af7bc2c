"""Savepoints survive upgrades: a savepoint made on 2026-11-30 (tests/data/golden-savepoint-v1,
metadata format 1, taken from tests/data/golden-savepoint-v1.job.yaml about 2 s into the run:
datagen positions as operator state, keyed_aggregate's typed RocksDB state) is
restored by today's build, at the parallelism it was taken with and rescaled. Whoever changes
a state format must keep this test passing (or make a migration), never regenerate the data.
"""
import collections
import os
import shutil
import unittest

from harness import Cluster, committed_rows, test_failed

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "data", "golden-savepoint-v1")

# The golden job, continued: ids up to 1000, running counts into files.
JOB = """
name: golden-continued
max_parallelism: 64
vertices:
  - id: gen
    type: datagen
    parallelism: {p}
    config: {{total: 1000, fields: [{{name: k, expr: "id % 10"}}]}}
  - id: agg
    type: keyed_aggregate
    parallelism: {p}
    config: {{key: [k], aggregations: [{{fn: count, as: n}}, {{fn: sum, field: id, as: s}}]}}
  - id: out
    type: committing_file
    parallelism: {p}
    config: {{path: {out}}}
edges:
  - {{from: gen, to: agg, partition: hash, key: [k]}}
  - {{from: agg, to: out}}
"""


class SavepointCompatTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(taskmanagers=2, slots=2)

    def tearDown(self):
        self.cluster.cleanup(dump_logs=test_failed(self))

    def restore(self, p):
        # A copy: restoring must not depend on writing into the checked-in files.
        sp = os.path.join(self.cluster.dir, f"golden-{p}")
        shutil.copytree(GOLDEN, sp)
        out = os.path.join(self.cluster.dir, f"out-{p}")
        job = self.cluster.cli("run", self.cluster.write_job(f"job-{p}.yaml", JOB.format(p=p, out=out)),
                               "--from-savepoint", sp, check=True).stdout.strip()
        info = self.cluster.wait_state(job, ["FINISHED", "FAILED", "CANCELED"], timeout=60)
        self.assertEqual(info["state"], "FINISHED", info.get("failure"))
        self.assertIn("checkpoint 1", info.get("restored_from", ""))
        by_key = collections.defaultdict(list)
        for r in committed_rows(out):
            by_key[r["k"]].append((r["n"], r["s"]))
        self.assertEqual(sorted(by_key), list(range(10)))
        for k, rows in by_key.items():
            # The savepoint was taken part way (~2 s at 200 ids/s): counting goes on from where
            # the savepoint left each key, contiguously, up to all 100 ids of the key, and the
            # sum covers every id 0..999 of the key exactly once: the restored keyed state and
            # datagen's restored positions agree, with nothing lost or repeated.
            ns = sorted(n for n, _ in rows)
            self.assertGreater(ns[0], 1, f"key {k}: counting restarted from scratch")
            self.assertEqual(ns, list(range(ns[0], 101)), f"key {k}")
            self.assertEqual(max(rows)[1], sum(range(k, 1000, 10)), f"key {k}")

    def test_golden_savepoint_restores_at_its_parallelism(self):
        self.restore(2)

    def test_golden_savepoint_restores_rescaled(self):
        self.restore(3)


if __name__ == "__main__":
    unittest.main()
