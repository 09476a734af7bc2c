// The Kafka source and sink against an in-process librdkafka mock cluster: config validation,
// the assignment rule, reading every record exactly once across subtasks, snapshot and restore
// at another parallelism, commit on checkpoint completion, out-of-range handling, per-partition
// watermarks, and the sink's flush at the barrier and its delivery errors.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "weir/builtins.h"
#include "weir/kafka.h"
#include "weir/operator.h"

namespace weir {
namespace {

// Only guards against a hung test: nothing below depends on how long anything takes.
constexpr auto kHangGuard = std::chrono::seconds(60);

Config Cfg(const std::string& yaml) {
  auto c = Config::Parse(yaml, "config");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

Status ValidateSource(const std::string& yaml) {
  return BuiltinOperators().Find("kafka")->Validate(Cfg(yaml), Schema()).status();
}

// One mock cluster per test, with its own producer for test data.
class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ASSERT_NE(owner_, nullptr) << err;
    mc_ = rd_kafka_mock_cluster_new(owner_, 1);
    ASSERT_NE(mc_, nullptr);
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(mc_);
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof err);
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ASSERT_NE(producer_, nullptr) << err;
  }

  void TearDown() override {
    if (producer_) rd_kafka_destroy(producer_);
    if (mc_) rd_kafka_mock_cluster_destroy(mc_);
    if (owner_) rd_kafka_destroy(owner_);
  }

  void CreateTopic(const std::string& name, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(mc_, name.c_str(), partitions, 1), 0);
    for (int p = 0; p < partitions; ++p) {
      ASSERT_EQ(rd_kafka_mock_partition_set_leader(mc_, name.c_str(), p, 1), 0);
    }
  }

  // Produces ids [from, to) as values "<id>" round-robin over `partitions` partitions, with
  // timestamps ts_base + id.
  void Produce(const std::string& topic, int partitions, int from, int to, int64_t ts_base = 0) {
    for (int id = from; id < to; ++id) {
      std::string v = std::to_string(id);
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(id % partitions),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(v.data(), v.size()),
          RD_KAFKA_V_KEY(v.data(), v.size()), RD_KAFKA_V_TIMESTAMP(ts_base ? ts_base + id : 0),
          RD_KAFKA_V_END);
      ASSERT_EQ(err, 0) << rd_kafka_err2str(err);
      rd_kafka_poll(producer_, 0);
    }
    ASSERT_EQ(rd_kafka_flush(producer_, 30000), 0);
  }

  std::string SourceYaml(const std::string& topic, const std::string& group,
                         const std::string& extra = "") {
    return "{bootstrap: '" + bootstrap_ + "', topics: [" + topic + "], group_id: " + group +
           ", partition_discovery_interval: 200ms" + extra + "}";
  }

  rd_kafka_t* owner_ = nullptr;
  rd_kafka_mock_cluster_t* mc_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  std::string bootstrap_;
};

struct Subtask {
  std::unique_ptr<SourceOperator> op;
  OperatorContext ctx;
  RestoredState restored;
};

