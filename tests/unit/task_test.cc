// Runs real Tasks in one process (local channels) and checks their output files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "weir/builtins.h"
#include "weir/connectors.h"
#include "weir/job_graph.h"
#include "weir/network.h"
#include "weir/task.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

class TaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("weir-task-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs every subtask of the job on its own thread; returns the final states.
  std::vector<TaskState> RunJob(
      const std::string& yaml, std::vector<std::string>* errors = nullptr,
      std::function<void(std::vector<std::unique_ptr<Task>>&)> during = {},
      std::function<void(TaskSetup&)> customize = {}, int64_t* side_dropped = nullptr) {
    auto spec = ParseJobFile(yaml);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    auto plan = BuildPlan(std::move(spec).value(), *registry_);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    auto shared = std::make_shared<const ExecutionPlan>(std::move(plan).value());
    NetworkEnvironment net;
    std::vector<std::unique_ptr<Task>> tasks;
    std::mutex mu;
    for (size_t t = 0; t < shared->tasks.size(); ++t) {
      for (int i = 0; i < shared->tasks[t].parallelism; ++i) {
        TaskSetup s;
        s.job_id = "job";
        s.plan = shared;
        s.task_index = static_cast<int>(t);
        s.subtask = i;
        s.network = &net;
        s.registry = registry_;
        s.local_dir = (dir_ / ".state" / (shared->tasks[t].id + "-" + std::to_string(i))).string();
        s.locate = [](const std::string&, int) { return PeerLocation{true, ""}; };
        s.on_state = [&mu, errors](TaskState st, const Status& err) {
          if (st == TaskState::kFailed && errors) {
            std::lock_guard<std::mutex> lock(mu);
            errors->push_back(err.ToString());
          }
        };
        if (customize) customize(s);
        tasks.push_back(std::make_unique<Task>(std::move(s)));
      }
    }
    std::vector<std::thread> threads;
    for (auto& t : tasks) threads.emplace_back([&t] { t->Run(); });
    if (during) during(tasks);
    for (auto& th : threads) th.join();
    std::vector<TaskState> states;
    for (auto& t : tasks) states.push_back(t->state());
    if (side_dropped) {
      *side_dropped = 0;
      for (auto& t : tasks) *side_dropped += t->metrics().side_records_dropped.load();
    }
    return states;
  }

  std::vector<std::string> ReadLines() {
    std::vector<std::string> lines;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::ifstream in(e.path());
      std::string line;
      while (std::getline(in, line)) lines.push_back(line);
    }
    return lines;
  }

  fs::path dir_;
  const OperatorRegistry* registry_ = &BuiltinOperators();
};

TEST_F(TaskTest, ChainedMapFilterProjectWritesExactlyTheMatchingRows) {
  const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, parallelism: 1, config: {total: 10000}}
  - {id: m, type: map, config: {keep_input: true, fields: [{name: sq, expr: "id * id"}, {name: tag, expr: "concat('t', id % 3)"}]}}
  - {id: f, type: filter, config: {where: "id % 10 = 3 and tag != 't0'"}}
  - {id: p, type: project, config: {fields: [tag, id]}}
  - {id: out, type: file, config: {path: ")Y" + dir_.string() + R"Y("}}
edges:
  - {from: gen, to: m}
  - {from: m, to: f}
  - {from: f, to: p}
  - {from: p, to: out}
)Y";
  auto states = RunJob(yaml);
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0], TaskState::kFinished);
  auto lines = ReadLines();
  int expected = 0;
  for (int id = 0; id < 10000; ++id) expected += (id % 10 == 3 && id % 3 != 0);
  EXPECT_EQ(static_cast<int>(lines.size()), expected);
  EXPECT_EQ(lines[0], R"Y({"tag":"t1","id":13})Y");
}

