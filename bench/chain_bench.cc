// Throughput of one chained subtask, datagen -> map -> filter -> blackhole, run through the
// real weir::Task (plan from a YAML job, operators from the built-in registry), against a plain
// C++ loop that does the same arithmetic on int64s.
//
// Run: build/bench/chain_bench  (see bench/README.md)
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/network.h"
#include "weir/operator.h"
#include "weir/task.h"

namespace {

constexpr int64_t kRecords = 20'000'000;

std::string ChainJob(int64_t total) {
  return R"yaml(name: chain-bench
vertices:
  - id: gen
    type: datagen
    config:
      total: )yaml" +
         std::to_string(total) +
         R"yaml(
  - id: map
    type: map
    config:
      keep_input: true
      fields:
        - {name: x, expr: "id * 2"}
        - {name: k, expr: "id % 100"}
  - id: filter
    type: filter
    config:
      where: "k < 50"
  - id: sink
    type: blackhole
edges:
  - {from: gen, to: map}
  - {from: map, to: filter}
  - {from: filter, to: sink}
)yaml";
}

std::shared_ptr<const weir::ExecutionPlan> MakePlan(int64_t total) {
  auto spec = weir::ParseJobFile(ChainJob(total));
  if (!spec.ok()) {
    std::fprintf(stderr, "job: %s\n", spec.status().ToString().c_str());
    std::abort();
  }
  auto plan = weir::BuildPlan(std::move(spec).value(), weir::BuiltinOperators());
  if (!plan.ok()) {
    std::fprintf(stderr, "plan: %s\n", plan.status().ToString().c_str());
    std::abort();
  }
  if (plan->tasks.size() != 1) {
    std::fprintf(stderr, "expected one chained task, got %zu\n", plan->tasks.size());
    std::abort();
  }
  return std::make_shared<const weir::ExecutionPlan>(std::move(plan).value());
}

// The baseline: generate ids, compute x = id * 2 and k = id % 100, keep rows with k < 50.
// Returns the number of kept rows; `x_sum` keeps the x computation alive.
int64_t PlainLoop(int64_t n, int64_t* x_sum) {
  int64_t kept = 0;
  int64_t sum = 0;
  for (int64_t id = 0; id < n; ++id) {
    int64_t x = id * 2;
    int64_t k = id % 100;
    benchmark::DoNotOptimize(x);
    benchmark::DoNotOptimize(k);
    if (k < 50) {
      ++kept;
      sum += x;
    }
  }
  *x_sum = sum;
  return kept;
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Records per second of the plain loop over kRecords, measured once per process.
double BaselineRate() {
  static const double rate = [] {
    int64_t sum = 0;
    auto t0 = std::chrono::steady_clock::now();
    int64_t kept = PlainLoop(kRecords, &sum);
    auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(kept);
    benchmark::DoNotOptimize(sum);
    return static_cast<double>(kRecords) / std::chrono::duration<double>(t1 - t0).count();
  }();
  return rate;
}

void BM_PlainLoop(benchmark::State& state) {
  for (auto _ : state) {
    int64_t sum = 0;
    int64_t kept = PlainLoop(kRecords, &sum);
    benchmark::DoNotOptimize(kept);
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
}

void BM_WeirChain(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  const auto plan = MakePlan(kRecords);
  // A fully chained job has no channels, so the environment is never started.
  weir::NetworkEnvironment network;
  int64_t records = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    weir::TaskSetup setup;
    setup.job_id = "chain-bench";
    setup.plan = plan;
    setup.task_index = 0;
    setup.subtask = 0;
    setup.network = &network;
    setup.registry = &weir::BuiltinOperators();
    setup.locate = [](const std::string&, int) {
      weir::PeerLocation loc;
      loc.local = true;
      return loc;
    };
    auto task = std::make_unique<weir::Task>(std::move(setup));
    state.ResumeTiming();

    // The task runs on this thread, so this thread's CPU time is the task's.
    const double cpu0 = ThreadCpuSeconds();
    auto t0 = std::chrono::steady_clock::now();
    task->Run();
    auto t1 = std::chrono::steady_clock::now();
    const double cpu1 = ThreadCpuSeconds();

    state.PauseTiming();
    if (task->state() != weir::TaskState::kFinished) {
      state.SkipWithError("the task did not finish");
      break;
    }
    const int64_t in = task->metrics().records_in.load();
    if (in != kRecords) {
      state.SkipWithError("the source produced the wrong number of records");
      break;
    }
    records += in;
    seconds += std::chrono::duration<double>(t1 - t0).count();
    cpu_seconds += cpu1 - cpu0;
    task.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(records);
  if (seconds > 0) {
    const double weir_rate = static_cast<double>(records) / seconds;
    const double base_rate = BaselineRate();
    state.counters["weir_rec_per_s"] = weir_rate;
    state.counters["plain_loop_rec_per_s"] = base_rate;
    state.counters["weir_over_plain"] = weir_rate / base_rate;
    // Less sensitive to other load on the machine than the wall-clock rate.
    if (cpu_seconds > 0) {
      state.counters["weir_rec_per_cpu_s"] = static_cast<double>(records) / cpu_seconds;
    }
  }
}

BENCHMARK(BM_PlainLoop)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_WeirChain)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
