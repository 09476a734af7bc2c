"""The exactly-once partitioned file sink with real processes: success files follow the
watermark and never come before their data, and a task manager killed at each of the sink's
crash points (WEIR_CRASH_AT) loses and duplicates nothing."""
import collections
import os
import time
import unittest

from harness import (Cluster, committed_rows, marked_partitions, partition_hour, rows_by_partition,
                     test_failed, wait_for)

# ts = id * 500 ms: 7200 ids per hour of event time. The source holds after `total` ids, so
# the job keeps running (and checkpointing) until cancelled.
JOB = """
name: partitioned
checkpointing: {{interval: 300ms, dir: {dir}/checkpoints}}
restart_strategy: {{type: fixed-delay, attempts: -1, delay: 100ms}}
vertices:
  - id: gen
    type: datagen
    parallelism: 2
    config:
      total: {total}
      hold: true
      rows_per_second: {rate}
      fields: [{{name: ts, expr: "id * 500"}}, {{name: app, expr: "concat('a', id % 3)"}}]
    watermarks: {{event_time_field: ts, interval: 20ms}}
  - id: out
    type: committing_file
    parallelism: 2
    config:
      path: {dir}/out
      partition: "dt={{ts:%Y-%m-%d}}/hour={{ts:%H}}/app={{app}}"
edges:
  - {{from: gen, to: out, partition: rebalance}}
"""

PER_HOUR = 7200


class FileSinkTest(unittest.TestCase):
    def setUp(self):
        self.cluster = None

    def tearDown(self):
        if self.cluster:
            self.cluster.cleanup(dump_logs=test_failed(self))

    def check_markers(self, out):
        """Every partition with a success file holds all of its rows (never a marker first)."""
        marked_parts = marked_partitions(out)  # before the rows: see marked_partitions
        parts = rows_by_partition(out)
        for part in marked_parts:
            rows = parts.get(part, [])
            self.assertEqual(len(rows), PER_HOUR // 3,
                             f"{part} is marked successful with {len(rows)} rows")
        return len(marked_parts)

    def check_exactly_once(self, out, total):
        ids = [r["id"] for r in committed_rows(out)]
        dup = [i for i, c in collections.Counter(ids).items() if c > 1]
        self.assertFalse(dup, f"{len(dup)} ids committed twice, e.g. {dup[:5]}")
        missing = set(range(total)) - set(ids)
        self.assertFalse(missing, f"{len(missing)} ids missing, e.g. {sorted(missing)[:5]}")
        for part, rows in rows_by_partition(out).items():
            for r in rows:
                self.assertEqual(partition_hour(part), r["id"] // PER_HOUR, f"id {r['id']} in {part}")

    def test_success_files_follow_the_watermark(self):
        total = 6 * PER_HOUR
        self.cluster = c = Cluster(taskmanagers=2, slots=2)
        out = os.path.join(c.dir, "out")
        job = c.cli("run", c.write_job("p.yaml", JOB.format(dir=c.dir, total=total, rate=15000)),
                    check=True).stdout.strip()
        seen_marked = []
        deadline = time.time() + 90
        # Hours 0-4 end before the last watermark (hour 5 holds the final ids): 5 hours x 3 apps.
        while time.time() < deadline:
            m = self.check_markers(out)
            seen_marked.append(m)
            if m == 15:
                break
            time.sleep(0.1)
        self.assertEqual(self.check_markers(out), 15)
        # Markers came progressively, while the job ran, not all at the end.
        self.assertTrue(any(0 < m < 15 for m in seen_marked), seen_marked[-20:])
        wait_for(lambda: len(committed_rows(out)) >= total, 60, "all ids committed")
        time.sleep(0.7)
        self.check_exactly_once(out, total)
        for app in range(3):
            self.assertFalse(os.path.exists(
                os.path.join(out, f"dt=1970-01-01/hour=05/app=a{app}/_SUCCESS")))
        self.assertFalse(os.path.exists(os.path.join(out, "_late")), "no row was late")
        c.cli("cancel", job, check=True)

    def crash_at(self, point):
        total = 5 * PER_HOUR
        # One task manager that dies at the crash point (third time it is reached), then a
        # clean one that takes over.
        self.cluster = c = Cluster(taskmanagers=1, slots=2, tm_env={"WEIR_CRASH_AT": f"{point}:3"},
                                   jm_args=["--heartbeat-timeout-ms", "2000"])
        out = os.path.join(c.dir, "out")
        job = c.cli("run", c.write_job("p.yaml", JOB.format(dir=c.dir, total=total, rate=20000)),
                    check=True).stdout.strip()
        wait_for(lambda: c.exited("tm-1"), 60, f"the task manager to die at {point}")
        self.assertIn(f"crash point '{point}' reached", c.log("tm-1"))
        c.start_tm("tm-2")
        wait_for(lambda: len(committed_rows(out)) >= total, 90, "all ids committed", interval=0.2)
        time.sleep(0.7)  # another checkpoint or two: anything more would be a duplicate
        self.check_exactly_once(out, total)
        self.check_markers(out)
        info = c.job(job)
        self.assertGreaterEqual(info["restarts"], 1)
        c.cli("cancel", job, check=True)

    def test_crash_after_precommit(self):
        self.crash_at("after_precommit")

    def test_crash_after_completion_before_renames(self):
        self.crash_at("before_commit")

    def test_crash_between_renames(self):
        self.crash_at("between_renames")


if __name__ == "__main__":
    unittest.main()
