"""Side outputs with real processes: parse's dirty rows leave through its side output, an edge
`from: parse.dirty` to a committing_file sink declared in the job file (a task of its own, fed
by rebalance), while two task managers are killed mid-run. Every good row is committed exactly
once, every dirty row is in the dirty sink exactly once with its reason, and the reconciliation
balances: read == committed + dirty, with the dirty sink's own commits reported apart
(committed_dirty == dirty)."""
import collections
import os
import re
import time
import unittest

from harness import Cluster, committed_rows, test_failed, wait_for

# A raw string: the expression's \" must reach the YAML parser as written.
JOB = r"""
name: side-outputs
max_parallelism: 64
checkpointing: {{interval: 300ms, dir: {dir}/checkpoints, retained: 2}}
restart_strategy: {{type: fixed-delay, attempts: -1, delay: 200ms}}
vertices:
  - id: gen
    type: datagen
    parallelism: 2
    config:
      total: {total}
      hold: true
      rows_per_second: 4000
      fields: [{{name: value, expr: "if(id % {bad_every} = 1, concat('oops ', id), concat('{{\"id\": ', id, '}}'))"}}]
  - id: parse
    type: parse
    parallelism: 2
    config: {{format: json, fields: [{{name: id, type: int64}}]}}
  - id: out
    type: committing_file
    parallelism: 2
    config: {{path: {dir}/out}}
  - id: bad
    type: committing_file
    parallelism: 1
    config: {{path: {dir}/bad, prefix: dirty}}
edges:
  - {{from: gen, to: parse}}
  - {{from: parse, to: out, partition: rebalance}}
  - {{from: parse.dirty, to: bad, partition: rebalance}}
"""

TOTAL = 20000
BAD_EVERY = 7


class SideOutputTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(taskmanagers=3, slots=2, jm_args=["--heartbeat-timeout-ms", "3000"])

    def tearDown(self):
        self.cluster.cleanup(dump_logs=test_failed(self))

    def test_dirty_side_output_to_an_explicit_sink_exactly_once_through_kills(self):
        c = self.cluster
        text = JOB.format(dir=c.dir, total=TOTAL, bad_every=BAD_EVERY)
        job = c.cli("run", c.write_job("side.yaml", text), check=True).stdout.strip()
        out, bad_dir = os.path.join(c.dir, "out"), os.path.join(c.dir, "bad")
        for victim in ("tm-1", "tm-2"):
            time.sleep(1.5)
            c.kill(victim)
            time.sleep(0.3)
            c.start_tm(victim)
        bad = {i for i in range(TOTAL) if i % BAD_EVERY == 1}
        good = TOTAL - len(bad)
        wait_for(lambda: len(committed_rows(out)) >= good and len(committed_rows(bad_dir)) >= len(bad),
                 120, "every row committed", interval=0.5)
        time.sleep(1.2)  # a few more checkpoints: anything beyond would be a duplicate

        ids = collections.Counter(r["id"] for r in committed_rows(out))
        self.assertFalse([i for i, n in ids.items() if n > 1], "rows committed twice")
        self.assertEqual(set(ids), set(range(TOTAL)) - bad)
        d = committed_rows(bad_dir)
        self.assertEqual(sorted(d[0]), ["raw", "reason"])  # the side output's own schema
        dirty_ids = collections.Counter(int(re.fullmatch(r"oops (\d+)", r["raw"]).group(1)) for r in d)
        self.assertFalse([i for i, n in dirty_ids.items() if n > 1], "dirty rows written twice")
        self.assertEqual(set(dirty_ids), bad)
        self.assertTrue(all(r["reason"].startswith("invalid JSON") for r in d), d[:3])
        for name in os.listdir(bad_dir):
            if not name.startswith((".", "_")):
                self.assertTrue(name.startswith("dirty-"), name)

        info = c.job(job)
        counts = {k: int(v) for k, v in info["checkpoints"]["latest_completed"]["counts"].items()}
        self.assertEqual(counts.get("read"), TOTAL, counts)
        self.assertEqual(counts.get("committed", 0) + counts.get("dirty", 0), TOTAL, counts)
        self.assertEqual(counts.get("dirty"), len(bad), counts)
        self.assertEqual(counts.get("committed_dirty"), len(bad), counts)
        self.assertIn("(balanced)", c.cli("status", job, check=True).stdout)
        self.assertGreaterEqual(info["restarts"], 1)
        c.cli("cancel", job, check=True)


if __name__ == "__main__":
    unittest.main()