std::unique_ptr<Subtask> OpenSource(const std::string& yaml, int subtask, int parallelism,
                                    const std::vector<proto::NamedList>* restore = nullptr,
                                    const WatermarkStrategy* wm = nullptr) {
  auto s = std::make_unique<Subtask>();
  auto op = BuiltinOperators().Find("kafka")->CreateSource(Cfg(yaml));
  EXPECT_TRUE(op.ok()) << op.status().ToString();
  s->op = std::move(op).value();
  s->ctx.job_id = "job";
  s->ctx.vertex_id = "src";
  s->ctx.subtask = subtask;
  s->ctx.parallelism = parallelism;
  s->ctx.log_prefix = "job=job vertex=src subtask=" + std::to_string(subtask) + "/" +
                      std::to_string(parallelism);
  s->ctx.watermarks = wm;
  if (restore) {
    s->restored.operator_state = *restore;
    s->ctx.restored = &s->restored;
  }
  Status st = s->op->Open(s->ctx);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

struct Rec {
  std::string value;
  int64_t partition, offset, ts;
};

// Polls every subtask until `want` records arrived in total (or the guard fires).
std::vector<std::vector<Rec>> Drain(std::vector<std::unique_ptr<Subtask>>& subs, size_t want) {
  std::vector<std::vector<Rec>> out(subs.size());
  size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  RowBatch batch;
  while (got < want && std::chrono::steady_clock::now() < deadline) {
    for (size_t i = 0; i < subs.size(); ++i) {
      batch.Clear();
      auto r = subs[i]->op->Poll(batch, 1024);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return out;
      for (size_t k = 0; k < batch.size(); ++k) {
        const Row& row = batch[k];
        out[i].push_back({row[1].s, row[3].i, row[4].i, row[5].is_null() ? -1 : row[5].i});
        ++got;
      }
    }
  }
  EXPECT_EQ(got, want);
  return out;
}

// Merges the subtasks' snapshots as the job manager does for UNION lists.
std::vector<proto::NamedList> SnapshotAll(std::vector<std::unique_ptr<Subtask>>& subs,
                                          int64_t checkpoint) {
  proto::NamedList merged;
  for (auto& s : subs) {
    OperatorSnapshot snap;
    EXPECT_TRUE(s->op->Snapshot(checkpoint, &snap).ok());
    // The offsets (UNION) and the reconciliation counters (SPLIT, see record_counters.h).
    EXPECT_EQ(snap.operator_state.size(), 2u);
    EXPECT_EQ(snap.counts.count("read"), 1u);
    for (const auto& l : snap.operator_state) {
      if (l.name() == "_counts") continue;
      EXPECT_EQ(l.mode(), proto::NamedList::UNION);
      merged.set_name(l.name());
      merged.set_mode(l.mode());
      for (const auto& e : l.entries()) merged.add_entries(e);
    }
  }
  return {merged};
}

TEST(KafkaConfig, ErrorsNameTheKey) {
  auto has = [](const Status& st, const std::string& what) {
    return !st.ok() && st.message().find(what) != std::string::npos;
  };
  EXPECT_TRUE(has(ValidateSource("{topics: [t], group_id: g}"), "config.bootstrap: required"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', group_id: g}"), "config.topics"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t], topic_pattern: 'a.*', group_id: g}"),
                  "config.topics"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t]}"), "config.group_id: required"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t], group_id: g, start: newest}"),
                  "config.start: expected earliest, latest, group or specific, got 'newest'"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topic_pattern: '(', group_id: g}"),
                  "config.topic_pattern"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t], group_id: g, "
                                 "properties: {fetch.wait.max.msec: 10}}"),
                  "config.properties.fetch.wait.max.msec: No such configuration property"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t], group_id: g, "
                                 "properties: {group.id: x}}"),
                  "config.properties.group.id: set by Weir; use group_id"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t], group_id: g, start: specific}"),
                  "config.offsets: required"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t], group_id: g, start: specific, "
                                 "offsets: {t: 3}}"),
                  "config.offsets.t"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t], group_id: g, "
                                 "on_offset_out_of_range: skip}"),
                  "config.on_offset_out_of_range"));
  EXPECT_TRUE(has(ValidateSource("{bootstrap: 'x:1', topics: [t], group_id: g, typo: 1}"), "typo"));
  auto ok = BuiltinOperators().Find("kafka")->Validate(
      Cfg("{bootstrap: 'x:1', topics: [t], group_id: g, start: specific, offsets: {'t/0': 5}, "
          "properties: {fetch.wait.max.ms: 50}}"),
      Schema());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->ToString(),
            "key:string, value:string, topic:string, partition:int64, offset:int64, "
            "timestamp:timestamp");

  Schema in;
  in.Add("id", Type::kInt64);
  in.Add("name", Type::kString);
  const OperatorFactory* sink = BuiltinOperators().Find("kafka_sink");
  EXPECT_TRUE(has(sink->Validate(Cfg("{topic: t}"), in).status(), "config.bootstrap: required"));
  EXPECT_TRUE(has(sink->Validate(Cfg("{bootstrap: 'x:1', topic: t, key: [nope]}"), in).status(),
                  "config.key: no field 'nope'"));
  EXPECT_TRUE(has(sink->Validate(Cfg("{bootstrap: 'x:1', topic: t, value: raw, value_field: id}"), in)
                      .status(),
                  "config.value_field: 'id' must be a string or bytes field"));
  EXPECT_TRUE(has(sink->Validate(Cfg("{bootstrap: 'x:1', topic: t, properties: {lingr.ms: 5}}"), in)
                      .status(),
                  "config.properties.lingr.ms"));
  EXPECT_TRUE(sink->Validate(Cfg("{bootstrap: 'x:1', topic: t, key: [id]}"), in).ok());
}

