// checkpoint_bench: keyed aggregation with RocksDB state, through real Tasks in one process
// (datagen -> hash -> keyed_aggregate -> blackhole), run three ways in the same process:
//   1. no checkpoints,
//   2. a checkpoint every second (trigger, align, snapshot, upload, notify),
//   3. the baseline: a raw RocksDB read-modify-write loop over the same keys (Get + Put of an
//      8-byte counter with the same key encoding and the WAL off).
// Prints records/s for each and the ratios. Usage: checkpoint_bench [records] [keys]
#include <rocksdb/db.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/network.h"
#include "weir/task.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string JobYaml(int64_t records, int64_t keys) {
  return "max_parallelism: 128\nvertices:\n"
         "  - {id: gen, type: datagen, config: {total: " +
         std::to_string(records) + ", fields: [{name: k, expr: \"id % " + std::to_string(keys) +
         "\"}]}}\n"
         "  - {id: agg, type: keyed_aggregate, config: {key: [k], aggregations: [{fn: count, as: "
         "n}, "
         "{fn: sum, field: id, as: s}]}}\n"
         "  - {id: out, type: blackhole}\n"
         "edges:\n  - {from: gen, to: agg, partition: hash, key: [k]}\n  - {from: agg, to: out}\n";
}

struct RunResult {
  double seconds = 0;
  int checkpoints = 0;
};

RunResult RunJob(int64_t records, int64_t keys, int64_t checkpoint_every_ms, const fs::path& dir) {
  auto plan =
      weir::BuildPlan(weir::ParseJobFile(JobYaml(records, keys)).value(), weir::BuiltinOperators());
  if (!plan.ok()) {
    fprintf(stderr, "%s\n", plan.status().ToString().c_str());
    exit(1);
  }
  auto shared = std::make_shared<const weir::ExecutionPlan>(std::move(plan).value());
  weir::NetworkEnvironment net;
  std::vector<std::unique_ptr<weir::Task>> tasks;
  std::mutex mu;
  std::map<int64_t, int> acks;
  for (size_t t = 0; t < shared->tasks.size(); ++t) {
    weir::TaskSetup s;
    s.job_id = "bench";
    s.plan = shared;
    s.task_index = static_cast<int>(t);
    s.network = &net;
    s.registry = &weir::BuiltinOperators();
    s.locate = [](const std::string&, int) { return weir::PeerLocation{true, "", ""}; };
    s.local_dir = (dir / "state" / shared->tasks[t].id).string();
    s.on_checkpoint_ack = [&](weir::proto::AcknowledgeCheckpointRequest a) {
      std::lock_guard<std::mutex> lock(mu);
      ++acks[a.checkpoint_id()];
    };
    tasks.push_back(std::make_unique<weir::Task>(std::move(s)));
  }
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& t : tasks) threads.emplace_back([&t] { t->Run(); });
  RunResult r;
  if (checkpoint_every_ms > 0) {
    weir::proto::CheckpointOptions opts;
    opts.set_root((dir / "checkpoints").string());
    opts.set_incremental(true);
    int64_t id = 0;
    while (tasks[0]->state() != weir::TaskState::kFinished &&
           tasks[0]->state() != weir::TaskState::kFailed) {
      std::this_thread::sleep_for(std::chrono::milliseconds(checkpoint_every_ms));
      if (tasks[0]->state() != weir::TaskState::kRunning) break;
      tasks[0]->TriggerCheckpoint(++id, 0, opts);
      // Completion: both tasks acknowledged; then notify (as the coordinator would).
      for (int i = 0; i < 500; ++i) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (acks[id] == 2) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      for (auto& t : tasks) t->NotifyCheckpoint(id, true);
    }
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [cid, n] : acks) r.checkpoints += n == 2;
  }
  for (auto& th : threads) th.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& t : tasks) {
    if (t->state() != weir::TaskState::kFinished) {
      fprintf(stderr, "task did not finish\n");
      exit(1);
    }
  }
  return r;
}

double RawRocksDb(int64_t records, int64_t keys, const fs::path& dir) {
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(o, (dir / "raw").string(), &raw);
  if (!st.ok()) {
    fprintf(stderr, "%s\n", st.ToString().c_str());
    exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  rocksdb::ReadOptions ro;
  std::string key(10, '\0'), value;
  const auto start = Clock::now();
  for (int64_t id = 0; id < records; ++id) {
    const int64_t k = id % keys;
    key[0] = static_cast<char>((k % 128) >> 8);  // same shape as a key-group prefix + key
    key[1] = static_cast<char>(k % 128);
    std::memcpy(&key[2], &k, 8);
    int64_t n = 0, s = 0;
    if (db->Get(ro, key, &value).ok() && value.size() == 16) {
      std::memcpy(&n, value.data(), 8);
      std::memcpy(&s, value.data() + 8, 8);
    }
    ++n;
    s += id;
    value.resize(16);
    std::memcpy(value.data(), &n, 8);
    std::memcpy(value.data() + 8, &s, 8);
    db->Put(wo, key, value);
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t records = argc > 1 ? std::atoll(argv[1]) : 5000000;
  const int64_t keys = argc > 2 ? std::atoll(argv[2]) : 100000;
  spdlog::set_level(spdlog::level::warn);
  const fs::path dir =
      fs::temp_directory_path() / ("weir-checkpoint-bench-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  printf("keyed aggregation (count + sum per key) on RocksDB: %lld records, %lld keys, 1 subtask\n",
         static_cast<long long>(records), static_cast<long long>(keys));
  const double raw = RawRocksDb(records, keys, dir);
  const RunResult none = RunJob(records, keys, 0, dir / "a");
  const RunResult with = RunJob(records, keys, 1000, dir / "b");
  fs::remove_all(dir);
  const double raw_rate = records / raw, none_rate = records / none.seconds,
               with_rate = records / with.seconds;
  printf("%-44s %12.0f rec/s\n", "raw RocksDB Get+Put loop (baseline)", raw_rate);
  printf("%-44s %12.0f rec/s  (%.0f %% of raw)\n", "Weir job, no checkpoints", none_rate,
         100.0 * none_rate / raw_rate);
  printf("%-44s %12.0f rec/s  (%.1f %% loss vs none; %d checkpoints)\n",
         "Weir job, checkpoint every 1 s", with_rate, 100.0 * (1 - with_rate / none_rate),
         with.checkpoints);
  return 0;
}
