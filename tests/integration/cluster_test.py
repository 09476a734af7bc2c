"""Integration tests: a real job manager and task managers, driven through the weir CLI."""
import glob
import json
import os
import time
import unittest

from harness import Cluster, all_running, jsonl_rows, test_failed, wait_for

COUNT_JOB = """
name: count-by-key
max_parallelism: 128
vertices:
  - id: gen
    type: datagen
    parallelism: 2
    config:
      total: {total}
      fields:
        - {{name: k, expr: "id % 1000"}}
  - id: agg
    type: keyed_aggregate
    parallelism: 2
    config:
      key: [k]
      aggregations: [{{fn: count, as: cnt}}, {{fn: sum, field: id, as: total}}]
      emit: {emit}
  - id: out
    type: file
    parallelism: 2
    config: {{path: {path}}}
edges:
  - {{from: gen, to: agg, partition: hash, key: [k]}}
  - {{from: agg, to: out}}
"""

UNBOUNDED_JOB = """
name: forever
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {rows_per_second: 20000, fields: [{name: k, expr: "id % 10"}]}}
  - {id: agg, type: keyed_aggregate, parallelism: 2, config: {key: [k], aggregations: [{fn: count}]}}
  - {id: out, type: blackhole, parallelism: 2}
edges:
  - {from: gen, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
"""


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(taskmanagers=2, slots=2,
                               jm_args=["--slot-wait-timeout-ms", "3000",
                                        "--heartbeat-timeout-ms", "3000"])

    def tearDown(self):
        self.cluster.cleanup(dump_logs=test_failed(self))

    def test_count_by_key_across_two_task_managers_is_exact(self):
        out = os.path.join(self.cluster.dir, "out")
        job = self.cluster.write_job("count.yaml", COUNT_JOB.format(total=1000000, emit="final",
                                                                    path=out))
        r = self.cluster.cli("run", job, "--wait", "--timeout", "120")
        self.assertEqual(r.returncode, 0, r.stderr)
        job_id = r.stdout.strip()
        info = self.cluster.job(job_id)
        self.assertEqual(info["state"], "FINISHED")
        # Subtasks were spread over both task managers.
        self.assertEqual({s["tm_id"] for s in info["subtasks"]}, {"tm-1", "tm-2"})
        rows = jsonl_rows(out)
        self.assertEqual(len(rows), 1000)
        by_key = {r["k"]: r for r in rows}
        self.assertEqual(set(by_key), set(range(1000)))
        for k, r in by_key.items():
            self.assertEqual(r["cnt"], 1000, r)
            self.assertEqual(r["total"], sum(range(k, 1000000, 1000)), r)
        gen_out = sum(int(s["records_out"]) for s in info["subtasks"] if s["task_id"] == "gen")
        self.assertEqual(gen_out, 1000000)
        self.assertEqual(glob.glob(os.path.join(out, ".*inprogress")), [])

    def test_running_updates_emit_one_row_per_input(self):
        out = os.path.join(self.cluster.dir, "out")
        job = self.cluster.write_job("count.yaml", COUNT_JOB.format(total=50000, emit="updates",
                                                                    path=out))
        r = self.cluster.cli("run", job, "--wait", "--timeout", "60")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = jsonl_rows(out)
        self.assertEqual(len(rows), 50000)
        final = {}
        for row in rows:
            final[row["k"]] = max(final.get(row["k"], 0), row["cnt"])
        self.assertEqual(final, {k: 50 for k in range(1000)})

    def test_bad_job_file_is_rejected_with_the_vertex_and_field(self):
        job = self.cluster.write_job("bad.yaml", COUNT_JOB.format(total=10, emit="final", path="/tmp/x")
                                     .replace("key: [k]\n      aggregations", "key: [kk]\n      aggregations"))
        r = self.cluster.cli("run", job)
        self.assertEqual(r.returncode, 2)
        self.assertIn("vertex 'agg': config.key: unknown field 'kk'", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        bad_yaml = self.cluster.write_job("bad2.yaml", "vertices: [\n")
        r = self.cluster.cli("run", bad_yaml)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not valid YAML/JSON", r.stderr)
        r = self.cluster.cli("run", os.path.join(self.cluster.dir, "missing.yaml"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot open job file", r.stderr)
        # Nothing was submitted.
        self.assertEqual(json.loads(self.cluster.cli("list", "--json", check=True).stdout)
                         .get("jobs", []), [])

    def test_cancel_stops_a_running_unbounded_job_and_frees_its_slots(self):
        job = self.cluster.write_job("forever.yaml", UNBOUNDED_JOB)
        r = self.cluster.cli("run", job, check=True)
        job_id = r.stdout.strip()
        info = self.cluster.wait_state(job_id, "RUNNING")
        wait_for(lambda: all_running(self.cluster.job(job_id)),
                 10, "all subtasks running")
        r = self.cluster.cli("cancel", job_id, check=True)
        self.assertIn("CANCELLING", r.stdout)
        info = self.cluster.wait_state(job_id, "CANCELED", timeout=10)
        self.assertTrue(all(s["state"] == "CANCELED" for s in info["subtasks"]), info)
        wait_for(lambda: all(t["free_slots"] == 2 for t in self.cluster.taskmanagers()), 5,
                 "slots to be free again")
        r = self.cluster.cli("cancel", job_id)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already CANCELED", r.stderr)

    def test_job_needing_more_slots_waits_then_fails_with_the_reason(self):
        job = self.cluster.write_job("big.yaml", UNBOUNDED_JOB.replace("parallelism: 2", "parallelism: 5"))
        job_id = self.cluster.cli("run", job, check=True).stdout.strip()
        info = self.cluster.job(job_id)
        self.assertEqual(info["state"], "CREATED")
        self.assertIn("waiting for slots: needs 5, 4 free of 4", info["failure"])
        info = self.cluster.wait_state(job_id, "FAILED", timeout=10)
        self.assertIn("not enough slots: needs 5", info["failure"])
        r = self.cluster.cli("status", job_id)
        self.assertIn("reason:", r.stdout)

    def test_waiting_job_starts_when_a_task_manager_joins(self):
        job = self.cluster.write_job("five.yaml", COUNT_JOB.format(
            total=10000, emit="final", path=os.path.join(self.cluster.dir, "o"))
            .replace("parallelism: 2", "parallelism: 5"))
        job_id = self.cluster.cli("run", job, check=True).stdout.strip()
        self.assertEqual(self.cluster.job(job_id)["state"], "CREATED")
        self.cluster.start_tm("tm-3", slots=1)
        self.cluster.wait_state(job_id, "FINISHED", timeout=20)
        self.assertEqual(len(jsonl_rows(os.path.join(self.cluster.dir, "o"))), 1000)

    def test_killed_task_manager_fails_the_job_with_the_cause(self):
        job = self.cluster.write_job("forever.yaml", UNBOUNDED_JOB)
        job_id = self.cluster.cli("run", job, check=True).stdout.strip()
        wait_for(lambda: all_running(self.cluster.job(job_id)),
                 10, "all subtasks running")
        self.cluster.kill("tm-2")
        info = self.cluster.wait_state(job_id, "FAILED", timeout=10)
        # The root cause is reported, not the producers cut off by it.
        self.assertIn("tm-2", info["failure"])
        self.assertIn("lost", info["failure"])
        # The survivor's slots are released and the lost task manager leaves the registry.
        wait_for(lambda: [t["tm_id"] for t in self.cluster.taskmanagers()] == ["tm-1"], 10,
                 "tm-2 to leave the registry")
        wait_for(lambda: self.cluster.taskmanagers()[0]["free_slots"] == 2, 5, "free slots")

    def test_cli_reports_an_unreachable_job_manager(self):
        from harness import CLI_BIN
        import subprocess
        r = subprocess.run([CLI_BIN, "-m", "127.0.0.1:1", "list"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 3)
        self.assertIn("cannot reach the job manager", r.stderr)


if __name__ == "__main__":
    unittest.main()
