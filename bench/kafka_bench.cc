// Throughput of the Kafka source: the job `kafka -> blackhole` as one chained subtask through the
// real weir::Task, against a raw librdkafka consumer (manual assignment, batch queue polls, the
// payload touched) reading the same prefilled topic of an in-process mock cluster in the same run.
//
// Run: build/bench/kafka_bench [RECORDS_PER_PARTITION] [PARTITIONS] [ROUNDS]  (bench/README.md)
// Defaults: 20,000 x 16 partitions of 100-byte values (2 MiB per partition: under the mock's
// ~5 MiB retention), 5 rounds alternating raw / Weir; the median rate of each is reported.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/network.h"
#include "weir/operator.h"
#include "weir/task.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "kafka_bench: %s\n", what.c_str());
  std::exit(1);
}

void Prefill(const std::string& bootstrap, int partitions, int64_t per_partition) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "linger.ms", "20", err, sizeof err);
  rd_kafka_conf_set(conf, "batch.num.messages", "10000", err, sizeof err);
  rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!p) Die(err);
  std::string value(100, 'x');
  for (int64_t i = 0; i < per_partition; ++i) {
    for (int part = 0; part < partitions; ++part) {
      std::snprintf(value.data(), 21, "%020lld", static_cast<long long>(i * partitions + part));
      while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC("bench"), RD_KAFKA_V_PARTITION(part),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_VALUE(value.data(), value.size()),
                               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(p, 10);
      }
    }
    rd_kafka_poll(p, 0);
  }
  if (rd_kafka_flush(p, 120000) != 0) Die("prefill: flush timed out");
  rd_kafka_destroy(p);
}

// The baseline: what an application using librdkafka directly would do.
// What one reader achieved. The mock broker serves fetches slower than either reader can
// consume, and librdkafka prefetches while a reader starts up (a random ~500 ms fetch backoff
// hits either one now and then), so wall-clock rates mostly measure the broker and that luck.
// What the reader itself costs is the CPU time of the thread that polls and handles the
// records (librdkafka's own fetch threads work the same for both): the comparison uses records
// per CPU-second of that thread.
struct Run {
  double cpu_rate;   // records per CPU-second of the consuming thread
  double wall_rate;  // records per wall-clock second, start to last record
};

double ThreadCpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

Run Measure(Clock::time_point t0, Clock::time_point last, double cpu_s, int64_t total) {
  return {static_cast<double>(total) / cpu_s,
          static_cast<double>(total) / std::chrono::duration<double>(last - t0).count()};
}

Run RawConsumer(const std::string& bootstrap, int partitions, int64_t total, int round) {
  // Both readers are timed from the creation of their consumer (the source creates its own in
  // Open, on the task thread).
  const auto t0 = Clock::now();
  const double cpu0 = ThreadCpuSeconds(CLOCK_THREAD_CPUTIME_ID);
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::string group = "raw-" + std::to_string(round);
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  // The settings of the source: no automatic commit nor offset store (a per-message store costs
  // a lock per message in librdkafka; an application that commits itself turns it off too).
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, sizeof err);
  rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof err);  // as the source's default
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!c) Die(err);
  rd_kafka_poll_set_consumer(c);
  rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(c);
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(l, "bench", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  // As the source does (rd_kafka_assign() here waits ~500 ms before the first fetch).
  rd_kafka_error_t* aerr = rd_kafka_incremental_assign(c, l);
  if (aerr) Die(rd_kafka_error_string(aerr));
  rd_kafka_topic_partition_list_destroy(l);
  std::vector<rd_kafka_message_t*> msgs(1024);
  int64_t got = 0, bytes = 0;
  const auto guard = t0 + std::chrono::seconds(300);
  while (got < total && Clock::now() < guard) {
    ssize_t n = rd_kafka_consume_batch_queue(q, 0, msgs.data(), msgs.size());
    if (n == 0) n = rd_kafka_consume_batch_queue(q, 5, msgs.data(), msgs.size());
    for (ssize_t i = 0; i < n; ++i) {
      if (!msgs[i]->err) {
        ++got;
        bytes += static_cast<int64_t>(msgs[i]->len) + static_cast<const char*>(msgs[i]->payload)[0];
      }
      rd_kafka_message_destroy(msgs[i]);
    }
  }
  const auto last = Clock::now();
  const double cpu_s = ThreadCpuSeconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  if (got != total)
    Die("raw consumer read " + std::to_string(got) + " of " + std::to_string(total));
  if (bytes == 0) Die("no payload");
  rd_kafka_queue_destroy(q);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return Measure(t0, last, cpu_s, total);
}

std::string Job(const std::string& bootstrap, int round) {
  return "name: kafka-bench\n"
         "vertices:\n"
         "  - id: src\n"
         "    type: kafka\n"
         "    config: {bootstrap: '" +
         bootstrap + "', topics: [bench], group_id: weir-" + std::to_string(round) +
         ", start: earliest}\n"
         "  - id: sink\n"
         "    type: blackhole\n"
         "edges:\n"
         "  - {from: src, to: sink}\n";
}