TEST_F(TaskTest, HashShuffleToKeyedCountIsExact) {
  const std::string yaml = R"Y(
max_parallelism: 32
vertices:
  - {id: gen, type: datagen, parallelism: 3, config: {total: 100000, fields: [{name: k, expr: "id % 97"}]}}
  - {id: agg, type: keyed_aggregate, parallelism: 2, config: {key: [k], emit: final, aggregations: [{fn: count, as: n}, {fn: sum, field: id, as: s}, {fn: max, field: id, as: mx}]}}
  - {id: out, type: file, parallelism: 2, config: {path: ")Y" + dir_.string() + R"Y("}}
edges:
  - {from: gen, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)Y";
  auto states = RunJob(yaml);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 97u);
  std::map<int64_t, std::tuple<int64_t, int64_t, int64_t>> expected;
  for (int64_t id = 0; id < 100000; ++id) {
    auto& [n, s, mx] = expected[id % 97];
    ++n;
    s += id;
    mx = id;
  }
  for (const auto& line : lines) {
    long long k, n, s, mx;
    ASSERT_EQ(sscanf(line.c_str(), R"Y({"k":%lld,"n":%lld,"s":%lld,"mx":%lld})Y", &k, &n, &s, &mx), 4)
        << line;
    auto [en, es, emx] = expected.at(k);
    EXPECT_EQ(n, en);
    EXPECT_EQ(s, es);
    EXPECT_EQ(mx, emx);
  }
}

TEST_F(TaskTest, RebalanceAndBroadcastDeliverEveryRow) {
  const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 5000}}
  - {id: a, type: file, parallelism: 3, config: {path: ")Y" + (dir_ / "a").string() + R"Y("}}
  - {id: b, type: file, parallelism: 2, config: {path: ")Y" + (dir_ / "b").string() + R"Y("}}
  - {id: gen2, type: datagen, parallelism: 1, config: {total: 100}}
edges:
  - {from: gen, to: a, partition: rebalance}
  - {from: gen2, to: b, partition: broadcast}
)Y";
  auto states = RunJob(yaml);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  auto count = [](const fs::path& d) {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(d)) {
      std::ifstream in(e.path());
      std::string line;
      while (std::getline(in, line)) ++n;
    }
    return n;
  };
  EXPECT_EQ(count(dir_ / "a"), 5000u);
  EXPECT_EQ(count(dir_ / "b"), 200u);  // every row to both subtasks
}

TEST_F(TaskTest, UnionOfTwoSourcesIntoAKeyedAggregateCountsEveryRow) {
  // Two edges into one input: a union (equal schemas), aligned and ended as one input.
  const std::string yaml = R"Y(
max_parallelism: 32
vertices:
  - {id: a, type: datagen, parallelism: 2, config: {total: 3000, fields: [{name: k, expr: "id % 5"}]}}
  - {id: b, type: datagen, parallelism: 1, config: {total: 2000, fields: [{name: k, expr: "id % 7"}]}}
  - {id: agg, type: keyed_aggregate, parallelism: 2, config: {key: [k], emit: final, aggregations: [{fn: count, as: n}]}}
  - {id: out, type: file, parallelism: 2, config: {path: ")Y" +
                           dir_.string() + R"Y("}}
edges:
  - {from: a, to: agg, partition: hash, key: [k]}
  - {from: b, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)Y";
  auto states = RunJob(yaml);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  std::map<int64_t, int64_t> expected, got;
  for (int64_t id = 0; id < 3000; ++id) ++expected[id % 5];
  for (int64_t id = 0; id < 2000; ++id) ++expected[id % 7];
  for (const auto& line : ReadLines()) {
    long long k, n;
    ASSERT_EQ(sscanf(line.c_str(), R"Y({"k":%lld,"n":%lld})Y", &k, &n), 2) << line;
    got[k] = n;
  }
  EXPECT_EQ(got, expected);
}

