"""Live figures of a running job, end to end: every task manager's Prometheus /metrics (runtime,
operator, RocksDB, file sink and process metrics with job/vertex/subtask/tm labels), the live
rates in `weir status --json`, and `weir status --watch` refreshing while the job runs."""
import json
import os
import pty
import re
import subprocess
import unittest
import urllib.request

from harness import CLI_BIN, Cluster, test_failed, wait_for

JOB = """
name: metrics
max_parallelism: 16
checkpointing: {{interval: 500ms}}
vertices:
  - id: gen
    type: datagen
    parallelism: 2
    config:
      rows_per_second: 20000
      fields:
        - {{name: user, expr: "concat('u', id % 50)"}}
        - {{name: ts, expr: "to_timestamp(1763700000000 + id)"}}
  - id: count
    type: keyed_aggregate
    parallelism: 2
    config:
      key: [user]
      aggregations: [{{fn: count, as: n}}]
  - id: out
    type: committing_file
    parallelism: 2
    config:
      path: {dir}/out
      partition: "user={{user}}"
edges:
  - {{from: gen, to: count, partition: hash, key: [user]}}
  - {{from: count, to: out}}
"""

SAMPLE = re.compile(r'^([a-z_]+)\{([^}]*)\} (\S+)$')


def scrape(address):
    """{(name, frozenset(labels)): value} of one /metrics endpoint."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = frozenset(tuple(kv.split("=", 1)) for kv in re.findall(r'\w+="[^"]*"', m.group(2)))
            labels = frozenset((k, v.strip('"')) for k, v in labels)
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def values(samples, name, **want):
    return [v for (n, labels), v in samples.items()
            if n == name and all((k, str(x)) in labels for k, x in want.items())]


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(taskmanagers=2, slots=2)

    def tearDown(self):
        self.cluster.cleanup(dump_logs=test_failed(self))

    def test_task_manager_metrics_and_live_status(self):
        c = self.cluster
        job = c.cli("run", c.write_job("metrics.yaml", JOB.format(dir=c.dir)), check=True).stdout.strip()
        c.wait_state(job, "RUNNING")
        tms = json.loads(c.cli("taskmanagers", "--json", check=True).stdout)["taskmanagers"]
        addresses = {t["tm_id"]: t["metrics_address"] for t in tms}
        self.assertEqual(len(addresses), 2)
        self.assertTrue(all(re.match(r"127\.0\.0\.1:\d+$", a) for a in addresses.values()), addresses)

        def merged():
            m = {}
            for a in addresses.values():
                m.update(scrape(a))
            return m

        def ready():
            m = merged()
            committed = values(m, "weir_file_sink_committed_files_total", job=job, vertex="out")
            rates = values(m, "weir_task_records_in_per_second", job=job, vertex="gen")
            return m if committed and sum(committed) > 0 and rates and min(rates) > 0 else None
        m = wait_for(ready, 30, "committed files and non-zero rates in /metrics")
        for tm_id in addresses:
            # Every process reports itself, and every subtask has its four labels.
            self.assertGreater(values(m, "weir_process_resident_memory_bytes", tm=tm_id)[0], 1e6)
            self.assertGreater(values(m, "weir_process_threads", tm=tm_id)[0], 2)
            self.assertGreater(values(m, "weir_process_open_fds", tm=tm_id)[0], 2)
        for sub in (0, 1):
            for vertex in ("gen", "count"):
                for name in ("weir_task_records_in_total", "weir_task_records_out_total",
                             "weir_task_busy_time_ms_per_second",
                             "weir_task_backpressured_time_ms_per_second",
                             "weir_task_idle_time_ms_per_second", "weir_task_input_buffer_usage"):
                    self.assertEqual(len(values(m, name, job=job, vertex=vertex, subtask=sub)), 1,
                                     (name, vertex, sub))
            self.assertGreater(values(m, "weir_task_bytes_out_total", job=job, vertex="gen", subtask=sub)[0], 0)
            self.assertGreater(values(m, "weir_task_bytes_in_total", job=job, vertex="count", subtask=sub)[0], 0)
        # Operators' own metrics, labelled with their vertex (count and out are one chain).
        self.assertEqual(len(values(m, "weir_rocksdb_live_data_bytes", job=job, vertex="count")), 2)
        self.assertEqual(len(values(m, "weir_rocksdb_block_cache_bytes", job=job, vertex="count")), 2)
        self.assertGreater(sum(values(m, "weir_state_entries", job=job, vertex="count")), 0)
        self.assertEqual(len(values(m, "weir_file_sink_open_writers", job=job, vertex="out")), 2)
        self.assertGreater(sum(values(m, "weir_file_sink_committed_bytes_total", job=job, vertex="out")), 0)

        # weir status --json: the same live figures through the job manager.
        def live():
            info = c.job(job)
            gens = [s for s in info["subtasks"] if s["task_id"] == "gen"]
            ok = all(s["metrics"]["records_out_per_second"] > 1000 for s in gens)
            return info if ok else None
        info = wait_for(live, 20, "live rates in weir status --json")
        for s in info["subtasks"]:
            self.assertGreater(int(s["records_in"]), 0, s)
            busy = s["metrics"]["busy_ms_per_second"] + s["metrics"]["idle_ms_per_second"] + \
                s["metrics"]["backpressured_ms_per_second"]
            self.assertAlmostEqual(busy, 1000, delta=1, msg=s)
        self.assertEqual([t["task_id"] for t in info["plan"]], ["gen", "count"])

        # --watch refreshes every second until stopped (here: until the job is cancelled).
        watch = subprocess.Popen([CLI_BIN, "-m", c.jm, "status", job, "--watch", "--json"],
                                 stdout=subprocess.PIPE, text=True)
        try:
            lines = [watch.stdout.readline() for _ in range(3)]
            docs = [json.loads(l) for l in lines]
            self.assertGreaterEqual(len({d["subtasks"][0]["metrics"]["sample_time_ms"] for d in docs}), 2,
                                    "the figures move between refreshes")
            c.cli("cancel", job, check=True)
            watch.wait(timeout=20)  # it ends when the job does
            self.assertEqual(watch.returncode, 0)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
            watch.stdout.close()

    def test_run_wait_shows_one_progress_line_on_a_terminal(self):
        c = self.cluster
        job_file = c.write_job("bounded.yaml", """
