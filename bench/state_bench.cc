// The RocksDB state backend: (a) read-modify-write of 8-byte counters through
// OpenRocksDbBackend's Get + Put against a raw RocksDB Get + Put loop with the same options,
// in the same run; (b) checkpoint duration and size for ~1 GB of state: the synchronous part
// (Snapshot) and the upload, full (savepoint) and incremental, and a restore.
//
// Run: build/bench/state_bench  (see bench/README.md)
//   --state_dir=DIR         where the DBs and checkpoint storage go (default: the temp dir)
//   --checkpoint_keys=N     keys for (b) (default 10,000,000 x 100-byte values)
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "weir/key_groups.h"
#include "weir/state/backend.h"
#include "weir/state/rocksdb_options.h"

namespace {

namespace fs = std::filesystem;

constexpr int kMaxParallelism = 128;
constexpr int kOps = 1'000'000;
constexpr int kDistinctKeys = 100'000;
constexpr uint64_t kSeed = 42;

std::string g_dir;
int64_t g_checkpoint_keys = 10'000'000;
constexpr int kValueBytes = 100;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

[[noreturn]] void Die(const std::string& what, const weir::Status& st) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), st.ToString().c_str());
  std::exit(1);
}

weir::state::BackendOptions Options(const std::string& local) {
  weir::state::BackendOptions o;
  o.local_dir = local;
  o.max_parallelism = kMaxParallelism;
  o.key_groups = {0, kMaxParallelism - 1};
  return o;
}

// ---------------------------------------------------------------- (a) read-modify-write

struct Workload {
  std::vector<std::string> keys;
  std::vector<int> groups;
  std::vector<uint32_t> sequence;  // kOps indices into keys
};

const Workload& GetWorkload() {
  static const Workload w = [] {
    Workload w;
    for (int i = 0; i < kDistinctKeys; ++i) {
      w.keys.push_back("user-" + std::to_string(i));
      w.groups.push_back(weir::KeyGroupForHash(weir::StableHash(w.keys.back()), kMaxParallelism));
    }
    std::mt19937_64 rng(kSeed);
    std::uniform_int_distribution<uint32_t> pick(0, kDistinctKeys - 1);
    for (int i = 0; i < kOps; ++i) w.sequence.push_back(pick(rng));
    return w;
  }();
  return w;
}

struct Timing {
  double wall = 0;
  double cpu = 0;  // of this thread: less sensitive to other load on the machine
};

// Runs ops [from, to) of the workload against `rmw` (one read-modify-write per op).
template <typename Rmw>
void RunChunk(size_t from, size_t to, Rmw&& rmw, Timing* t) {
  const Workload& w = GetWorkload();
  const double c0 = ThreadCpuSeconds(), t0 = Now();
  for (size_t i = from; i < to; ++i) rmw(w.sequence[i]);
  t->wall += Now() - t0;
  t->cpu += ThreadCpuSeconds() - c0;
}