TEST_F(TaskTest, TwoInputJoinGetsEachChannelsRowsAsItsInput) {
  // Left: two sources unioned into input left (different parallelism); right: one source with
  // another schema. Every (left, right) pair with equal keys comes out once, left fields first.
  const std::string yaml = R"Y(
max_parallelism: 32
vertices:
  - {id: l1, type: datagen, parallelism: 2, config: {total: 300, fields: [{name: k, expr: "id % 11"}, {name: tag, expr: "concat('x', id)"}]}}
  - {id: l2, type: datagen, parallelism: 1, config: {total: 100, fields: [{name: k, expr: "id % 13"}, {name: tag, expr: "concat('y', id)"}]}}
  - {id: r, type: datagen, parallelism: 1, config: {total: 50, fields: [{name: rk, expr: "id % 17"}]}}
  - {id: j, type: join, parallelism: 3, config: {left_key: [k], right_key: [rk], state_ttl: 1h}}
  - {id: p, type: project, parallelism: 3, config: {fields: [tag, right_id]}}
  - {id: out, type: file, parallelism: 3, config: {path: ")Y" +
                           dir_.string() + R"Y("}}
edges:
  - {from: l1, to: j, input: left, partition: hash, key: [k]}
  - {from: l2, to: j, input: left, partition: hash, key: [k]}
  - {from: r, to: j, input: right, partition: hash, key: [rk]}
  - {from: j, to: p}
  - {from: p, to: out}
)Y";
  auto states = RunJob(yaml);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  std::multiset<std::string> expected, got;
  for (int64_t r = 0; r < 50; ++r) {
    for (int64_t l = 0; l < 300; ++l) {
      if (l % 11 == r % 17) expected.insert("x" + std::to_string(l) + "/" + std::to_string(r));
    }
    for (int64_t l = 0; l < 100; ++l) {
      if (l % 13 == r % 17) expected.insert("y" + std::to_string(l) + "/" + std::to_string(r));
    }
  }
  for (const auto& line : ReadLines()) {
    char tag[32];
    long long rid;
    ASSERT_EQ(sscanf(line.c_str(), R"Y({"tag":"%31[^"]","right_id":%lld})Y", tag, &rid), 2) << line;
    got.insert(std::string(tag) + "/" + std::to_string(rid));
  }
  EXPECT_EQ(got, expected);
}

TEST_F(TaskTest, CancelStopsAnUnboundedJob) {
  const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {fields: [{name: k, expr: "id % 100"}]}}
  - {id: agg, type: keyed_aggregate, parallelism: 2, config: {key: [k], aggregations: [{fn: count}]}}
  - {id: out, type: blackhole, parallelism: 2}
edges:
  - {from: gen, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)Y";
  auto states = RunJob(yaml, nullptr, [](std::vector<std::unique_ptr<Task>>& tasks) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (auto& t : tasks) t->MarkCancelled();
    for (auto& t : tasks) t->Cancel();
  });
  for (auto s : states) EXPECT_EQ(s, TaskState::kCanceled);
}

TEST_F(TaskTest, UnwritableSinkPathFailsWithTheReason) {
  const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, config: {total: 10}}
  - {id: out, type: file, config: {path: /proc/weir-cannot-write-here}}
edges:
  - {from: gen, to: out}
)Y";
  std::vector<std::string> errors;
  auto states = RunJob(yaml, &errors);
  EXPECT_EQ(states[0], TaskState::kFailed);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("vertex 'out'"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("/proc/weir-cannot-write-here"), std::string::npos) << errors[0];
}