TEST(KafkaAssignment, StableAndBalanced) {
  for (int p : {1, 2, 3, 4, 7}) {
    std::map<int, int> per_subtask;
    for (int32_t part = 0; part < 84; ++part) {
      const int owner = KafkaPartitionOwner("orders", part, p);
      ASSERT_GE(owner, 0);
      ASSERT_LT(owner, p);
      EXPECT_EQ(owner, KafkaPartitionOwner("orders", part, p));
      ++per_subtask[owner];
      // Round-robin within a topic: consecutive partitions go to consecutive subtasks.
      EXPECT_EQ(KafkaPartitionOwner("orders", part + 1, p), (owner + 1) % p);
    }
    for (const auto& [s, n] : per_subtask) EXPECT_EQ(n, 84 / p) << "subtask " << s;
  }
  // Different topics start at different subtasks (so small topics spread out).
  std::set<int> starts;
  for (const char* t : {"a", "b", "c", "orders", "payments", "clicks"}) {
    starts.insert(KafkaPartitionOwner(t, 0, 8));
  }
  EXPECT_GT(starts.size(), 2u);
}

TEST_F(KafkaTest, EveryRecordOnceAcrossSubtasksThenRestoreAtAnotherParallelism) {
  CreateTopic("t", 4);
  Produce("t", 4, 0, 2000);
  const std::string yaml = SourceYaml("t", "g1", ", start: earliest");
  std::vector<std::unique_ptr<Subtask>> subs;
  for (int i = 0; i < 2; ++i) subs.push_back(OpenSource(yaml, i, 2));
  auto first = Drain(subs, 2000);
  std::set<std::pair<int64_t, int64_t>> seen;
  std::set<std::string> values;
  for (int i = 0; i < 2; ++i) {
    for (const Rec& r : first[i]) {
      EXPECT_EQ(KafkaPartitionOwner("t", static_cast<int32_t>(r.partition), 2), i);
      EXPECT_TRUE(seen.insert({r.partition, r.offset}).second) << "duplicate " << r.partition << "/"
                                                               << r.offset;
      values.insert(r.value);
    }
  }
  EXPECT_EQ(values.size(), 2000u);
  auto state = SnapshotAll(subs, 1);
  subs.clear();

  // More records after the checkpoint; a restore at parallelism 3 reads exactly those.
  Produce("t", 4, 2000, 3000);
  std::vector<std::unique_ptr<Subtask>> again;
  for (int i = 0; i < 3; ++i) again.push_back(OpenSource(yaml, i, 3, &state));
  auto second = Drain(again, 1000);
  for (int i = 0; i < 3; ++i) {
    for (const Rec& r : second[i]) {
      EXPECT_EQ(KafkaPartitionOwner("t", static_cast<int32_t>(r.partition), 3), i);
      EXPECT_TRUE(seen.insert({r.partition, r.offset}).second);
      EXPECT_GE(std::stoi(r.value), 2000);
      values.insert(r.value);
    }
  }
  EXPECT_EQ(values.size(), 3000u);
  // Nothing more comes.
  RowBatch batch;
  for (int k = 0; k < 20; ++k) {
    for (auto& s : again) {
      batch.Clear();
      ASSERT_TRUE(s->op->Poll(batch, 1024).ok());
      EXPECT_EQ(batch.size(), 0u);
    }
  }
}

// State written before versioned operator state (savepoints up to 2026-11-30): the
// "kafka_offsets" list of NUL-joined text entries still restores; new snapshots are "kafka@v1".
TEST_F(KafkaTest, RestoresTheOffsetsOfSavepointsMadeBeforeVersionedState) {
  CreateTopic("old", 2);
  Produce("old", 2, 0, 100);
  proto::NamedList legacy;
  legacy.set_name("kafka_offsets");
  legacy.set_mode(proto::NamedList::UNION);
  // Partition 0 was read up to offset 20, partition 1 up to 30; one subtask of one had started.
  legacy.add_entries(std::string("p1\0old\0" "0\0" "20", 11));
  legacy.add_entries(std::string("p1\0old\0" "1\0" "30", 11));
  legacy.add_entries(std::string("s1\0" "0\0" "1\0" "1", 8));
  std::vector<proto::NamedList> state{legacy};
  std::vector<std::unique_ptr<Subtask>> subs;
  subs.push_back(OpenSource(SourceYaml("old", "g-legacy", ", start: earliest"), 0, 1, &state));
  auto got = Drain(subs, 50);  // (50 - 20) + (50 - 30) records are left
  std::map<int64_t, int64_t> first;
  for (const Rec& r : got[0]) {
    if (!first.count(r.partition)) first[r.partition] = r.offset;
  }
  EXPECT_EQ(first[0], 20);
  EXPECT_EQ(first[1], 30);
  auto snap = SnapshotAll(subs, 1);
  ASSERT_FALSE(snap.empty());
  EXPECT_EQ(snap[0].name(), "kafka@v1");
}