name: bounded
checkpointing: {interval: 300ms}
vertices:
  - {id: gen, type: datagen, parallelism: 1, config: {total: 60000, rows_per_second: 20000, fields: [{name: x, expr: "id"}]}}
  - {id: sink, type: blackhole, parallelism: 1}
edges:
  - {from: gen, to: sink}
""")
        # stderr on a pseudo-terminal: the progress line is drawn there; stdout keeps the id.
        controller, terminal = pty.openpty()
        p = subprocess.Popen([CLI_BIN, "-m", c.jm, "run", job_file, "--wait", "--timeout", "60"],
                             stdout=subprocess.PIPE, stderr=terminal, text=True)
        os.close(terminal)
        out, _ = p.communicate(timeout=90)
        screen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        os.close(controller)
        self.assertEqual(p.returncode, 0, screen)
        self.assertRegex(out.strip(), r"^[0-9a-f]+$")
        text = screen.decode()
        updates = [u for u in text.replace("\n", "\r").split("\r") if u.strip()]
        self.assertGreaterEqual(len(updates), 2, text)  # the line was redrawn in place
        self.assertRegex(updates[-1], r"FINISHED +60000 records", updates)
        self.assertTrue(any(re.search(r"RUNNING +\d+ records, [1-9]\d* rec/s", u) for u in updates), text)
        self.assertTrue(any("checkpoint " in u for u in updates), text)


if __name__ == "__main__":
    unittest.main()