// Checkpoint n through a real chain: sources snapshot their splits, the keyed task aligns
// the barriers of its three input channels and snapshots RocksDB; every subtask acknowledges,
// and no record is lost or counted twice around the barrier.
TEST_F(TaskTest, BarriersAlignAndEverySubtaskAcknowledges) {
  const std::string yaml = R"Y(
max_parallelism: 16
vertices:
  - {id: gen, type: datagen, parallelism: 3, config: {total: 300000, rows_per_second: 300000, fields: [{name: k, expr: "id % 7"}]}}
  - {id: agg, type: keyed_aggregate, parallelism: 2, config: {key: [k], emit: final, aggregations: [{fn: count, as: n}]}}
  - {id: out, type: file, parallelism: 2, config: {path: ")Y" + dir_.string() + R"Y("}}
edges:
  - {from: gen, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)Y";
  std::mutex mu;
  std::vector<proto::AcknowledgeCheckpointRequest> acks;
  std::vector<std::string> declines;
  const std::string root = (dir_ / ".checkpoints").string();
  auto customize = [&](TaskSetup& s) {
    s.on_checkpoint_ack = [&](proto::AcknowledgeCheckpointRequest a) {
      std::lock_guard<std::mutex> lock(mu);
      acks.push_back(std::move(a));
    };
    s.on_checkpoint_decline = [&](int64_t, const std::string& why) {
      std::lock_guard<std::mutex> lock(mu);
      declines.push_back(why);
    };
  };
  auto during = [&](std::vector<std::unique_ptr<Task>>& tasks) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    proto::CheckpointOptions opts;
    opts.set_root(root);
    opts.set_incremental(true);
    for (auto& t : tasks) {
      if (t->log_prefix().find("vertex=gen") != std::string::npos) t->TriggerCheckpoint(1, 0, opts);
    }
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (acks.size() == 5) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto& t : tasks) t->NotifyCheckpoint(1, true);
  };
  auto states = RunJob(yaml, nullptr, during, customize);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  ASSERT_TRUE(declines.empty()) << declines[0];
  ASSERT_EQ(acks.size(), 5u);  // 3 sources + 2 keyed subtasks
  int keyed = 0;
  int splits = 0;
  for (const auto& a : acks) {
    EXPECT_EQ(a.checkpoint_id(), 1);
    for (const auto& os : a.states()) {
      if (os.vertex_id() == "gen") {
        // "splits@v1" (versioned), then the reconciliation counters ("_counts").
        ASSERT_EQ(os.operator_state_size(), 2);
        EXPECT_EQ(os.operator_state(0).name(), "splits@v1");
        splits += os.operator_state(0).entries_size();
      }
      if (os.vertex_id() == "agg") {
        ASSERT_TRUE(os.has_keyed());
        ++keyed;
        for (const auto& f : os.keyed().files()) {
          EXPECT_TRUE(fs::exists(root + "/" + f.path())) << f.path();
        }
      }
    }
  }
  EXPECT_EQ(keyed, 2);
  EXPECT_EQ(splits, 3);
  // The output is still exact: the barrier did not lose or repeat records.
  int64_t total = 0;
  for (const auto& line : ReadLines()) {
    long long k, n;
    ASSERT_EQ(sscanf(line.c_str(), R"Y({"k":%lld,"n":%lld})Y", &k, &n), 2) << line;
    total += n;
  }
  EXPECT_EQ(total, 300000);
}

// Side outputs through real tasks: parse's dirty rows leave its chain on their own edge to an
// explicitly declared committing_file sink (a task of its own); the checkpoint barrier flows on
// that edge too, so the dirty sink acknowledges checkpoint 1 with its pending files, and every
// good and every dirty row lands exactly once. Its counts are reported apart ("_dirty").
TEST_F(TaskTest, SideOutputRowsAndBarriersReachTheirOwnSink) {
  const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 20000, rows_per_second: 40000,
     fields: [{name: value, expr: "if(id % 5 = 4, concat('bad ', id), concat('{\"n\": ', id, '}'))"}]}}
  - {id: p, type: parse, parallelism: 2, config: {format: json, fields: [{name: n, type: int64}]}}
  - {id: out, type: file, parallelism: 2, config: {path: ")Y" +
                           (dir_ / "good").string() + R"Y("}}
  - {id: bad, type: committing_file, parallelism: 1, config: {path: ")Y" +
                           (dir_ / "bad").string() + R"Y("}}