TEST_F(KafkaTest, TopicPatternDiscoversNewTopicsAndReadsThemFromTheStart) {
  CreateTopic("disc-a", 2);
  CreateTopic("other", 1);
  Produce("disc-a", 2, 0, 100);
  Produce("other", 1, 0, 10);
  std::vector<std::unique_ptr<Subtask>> subs;
  subs.push_back(OpenSource("{bootstrap: '" + bootstrap_ + "', topic_pattern: 'disc-.*', "
                            "group_id: g-disc, start: latest, partition_discovery_interval: 100ms}",
                            0, 1));
  // start: latest: what was there before is skipped; what comes after is read. Waits until
  // both partitions are assigned (they show in the snapshot) before producing more.
  RowBatch batch;
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  int entries = 0;
  while (entries < 3 && std::chrono::steady_clock::now() < deadline) {
    batch.Clear();
    ASSERT_TRUE(subs[0]->op->Poll(batch, 1024).ok());
    EXPECT_EQ(batch.size(), 0u);
    OperatorSnapshot snap;
    ASSERT_TRUE(subs[0]->op->Snapshot(1, &snap).ok());
    entries = snap.operator_state[0].entries_size();  // 2 partitions + the subtask entry
  }
  ASSERT_EQ(entries, 3);
  Produce("disc-a", 2, 100, 110);
  EXPECT_EQ(Drain(subs, 10)[0].size(), 10u);
  // A topic that appears later and matches is read from its earliest offset, records produced
  // before the source noticed it included; "other" never is.
  CreateTopic("disc-b", 3);
  Produce("disc-b", 3, 1000, 1030);
  auto got = Drain(subs, 30);
  std::set<std::string> vals;
  for (const Rec& r : got[0]) vals.insert(r.value);
  EXPECT_EQ(vals.size(), 30u);
  EXPECT_EQ(*vals.begin(), "1000");
}

TEST_F(KafkaTest, CommitsOffsetsOfACompletedCheckpointToTheGroup) {
  CreateTopic("c", 2);
  Produce("c", 2, 0, 100);
  std::vector<std::unique_ptr<Subtask>> subs;
  subs.push_back(OpenSource(SourceYaml("c", "g-commit", ", start: earliest"), 0, 1));
  Drain(subs, 100);
  OperatorSnapshot snap;
  ASSERT_TRUE(subs[0]->op->Snapshot(7, &snap).ok());
  Produce("c", 2, 100, 110);
  Drain(subs, 10);
  // Checkpoint 7 held 50/50; what was read after it is not committed.
  subs[0]->op->NotifyCheckpointComplete(7);

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "g-commit", err, sizeof err);
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  ASSERT_NE(c, nullptr);
  std::vector<int64_t> committed;
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  RowBatch batch;
  while (std::chrono::steady_clock::now() < deadline) {
    batch.Clear();
    ASSERT_TRUE(subs[0]->op->Poll(batch, 1024).ok());  // serves the commit
    rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, "c", 0);
    rd_kafka_topic_partition_list_add(l, "c", 1);
    ASSERT_EQ(rd_kafka_committed(c, l, 10000), 0);
    committed = {l->elems[0].offset, l->elems[1].offset};
    rd_kafka_topic_partition_list_destroy(l);
    if (committed[0] >= 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(committed, (std::vector<int64_t>{50, 50}));
  rd_kafka_destroy(c);

  // start: group resumes from the committed offsets.
  subs.clear();
  subs.push_back(OpenSource(SourceYaml("c", "g-commit", ""), 0, 1));
  auto rest = Drain(subs, 10);
  std::set<std::string> vals;
  for (const Rec& r : rest[0]) vals.insert(r.value);
  EXPECT_EQ(vals.size(), 10u);
  EXPECT_EQ(*vals.begin(), "100");
}

TEST_F(KafkaTest, OffsetOutOfRangeFailsNamingThePartitionOrSkips) {
  CreateTopic("o", 1);
  Produce("o", 1, 0, 10);
  auto s = OpenSource(SourceYaml("o", "g-oor", ", start: specific, offsets: {'o/0': 500}"), 0, 1);
  RowBatch batch;
  Status failure;
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  while (failure.ok() && std::chrono::steady_clock::now() < deadline) {
    batch.Clear();
    auto r = s->op->Poll(batch, 1024);
    if (!r.ok()) failure = r.status();
  }
  EXPECT_NE(failure.message().find("offset 500 of o/0 is out of range"), std::string::npos)
      << failure.ToString();

  std::vector<std::unique_ptr<Subtask>> subs;
  subs.push_back(OpenSource(SourceYaml("o", "g-oor2", ", start: specific, offsets: {'o/0': 500}, "
                                                      "on_offset_out_of_range: earliest"),
                            0, 1));
  auto got = Drain(subs, 10);
  EXPECT_EQ(got[0].size(), 10u);
}

