"""The seeds' pipeline with real processes: JSON events (some malformed) in a Kafka topic on
the dev broker -> parse -> exactly-once event-time partitioned files, with two task manager
kills mid-run. Every good event is committed exactly once, every malformed one is in the dirty
output exactly once with its reason and origin, the group's offsets reach the end of the topic,
and the reconciliation balances: read == committed + late + dirty."""
import collections
import json
import os
import time
import unittest

from harness import Cluster, committed_rows, test_failed, wait_for
from kafka_harness import DevBroker
from metrics_test import scrape, values

JOB = """
name: kafka-to-hive
max_parallelism: 64
checkpointing: {{interval: 500ms, dir: {dir}/checkpoints, retained: 2}}
restart_strategy: {{type: fixed-delay, attempts: -1, delay: 200ms}}
vertices:
  - id: src
    type: kafka
    parallelism: 2
    config: {{bootstrap_file: {bootstrap_file}, topics: [events], group_id: etl, start: earliest}}
  - id: parse
    type: parse
    parallelism: 2
    config:
      format: json
      fields:
        - {{name: id, type: int64}}
        - {{name: event_time, type: timestamp}}
        - {{name: app, type: string}}
        - {{name: user, type: int64, path: user.id}}
        - {{name: amount, type: double}}
      keep: [partition, offset]
      record_id: true
      dirty: {{path: {dir}/dirty}}
    watermarks: {{event_time_field: event_time, max_out_of_orderness: 1h, interval: 50ms}}
  - id: out
    type: committing_file
    parallelism: 2
    config:
      path: {dir}/out
      partition: "dt={{event_time:%Y-%m-%d}}/hour={{event_time:%H}}/app={{app}}"
edges:
  - {{from: src, to: parse}}
  - {{from: parse, to: out, partition: rebalance}}
"""

TOTAL = 30000
BAD_EVERY = 50


class EtlTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(taskmanagers=3, slots=2, jm_args=["--heartbeat-timeout-ms", "3000"])
        self.broker = DevBroker(brokers=1, topics=[("events", 4)], workdir=self.cluster.dir)

    def tearDown(self):
        failed = test_failed(self)
        if failed:
            import sys
            sys.stderr.write(f"----- dev broker -----\n{self.broker.log()}\n")
        self.broker.stop()
        self.cluster.cleanup(dump_logs=failed)

    def test_kafka_parse_partitioned_files_exactly_once_through_kills(self):
        c = self.cluster
        producer = self.broker.produce_events("events", TOTAL, bad_every=BAD_EVERY, rate=6000)
        text = JOB.format(dir=c.dir, bootstrap_file=self.broker.bootstrap_file)
        job = c.cli("run", c.write_job("etl.yaml", text), check=True).stdout.strip()
        out, dirty = os.path.join(c.dir, "out"), os.path.join(c.dir, "dirty")
        for victim in ("tm-1", "tm-2"):
            time.sleep(1.5)
            c.kill(victim)
            time.sleep(0.3)
            c.start_tm(victim)
        _, err = producer.communicate(timeout=120)
        self.assertEqual(producer.returncode, 0, err)
        bad = {i for i in range(TOTAL) if i % BAD_EVERY == BAD_EVERY - 1}
        good = TOTAL - len(bad)

        def done():
            return (len(committed_rows(out)) + len(committed_rows(os.path.join(out, "_late")))
                    >= good and len(committed_rows(dirty)) >= len(bad))
        wait_for(done, 120, "every event committed", interval=0.5)
        time.sleep(1.2)  # a couple more checkpoints: anything beyond would be a duplicate

        rows = committed_rows(out) + committed_rows(os.path.join(out, "_late"))
        ids = collections.Counter(r["id"] for r in rows)
        self.assertFalse([i for i, n in ids.items() if n > 1], "events committed twice")
        self.assertEqual(set(ids), set(range(TOTAL)) - bad)
        for r in rows[:1000]:
            self.assertEqual(r["record_id"], f"events/{r['partition']}/{r['offset']}")
        d = committed_rows(dirty)
        origins = collections.Counter((r["partition"], r["offset"]) for r in d)
        self.assertFalse([o for o, n in origins.items() if n > 1], "dirty records written twice")
        self.assertEqual(len(d), len(bad))
        reasons = collections.Counter(r["reason"].split(":")[0] for r in d)
        self.assertEqual(sum(reasons.values()), len(bad), reasons)
        self.assertTrue(any("invalid JSON" in r["reason"] for r in d))
        self.assertTrue(any("field 'amount': cannot convert 'n/a' to double" in r["reason"] for r in d))
        self.assertTrue(any("missing field 'event_time'" in r["reason"] for r in d))
        bad_ids = {json.loads(r["raw"])["id"] for r in d if not r["reason"].startswith("invalid JSON")}
        self.assertTrue(bad_ids <= bad)

        # Offsets: the group's committed offsets reach the end of every partition.
        ends = {p: hi for p, (lo, hi) in self.broker.offsets("events").items()}
        wait_for(lambda: self.broker.committed("etl", "events") == ends, 20,
                 "the group's offsets to reach the end of the topic")
        # The task managers' /metrics: per-partition lag 0 at the end of the topic, and the
        # high watermark librdkafka saw equals the end.
        tms = json.loads(c.cli("taskmanagers", "--json", check=True).stdout)["taskmanagers"]

        def caught_up():
            m = {}
            for t in tms:
                m.update(scrape(t["metrics_address"]))
            lags = {dict(k[1])["partition"]: v for k, v in m.items()
                    if k[0] == "weir_kafka_consumer_lag" and dict(k[1]).get("job") == job}
            return m if len(lags) == 4 and all(v == 0 for v in lags.values()) else None
        m = wait_for(caught_up, 20, "kafka lag 0 on every partition in /metrics")
        for p, hi in ends.items():
            self.assertEqual(values(m, "weir_kafka_partition_high_watermark", job=job, topic="events",
                                    partition=p), [hi])
        self.assertEqual(sum(values(m, "weir_kafka_partitions_assigned", job=job, vertex="src")), 4)
        # Reconciliation of the latest checkpoint: nothing read is unaccounted for.
        info = c.job(job)
        counts = {k: int(v) for k, v in info["checkpoints"]["latest_completed"]["counts"].items()}
        self.assertEqual(counts.get("read"), TOTAL, counts)
        self.assertEqual(counts.get("committed", 0) + counts.get("late", 0) + counts.get("dirty", 0),
                         TOTAL, counts)
        self.assertEqual(counts.get("dirty"), len(bad), counts)
        status = c.cli("status", job, check=True).stdout
        self.assertIn("(balanced)", status)
        self.assertGreaterEqual(info["restarts"], 1)
        c.cli("cancel", job, check=True)


if __name__ == "__main__":
    unittest.main()