edges:
  - {from: gen, to: p}
  - {from: p, to: out}
  - {from: p.dirty, to: bad, partition: rebalance}
)Y";
  std::mutex mu;
  std::vector<proto::AcknowledgeCheckpointRequest> acks;
  auto customize = [&](TaskSetup& s) {
    s.on_checkpoint_ack = [&](proto::AcknowledgeCheckpointRequest a) {
      std::lock_guard<std::mutex> lock(mu);
      acks.push_back(std::move(a));
    };
  };
  auto during = [&](std::vector<std::unique_ptr<Task>>& tasks) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    proto::CheckpointOptions opts;
    opts.set_root((dir_ / ".checkpoints").string());
    for (auto& t : tasks) {
      if (t->log_prefix().find("vertex=gen") != std::string::npos) t->TriggerCheckpoint(1, 0, opts);
    }
    for (int i = 0; i < 300; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (acks.size() == 3) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto& t : tasks) t->NotifyCheckpoint(1, true);
  };
  auto states = RunJob(yaml, nullptr, during, customize);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  ASSERT_EQ(acks.size(), 3u);  // 2 subtasks of gen -> p -> out, 1 of bad
  bool bad_acked = false;
  for (const auto& a : acks) {
    for (const auto& os : a.states()) {
      if (os.vertex_id() != "bad") continue;
      bad_acked = true;
      EXPECT_EQ(os.counts().count("committed"), 0u) << "a dirty row is not committed output";
      EXPECT_EQ(os.counts().count("committed_dirty"), 1u);
    }
  }
  EXPECT_TRUE(bad_acked);
  auto lines_under = [](const fs::path& d) {
    std::vector<std::string> lines;
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      if (!e.is_regular_file() || e.path().string().find("/.") != std::string::npos) continue;
      std::ifstream in(e.path());
      std::string line;
      while (std::getline(in, line)) lines.push_back(line);
    }
    return lines;
  };
  EXPECT_EQ(lines_under(dir_ / "good").size(), 16000u);
  std::set<std::string> raws;
  const auto bad = lines_under(dir_ / "bad");
  for (const auto& l : bad) {
    const size_t at = l.find("\"raw\":\"bad ");
    ASSERT_NE(at, std::string::npos) << l;
    EXPECT_NE(l.find("\"reason\":\"invalid JSON"), std::string::npos) << l;
    raws.insert(l.substr(at));
  }
  EXPECT_EQ(bad.size(), 4000u);
  EXPECT_EQ(raws.size(), 4000u) << "a dirty row was written twice";
}

// ------------------------------------------------------------------ event time

// A sink that records, per subtask, the event times of its rows and the watermarks it saw, in
// arrival order; it fails if a row is not after a watermark it has already seen (with bound 0
// and in-order sources no row may be late).
struct WatermarkLog {
  std::mutex mu;
  std::vector<int64_t> watermarks;
  int64_t rows = 0;
  int64_t late = 0;
  int64_t processing_ticks = 0;
};
WatermarkLog g_wm_log;

class RecorderSink : public Operator {
 public:
  explicit RecorderSink(int field) : field_(field) {}
  Status Process(RowBatch& batch, Output&) override {
    std::lock_guard<std::mutex> lock(g_wm_log.mu);
    for (size_t i = 0; i < batch.size(); ++i) {
      ++g_wm_log.rows;
      if (batch[i][field_].i <= wm_) ++g_wm_log.late;
    }
    return Status::Ok();
  }
  Status OnWatermark(int64_t wm, Output&) override {
    std::lock_guard<std::mutex> lock(g_wm_log.mu);
    EXPECT_GT(wm, wm_) << "watermarks must advance";
    wm_ = wm;
    g_wm_log.watermarks.push_back(wm);
    return Status::Ok();
  }
  Status OnProcessingTime(int64_t, Output&) override {
    std::lock_guard<std::mutex> lock(g_wm_log.mu);
    ++g_wm_log.processing_ticks;
    return Status::Ok();
  }

 private:
  int field_;
  int64_t wm_ = kMinWatermark;
};

class RecorderFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSink; }
  Result<Schema> Validate(const Config& c, const Schema& input) const override { return Schema(); }
  Result<std::unique_ptr<Operator>> Create(const Config& c, const Schema& input) const override {
    return std::unique_ptr<Operator>(std::make_unique<RecorderSink>(input.IndexOf("ts")));
  }
};

// Passes every row on and copies the rows with an odd `id` to its side output "odd" (same
// schema), which the job may leave unconnected.
class SplitterOp : public Operator {
 public:
  Status Open(const OperatorContext& ctx) override {
    odd_out_ = ctx.SideOutput("odd");
    return odd_out_ ? Status::Ok() : Status::Internal("no side output 'odd'");
  }
  Status Process(RowBatch& batch, Output& out) override {
    odd_.Clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i][0].i % 2 == 0) continue;
      Row& r = odd_.Append(batch[i].fields.size());
      for (size_t f = 0; f < r.fields.size(); ++f) r[f].CopyFrom(batch[i][f]);
    }
    if (!odd_.empty()) WEIR_RETURN_IF_ERROR(odd_out_->Emit(odd_));
    return out.Emit(batch);
  }

 private:
  Output* odd_out_ = nullptr;
  RowBatch odd_;
};

class SplitterFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config&, const Schema& input) const override { return input; }
  Result<std::vector<SideOutputSpec>> SideOutputs(const Config&,
                                                  const Schema& input) const override {
    return std::vector<SideOutputSpec>{{"odd", input, ""}};
  }
  Result<std::unique_ptr<Operator>> Create(const Config&, const Schema&) const override {
    return std::unique_ptr<Operator>(std::make_unique<SplitterOp>());
  }
};

// A sink with inputs "a" and "b" that records, for each combined watermark, each input's own
// watermark as last told (OnInputWatermark) and whether the combined one ever passed either.
struct InputWatermarkLog {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> at_combined;  // (a's, b's) at each OnWatermark
  std::vector<int64_t> combined;
  int64_t regressions = 0;  // an input's watermark went back, or the combined passed one
};
InputWatermarkLog g_input_wm;

class TwoInputRecorder : public Operator {
 public:
  Status Process(RowBatch&, Output&) override { return Status::Ok(); }
  void OnInputWatermark(int input, int64_t wm) override {
    std::lock_guard<std::mutex> lock(g_input_wm.mu);
    if (wm <= in_[input]) ++g_input_wm.regressions;
    in_[input] = wm;
  }
  Status OnWatermark(int64_t wm, Output&) override {
    std::lock_guard<std::mutex> lock(g_input_wm.mu);
    if (wm > std::min(in_[0], in_[1])) ++g_input_wm.regressions;
    g_input_wm.combined.push_back(wm);
    g_input_wm.at_combined.emplace_back(in_[0], in_[1]);
    return Status::Ok();
  }

 private:
  int64_t in_[2] = {kMinWatermark, kMinWatermark};
};

class TwoInputRecorderFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSink; }
  Result<Schema> Validate(const Config&, const Schema&) const override { return Schema(); }
  std::vector<std::string> InputNames(const Config&) const override { return {"a", "b"}; }
  std::vector<std::vector<std::string>> RequiredInputKeys(const Config&) const override {
    return {{}, {}};
  }
  Result<std::unique_ptr<Operator>> Create(const Config&, const Schema&) const override {
    return std::unique_ptr<Operator>(std::make_unique<TwoInputRecorder>());
  }
};

const OperatorRegistry& RegistryWithRecorder() {
  static const OperatorRegistry* r = [] {
    auto* reg = new OperatorRegistry();
    RegisterConnectors(*reg);
    reg->Register("recorder", std::make_unique<RecorderFactory>());
    reg->Register("recorder2", std::make_unique<TwoInputRecorderFactory>());
    reg->Register("splitter", std::make_unique<SplitterFactory>());
    return reg;
  }();
  return *r;
}

class EventTimeTest : public TaskTest {
 protected:
  void SetUp() override {
    TaskTest::SetUp();
    registry_ = &RegistryWithRecorder();
    std::lock_guard<std::mutex> lock(g_wm_log.mu);
    g_wm_log.watermarks.clear();
    g_wm_log.rows = g_wm_log.late = g_wm_log.processing_ticks = 0;
  }
};

TEST_F(EventTimeTest, WatermarksFlowInBandAsTheMinimumOverInputsAndEndAtMax) {
  // Two source subtasks, each in event-time order, shuffled into one sink: the sink sees
  // advancing watermarks, no row at or before a watermark it already saw, and finally the
  // maximum watermark.
  const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, parallelism: 2,
     config: {total: 6000, rows_per_second: 12000, fields: [{name: ts, expr: "id * 10"}]},
     watermarks: {event_time_field: ts, interval: 20ms}}
  - {id: out, type: recorder, parallelism: 1}
edges:
  - {from: gen, to: out, partition: rebalance}
)Y";
  auto states = RunJob(yaml);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  std::lock_guard<std::mutex> lock(g_wm_log.mu);
  EXPECT_EQ(g_wm_log.rows, 6000);
  EXPECT_EQ(g_wm_log.late, 0);
  ASSERT_GE(g_wm_log.watermarks.size(), 5u) << "expected periodic watermarks during ~0.5 s";
  EXPECT_EQ(g_wm_log.watermarks.back(), kMaxWatermark);
  EXPECT_LT(g_wm_log.watermarks[g_wm_log.watermarks.size() - 2], 6000 * 10);
  EXPECT_GT(g_wm_log.processing_ticks, 10);
}