TEST_F(KafkaTest, WatermarksPerPartitionFromTheRecordTimestamp) {
  CreateTopic("w", 2);
  // Partition 0 gets even ids, partition 1 odd ones, timestamps 1e12 + id.
  Produce("w", 2, 0, 100, 1000000000000);
  WatermarkStrategy wm;
  wm.event_time_field = "timestamp";
  wm.max_out_of_orderness_ms = 10;
  std::vector<std::unique_ptr<Subtask>> subs;
  subs.push_back(OpenSource(SourceYaml("w", "g-wm", ", start: earliest"), 0, 1, nullptr, &wm));
  ASSERT_TRUE(subs[0]->op->TracksWatermarks());
  Drain(subs, 100);
  // max per partition: 98 and 99; watermark = min(98, 99) - 10 - 1.
  EXPECT_EQ(subs[0]->op->CurrentWatermark(0).watermark, 1000000000000 + 98 - 11);

  // Another event-time field: the task tracks it, not the source.
  WatermarkStrategy other = wm;
  other.event_time_field = "ts";
  auto s2 = OpenSource(SourceYaml("w", "g-wm2", ", start: earliest"), 0, 1, nullptr, &other);
  EXPECT_FALSE(s2->op->TracksWatermarks());
}

TEST_F(KafkaTest, SinkFlushesAtTheBarrierAndDeclinesOnDeliveryErrors) {
  CreateTopic("out", 3);
  Schema in;
  in.Add("id", Type::kInt64);
  in.Add("name", Type::kString);
  const OperatorFactory* f = BuiltinOperators().Find("kafka_sink");
  Config cfg = Cfg("{bootstrap: '" + bootstrap_ + "', topic: out, key: [id], "
                   "properties: {message.timeout.ms: 2000, retries: 0}}");
  ASSERT_TRUE(f->Validate(cfg, in).ok());
  auto op = f->Create(cfg, in);
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  OperatorContext ctx;
  ctx.vertex_id = "out";
  ctx.log_prefix = "job=j vertex=out subtask=0/1";
  ASSERT_TRUE((*op)->Open(ctx).ok());
  struct NoOutput : Output {
    Status Emit(RowBatch&) override { return Status::Ok(); }
  } none;
  RowBatch batch;
  for (int i = 0; i < 300; ++i) {
    Row& r = batch.Append(2);
    r[0].SetInt64(i);
    r[1].SetString("n" + std::to_string(i));
  }
  ASSERT_TRUE((*op)->Process(batch, none).ok());
  OperatorSnapshot snap;
  Status st = (*op)->Snapshot(1, &snap);
  ASSERT_TRUE(st.ok()) << st.ToString();

  // Everything is in the topic, keyed by id, as JSON.
  std::vector<std::unique_ptr<Subtask>> subs;
  subs.push_back(OpenSource("{bootstrap: '" + bootstrap_ +
                                "', topics: [out], group_id: g-sink, start: earliest}",
                            0, 1));
  RowBatch got;
  std::set<std::string> values;
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  while (values.size() < 300 && std::chrono::steady_clock::now() < deadline) {
    got.Clear();
    ASSERT_TRUE(subs[0]->op->Poll(got, 1024).ok());
    for (size_t i = 0; i < got.size(); ++i) {
      const std::string& key = got[i][0].s;
      EXPECT_EQ(got[i][1].s, "{\"id\":" + key + ",\"name\":\"n" + key + "\"}");
      values.insert(got[i][1].s);
    }
  }
  EXPECT_EQ(values.size(), 300u);

  // Produce requests now fail with a non-retriable error: the next barrier is declined and
  // the next batch fails the task.
  std::vector<rd_kafka_resp_err_t> errs(50, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  rd_kafka_mock_push_request_errors_array(mc_, 0 /* Produce */, errs.size(), errs.data());
  ASSERT_TRUE((*op)->Process(batch, none).ok());
  st = (*op)->Snapshot(2, &snap);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("kafka_sink: delivery to out/"), std::string::npos) << st.ToString();
  EXPECT_FALSE((*op)->Process(batch, none).ok());
  EXPECT_TRUE((*op)->Close().ok());
}

}  // namespace
}  // namespace weir