// Weir: the real Task, from the job file through the registry. The source is unbounded, so the
// task is cancelled once its counter reached `total`.
Run WeirSource(const std::string& bootstrap, int64_t total, int round) {
  auto spec = weir::ParseJobFile(Job(bootstrap, round));
  if (!spec.ok()) Die(spec.status().ToString());
  auto plan = weir::BuildPlan(std::move(spec).value(), weir::BuiltinOperators());
  if (!plan.ok()) Die(plan.status().ToString());
  if (plan->tasks.size() != 1) Die("expected one chained task");
  weir::NetworkEnvironment network;  // fully chained: never started
  weir::TaskSetup setup;
  setup.job_id = "kafka-bench";
  setup.plan = std::make_shared<const weir::ExecutionPlan>(std::move(plan).value());
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
  const auto t0 = Clock::now();
  std::thread runner([&] { task->Run(); });
  const auto guard = t0 + std::chrono::seconds(300);
  clockid_t task_clock;
  if (pthread_getcpuclockid(runner.native_handle(), &task_clock) != 0) Die("no thread CPU clock");
  // The counter is sampled every 200 us: the end is late by at most that.
  while (task->metrics().records_in.load() < total && Clock::now() < guard &&
         task->state() != weir::TaskState::kFailed) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const auto last = Clock::now();
  const double cpu_s = ThreadCpuSeconds(task_clock);
  const int64_t got = task->metrics().records_in.load();
  task->Cancel();
  runner.join();
  if (got != total)
    Die("the Weir source read " + std::to_string(got) + " of " + std::to_string(total));
  return Measure(t0, last, cpu_s, total);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t per_partition = argc > 1 ? std::atoll(argv[1]) : 20000;
  const int partitions = argc > 2 ? std::atoi(argv[2]) : 16;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  if (per_partition <= 0 || partitions <= 0 || rounds <= 0) {
    Die("usage: kafka_bench [RECORDS_PER_PARTITION] [PARTITIONS] [ROUNDS]");
  }
  if (per_partition * 110 > 4 * 1024 * 1024) {
    std::fprintf(stderr,
                 "warning: over ~4 MiB per partition; the mock broker keeps ~5 MiB and "
                 "drops older records\n");
  }
  spdlog::set_level(spdlog::level::warn);
  const int64_t total = per_partition * partitions;

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t* owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!owner) Die(err);
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(owner, 1);
  if (!mc) Die("cannot create the mock cluster");
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
  if (rd_kafka_mock_topic_create(mc, "bench", partitions, 1) != 0) Die("topic create failed");
  for (int p = 0; p < partitions; ++p) rd_kafka_mock_partition_set_leader(mc, "bench", p, 1);

  const auto f0 = Clock::now();
  Prefill(bootstrap, partitions, per_partition);
  std::printf("prefilled %lld records of 100 bytes into %d partitions in %.1f s\n",
              static_cast<long long>(total), partitions,
              std::chrono::duration<double>(Clock::now() - f0).count());

  std::vector<double> raw_cpu, weir_cpu, raw_wall, weir_wall;
  for (int r = 0; r < rounds; ++r) {
    const Run raw = RawConsumer(bootstrap, partitions, total, r);
    const Run weir = WeirSource(bootstrap, total, r);
    std::printf(
        "round %d: per consumer-thread CPU second: raw librdkafka %.0f rec/s, Weir "
        "kafka -> blackhole %.0f rec/s (%.1f%%); wall clock: raw %.0f rec/s, Weir %.0f "
        "rec/s\n",
        r + 1, raw.cpu_rate, weir.cpu_rate, 100.0 * weir.cpu_rate / raw.cpu_rate, raw.wall_rate,
        weir.wall_rate);
    std::fflush(stdout);
    raw_cpu.push_back(raw.cpu_rate);
    weir_cpu.push_back(weir.cpu_rate);
    raw_wall.push_back(raw.wall_rate);
    weir_wall.push_back(weir.wall_rate);
  }
  // Medians: the mock broker shares the machine (and this process) with both readers, so single
  // rounds vary.
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  const double ratio = median(weir_cpu) / median(raw_cpu);
  std::printf(
      "median of %d rounds: per consumer-thread CPU second: raw %.0f rec/s, Weir %.0f "
      "rec/s, Weir/raw = %.1f%% (target >= 90%%: %s); wall clock (bounded by the mock "
      "broker): raw %.0f rec/s, Weir %.0f rec/s\n",
      rounds, median(raw_cpu), median(weir_cpu), 100.0 * ratio, ratio >= 0.9 ? "met" : "NOT met",
      median(raw_wall), median(weir_wall));
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(owner);
  return 0;
}