TEST_F(EventTimeTest, AHeadWithTwoInputsHearsEachInputsOwnWatermark) {
  // `fast` ends at once (its watermark then is the maximum); `slow` takes about a second. The
  // head hears each input's watermark, advancing, before the combined one, which never passes
  // either; while `slow` runs, `fast`'s own watermark is already the maximum.
  const std::string yaml = R"Y(
vertices:
  - {id: fast, type: datagen, parallelism: 2, config: {total: 3000, fields: [{name: ts, expr: "id * 10"}]},
     watermarks: {event_time_field: ts, interval: 20ms}}
  - {id: slow, type: datagen, parallelism: 1,
     config: {total: 3000, rows_per_second: 3000, fields: [{name: ts, expr: "id * 10"}]},
     watermarks: {event_time_field: ts, interval: 20ms}}
  - {id: out, type: recorder2, parallelism: 1}
edges:
  - {from: fast, to: out, input: a, partition: rebalance}
  - {from: slow, to: out, input: b, partition: rebalance}
)Y";
  {
    std::lock_guard<std::mutex> lock(g_input_wm.mu);
    g_input_wm.at_combined.clear();
    g_input_wm.combined.clear();
    g_input_wm.regressions = 0;
  }
  auto states = RunJob(yaml);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  std::lock_guard<std::mutex> lock(g_input_wm.mu);
  EXPECT_EQ(g_input_wm.regressions, 0);
  ASSERT_GE(g_input_wm.combined.size(), 5u);
  EXPECT_EQ(g_input_wm.combined.back(), kMaxWatermark);
  bool ahead = false;
  for (size_t i = 0; i + 1 < g_input_wm.combined.size(); ++i) {
    const auto [a, b] = g_input_wm.at_combined[i];
    ahead = ahead || (a == kMaxWatermark && b < kMaxWatermark && g_input_wm.combined[i] == b);
  }
  EXPECT_TRUE(ahead) << "fast's own watermark should have been the maximum while slow ran";
}

TEST_F(EventTimeTest, AnIdleSourceDoesNotHoldEventTimeBackOnlyWithIdleTimeout) {
  // `quiet` never produces a row (total 0, hold). Without an idle timeout the sink sees no
  // watermark before the end; with one, event time advances with `busy`.
  for (bool idle_timeout : {false, true}) {
    {
      std::lock_guard<std::mutex> lock(g_wm_log.mu);
      g_wm_log.watermarks.clear();
    }
    const std::string wm = std::string("{event_time_field: ts, interval: 20ms") +
                           (idle_timeout ? ", idle_timeout: 100ms}" : "}");
    const std::string yaml = R"Y(
vertices:
  - {id: busy, type: datagen, config: {total: 100000, rows_per_second: 2000, fields: [{name: ts, expr: "id"}]},
     watermarks: )Y" + wm + R"Y(}
  - {id: quiet, type: datagen, config: {total: 0, hold: true, fields: [{name: ts, expr: "id"}]},
     watermarks: )Y" + wm + R"Y(}
  - {id: out, type: recorder}
edges:
  - {from: busy, to: out, partition: rebalance}
  - {from: quiet, to: out, partition: rebalance}
)Y";
    RunJob(yaml, nullptr, [](std::vector<std::unique_ptr<Task>>& tasks) {
      std::this_thread::sleep_for(std::chrono::milliseconds(700));
      for (auto& t : tasks) t->MarkCancelled();
      for (auto& t : tasks) t->Cancel();
    });
    std::lock_guard<std::mutex> lock(g_wm_log.mu);
    if (idle_timeout) {
      ASSERT_FALSE(g_wm_log.watermarks.empty());
      EXPECT_GT(g_wm_log.watermarks.back(), 100) << "busy's event time should have advanced";
    } else {
      EXPECT_TRUE(g_wm_log.watermarks.empty()) << g_wm_log.watermarks.front();
    }
  }
}

// ------------------------------------------------------------------ windows through real tasks