void BM_StateReadModifyWrite(benchmark::State& state) {
  const Workload& w = GetWorkload();
  const std::string weir_dir = g_dir + "/state-bench-rmw-weir";
  const std::string raw_dir = g_dir + "/state-bench-rmw-raw";
  Timing weir, raw;
  for (auto _ : state) {
    auto opened = weir::state::OpenRocksDbBackend(Options(weir_dir), {}, "");
    if (!opened.ok()) Die("open backend", opened.status());
    auto backend = std::move(opened).value();
    fs::remove_all(raw_dir);
    rocksdb::DB* raw_db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(weir::state::RocksDbStateOptions(), raw_dir, &raw_db);
    if (!s.ok()) Die("open raw", weir::Status::IoError(s.ToString()));
    std::unique_ptr<rocksdb::DB> db(raw_db);

    std::string value;
    char buf[8];
    auto weir_rmw = [&](uint32_t idx) {
      uint64_t counter = 0;
      if (backend->Get(w.groups[idx], w.keys[idx], &value) && value.size() == 8) {
        std::memcpy(&counter, value.data(), 8);
      }
      ++counter;
      std::memcpy(buf, &counter, 8);
      weir::Status st = backend->Put(w.groups[idx], w.keys[idx], std::string_view(buf, 8));
      if (!st.ok()) Die("put", st);
    };
    const rocksdb::WriteOptions wo = weir::state::RocksDbStateWriteOptions();
    const rocksdb::ReadOptions ro;
    std::string key;
    auto raw_rmw = [&](uint32_t idx) {
      // The same stored key as the backend's (2-byte key group, then the key).
      const int kg = w.groups[idx];
      key.assign({static_cast<char>(kg >> 8), static_cast<char>(kg & 0xff)});
      key.append(w.keys[idx]);
      uint64_t counter = 0;
      rocksdb::Status rs = db->Get(ro, key, &value);
      if (rs.ok() && value.size() == 8) std::memcpy(&counter, value.data(), 8);
      ++counter;
      std::memcpy(buf, &counter, 8);
      rs = db->Put(wo, key, rocksdb::Slice(buf, 8));
      if (!rs.ok()) Die("raw put", weir::Status::IoError(rs.ToString()));
    };
    // Both DBs advance through the same ops in small alternating chunks, so that changes in
    // the load of the (shared) machine hit both alike.
    constexpr size_t kChunk = 10'000;
    for (size_t from = 0, c = 0; from < w.sequence.size(); from += kChunk, ++c) {
      const size_t to = std::min(from + kChunk, w.sequence.size());
      if (c % 2 == 0) {
        RunChunk(from, to, raw_rmw, &raw);
        RunChunk(from, to, weir_rmw, &weir);
      } else {
        RunChunk(from, to, weir_rmw, &weir);
        RunChunk(from, to, raw_rmw, &raw);
      }
    }

    uint64_t total = 0;
    weir::Status st = backend->ForEach([&total](int, std::string_view, std::string_view v) {
      uint64_t c = 0;
      std::memcpy(&c, v.data(), 8);
      total += c;
      return weir::Status::Ok();
    });
    if (!st.ok() || total != kOps) Die("backend counters do not add up", st);
    db.reset();
    fs::remove_all(raw_dir);
  }
  const double ops = static_cast<double>(kOps) * static_cast<double>(state.iterations());
  state.counters["weir_rmw_per_s"] = ops / weir.wall;
  state.counters["raw_rmw_per_s"] = ops / raw.wall;
  state.counters["weir_over_raw"] = raw.wall / weir.wall;
  state.counters["weir_rmw_per_cpu_s"] = ops / weir.cpu;
  state.counters["raw_rmw_per_cpu_s"] = ops / raw.cpu;
  state.counters["weir_over_raw_cpu"] = raw.cpu / weir.cpu;
}

// ---------------------------------------------------------------- (b) checkpoints

// Cheap incompressible bytes: the on-disk size then matches the logical size.
class FastRandom {
 public:
  explicit FastRandom(uint64_t seed) : s_(seed | 1) {}
  uint64_t Next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return s_;
  }
  void Fill(char* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
      uint64_t r = Next();
      std::memcpy(p + i, &r, std::min<size_t>(8, n - i));
    }
  }

 private:
  uint64_t s_;
};

double MiB(uint64_t bytes) {
  return static_cast<double>(bytes) / (1 << 20);
}

struct Measured {
  double sync_s = 0;
  double upload_s = 0;
  weir::proto::KeyedStateHandle handle;
};

Measured TakeCheckpoint(weir::state::SnapshottableBackend& b, int64_t id,
                        const weir::state::SnapshotTarget& target) {
  Measured m;
  double t0 = Now();
  auto upload = b.Snapshot(id);
  m.sync_s = Now() - t0;
  if (!upload.ok()) Die("snapshot", upload.status());
  t0 = Now();
  auto handle = (*upload)->Upload(target);
  m.upload_s = Now() - t0;
  if (!handle.ok()) Die("upload", handle.status());
  m.handle = std::move(handle).value();
  return m;
}

void Print(const char* what, const Measured& m) {
  std::printf(
      "  %-28s sync %8.1f ms  upload %7.2f s  state %8.1f MiB  uploaded %8.1f MiB  files %d\n",
      what, m.sync_s * 1e3, m.upload_s, MiB(m.handle.state_size()),
      MiB(m.handle.incremental_size()), m.handle.files_size());
}