TEST_F(TaskTest, WindowAggregateEmitsEveryWindowOnceThroughRealTasks) {
  // Two in-order sources (ts = id * 10 ms), hash-partitioned by k into two window subtasks:
  // 1 s windows hold 100 ids, 20 per key. The task loop's watermarks fire windows while the job
  // runs; the maximum watermark at the end fires the rest.
  const std::string yaml = R"Y(
max_parallelism: 32
vertices:
  - {id: gen, type: datagen, parallelism: 2,
     config: {total: 20000, rows_per_second: 40000, fields: [{name: k, expr: "id % 5"}, {name: ts, expr: "to_timestamp(id * 10)"}]},
     watermarks: {event_time_field: ts, interval: 20ms}}
  - {id: w, type: window_aggregate, parallelism: 2,
     config: {key: [k], time_field: ts, size: 1s, aggregations: [{fn: count, as: n}]}}
  - {id: out, type: file, parallelism: 2, config: {path: ")Y" + dir_.string() + R"Y("}}
edges:
  - {from: gen, to: w, partition: hash, key: [k]}
  - {from: w, to: out}
)Y";
  auto states = RunJob(yaml);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 200u * 5u) << (lines.empty() ? "" : lines[0]);
  std::set<std::string> windows;  // "k window_start"
  for (const auto& line : lines) {
    const size_t kp = line.find("\"k\":"), np = line.find("\"n\":"),
                 sp = line.find("\"window_start\":");
    ASSERT_TRUE(kp != std::string::npos && np != std::string::npos && sp != std::string::npos)
        << line;
    EXPECT_EQ(std::atoll(line.c_str() + np + 4), 20) << line;
    const std::string key = std::to_string(std::atoll(line.c_str() + kp + 4)) + " " +
                            line.substr(sp, line.find(',', sp) - sp);
    EXPECT_TRUE(windows.insert(key).second) << "window emitted twice: " << line;
  }
}

}  // namespace
}  // namespace weir

namespace weir {
namespace {

// Watermarks and end of stream reach a sink fed only by a side output (a hash edge from a
// vertex in the middle of a chain): it sees every odd row, advancing watermarks, no late row,
// and the final maximum watermark. Without an edge, the side output's rows are dropped and
// counted, and the main output is unaffected.
TEST_F(EventTimeTest, SideOutputChannelsCarryWatermarksAndUnusedOnesDropAndCount) {
  const std::string job = R"Y(
vertices:
  - {id: gen, type: datagen, parallelism: 2,
     config: {total: 6000, rows_per_second: 12000, fields: [{name: ts, expr: "id * 10"}]},
     watermarks: {event_time_field: ts, interval: 20ms}}
  - {id: split, type: splitter, parallelism: 2}
  - {id: main, type: file, parallelism: 2, config: {path: ")Y" +
                          dir_.string() + R"Y("}}
  - {id: odd, type: recorder, parallelism: 1}
edges:
  - {from: gen, to: split}
  - {from: split, to: main}
  - {from: split.odd, to: odd, partition: hash, key: [id]}
)Y";
  int64_t dropped = -1;
  auto states = RunJob(job, nullptr, {}, {}, &dropped);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  EXPECT_EQ(dropped, 0);
  EXPECT_EQ(ReadLines().size(), 6000u);
  {
    std::lock_guard<std::mutex> lock(g_wm_log.mu);
    EXPECT_EQ(g_wm_log.rows, 3000);
    EXPECT_EQ(g_wm_log.late, 0);
    ASSERT_GE(g_wm_log.watermarks.size(), 3u);
    EXPECT_EQ(g_wm_log.watermarks.back(), kMaxWatermark);
  }
  fs::remove_all(dir_);
  std::string unused = job;
  unused.replace(unused.find("  - {id: odd"), unused.find("edges:") - unused.find("  - {id: odd"),
                 "");
  unused.replace(unused.find("  - {from: split.odd"), std::string::npos, "");
  dropped = -1;
  states = RunJob(unused, nullptr, {}, {}, &dropped);
  for (auto s : states) EXPECT_EQ(s, TaskState::kFinished);
  EXPECT_EQ(dropped, 3000);
  EXPECT_EQ(ReadLines().size(), 6000u);
}

}  // namespace
}  // namespace weir