// Waits until the SST files in `db_dir` have not changed for 3 s (at most 60 s): background
// compactions of the fill are done. Returns the time waited.
double WaitForCompactions(const std::string& db_dir) {
  auto list = [&db_dir] {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(db_dir, ec)) {
      if (e.path().extension() == ".sst") names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  const double t0 = Now();
  auto last = list();
  double stable_since = Now();
  while (Now() - stable_since < 3 && Now() - t0 < 60) {
    usleep(200'000);
    auto now = list();
    if (now != last) {
      last = std::move(now);
      stable_since = Now();
    }
  }
  return Now() - t0;
}

std::string KeyOf(int64_t i) {
  return "key-" + std::to_string(i);
}

void BM_Checkpoint(benchmark::State& state) {
  const std::string base = g_dir + "/state-bench-checkpoint";
  const std::string local = base + "/local";
  const std::string savepoint = base + "/savepoint";
  const std::string checkpoints = base + "/checkpoints/job";
  const int64_t n = g_checkpoint_keys;
  for (auto _ : state) {
    fs::remove_all(base);
    auto opened = weir::state::OpenRocksDbBackend(Options(local), {}, "");
    if (!opened.ok()) Die("open backend", opened.status());
    auto b = std::move(opened).value();
    FastRandom rnd(kSeed);
    char value[kValueBytes];
    double t0 = Now();
    for (int64_t i = 0; i < n; ++i) {
      const std::string key = KeyOf(i);
      rnd.Fill(value, sizeof(value));
      weir::Status st = b->Put(weir::KeyGroupForHash(weir::StableHash(key), kMaxParallelism), key,
                               std::string_view(value, sizeof(value)));
      if (!st.ok()) Die("fill", st);
    }
    const double fill_s = Now() - t0;

    auto update_one_percent = [&](uint64_t seed) {
      std::mt19937_64 pick(seed);
      std::uniform_int_distribution<int64_t> any(0, n - 1);
      const double u0 = Now();
      for (int64_t i = 0; i < n / 100; ++i) {
        const std::string key = KeyOf(any(pick));
        rnd.Fill(value, sizeof(value));
        weir::Status st = b->Put(weir::KeyGroupForHash(weir::StableHash(key), kMaxParallelism), key,
                                 std::string_view(value, sizeof(value)));
        if (!st.ok()) Die("update", st);
      }
      return Now() - u0;
    };

    // Let the fill's compactions finish first, so that what follows shows the steady state.
    const double settle_s = WaitForCompactions(local + "/db");
    Measured first = TakeCheckpoint(*b, 1, {checkpoints, "chk-1/op-0", true});
    constexpr int kRounds = 6;
    std::vector<Measured> rounds;
    std::vector<double> update_s;
    for (int r = 0; r < kRounds; ++r) {
      update_s.push_back(update_one_percent(kSeed + 1 + r));
      const std::string excl = "chk-" + std::to_string(r + 2) + "/op-0";
      rounds.push_back(TakeCheckpoint(*b, r + 2, {checkpoints, excl, true}));
    }
    Measured full = TakeCheckpoint(*b, 100, {savepoint, "op-0", /*incremental=*/false});
    b.reset();

    t0 = Now();
    auto restored = weir::state::OpenRocksDbBackend(Options(local + "-restored"),
                                                    {rounds.back().handle}, checkpoints);
    const double restore_s = Now() - t0;
    if (!restored.ok()) Die("restore", restored.status());
    restored->reset();

    const double logical = static_cast<double>(n) * (kValueBytes + KeyOf(n / 2).size() + 2);
    std::printf(
        "\nRocksDB backend, %lld keys x %d-byte values (~%.0f MiB logical): fill %.1f s, "
        "then %.1f s until compactions settled\n",
        static_cast<long long>(n), kValueBytes, logical / (1 << 20), fill_s, settle_s);
    Print("first incremental", first);
    uint64_t uploaded = 0;
    double upload_s = 0, sync_s = 0;
    for (int r = 0; r < kRounds; ++r) {
      char what[64];
      std::snprintf(what, sizeof(what), "+1 %% updated (%.2f s), incr.", update_s[r]);
      Print(what, rounds[r]);
      uploaded += rounds[r].handle.incremental_size();
      upload_s += rounds[r].upload_s;
      sync_s += rounds[r].sync_s;
    }
    std::printf("  %-28s sync %8.1f ms  upload %7.2f s  uploaded %8.1f MiB\n",
                "incremental, mean of rounds", sync_s / kRounds * 1e3, upload_s / kRounds,
                MiB(uploaded) / kRounds);
    Print("full (savepoint)", full);
    std::printf("  restore from the last incremental (same range: file copy + checks) %.2f s\n\n",
                restore_s);

    state.counters["fill_s"] = fill_s;
    state.counters["full_sync_ms"] = full.sync_s * 1e3;
    state.counters["full_upload_s"] = full.upload_s;
    state.counters["full_MiB"] = MiB(full.handle.incremental_size());
    state.counters["incr_mean_sync_ms"] = sync_s / kRounds * 1e3;
    state.counters["incr_mean_upload_s"] = upload_s / kRounds;
    state.counters["incr_mean_uploaded_MiB"] = MiB(uploaded) / kRounds;
    state.counters["incr_state_MiB"] = MiB(rounds.back().handle.state_size());
    state.counters["restore_s"] = restore_s;
  }
  fs::remove_all(base);
}

BENCHMARK(BM_StateReadModifyWrite)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_Checkpoint)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

}  // namespace

int main(int argc, char** argv) {
  g_dir = fs::temp_directory_path().string();
  // Our flags first; the rest go to Google Benchmark.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.starts_with("--state_dir=")) {
      g_dir = std::string(a.substr(12));
    } else if (a.starts_with("--checkpoint_keys=")) {
      g_checkpoint_keys = std::atoll(argv[i] + 18);
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
