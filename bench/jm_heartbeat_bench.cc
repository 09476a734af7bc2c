// Heartbeat latency at the job manager while checkpoints with large metadata are written.
//
// A real JobManager (the production weir::Executor with its task manager lanes and I/O lane,
// a fake task manager gateway that answers at once) runs one job whose subtasks acknowledge
// every checkpoint with --state-mb of operator state in all (so each chk-n/_metadata is that
// large, written with fsync). A heartbeat thread calls Heartbeat() every millisecond and
// records how long each call takes. Baseline, in the same run: the same heartbeats while no
// checkpoint is taken. Prints p50 / p99 / max of both and the ratio.
//
//   build/bench/jm_heartbeat_bench [--state-mb 32] [--checkpoints 20] [--dir /tmp]
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "weir/builtins.h"
#include "weir/executor.h"
#include "weir/job_graph.h"
#include "weir/jobmanager/job_manager.h"

namespace {

using weir::Status;
namespace jm = weir::jm;

class InstantGateway : public jm::TaskManagerGateway {
 public:
  Status DeployTask(const std::string&, const weir::proto::DeployTaskRequest&) override {
    return Status::Ok();
  }
  Status CancelJobTasks(const std::string&, const std::string&, int) override {
    return Status::Ok();
  }
  weir::Result<std::string> Ping(const std::string&, int64_t) override { return std::string("tm"); }
  Status TriggerCheckpoint(const std::string&,
                           const weir::proto::TriggerCheckpointRequest& r) override {
    last_trigger.store(r.checkpoint_id());
    return Status::Ok();
  }
  Status NotifyCheckpoint(const std::string&,
                          const weir::proto::NotifyCheckpointRequest& r) override {
    if (r.completed()) last_notified.store(r.checkpoint_id());
    return Status::Ok();
  }
  std::atomic<int64_t> last_trigger{0}, last_notified{0};
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Latencies {
  std::vector<double> us;
  double Pct(double p) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))];
  }
};

// Heartbeats every millisecond until `stop`; returns each call's latency.
Latencies Heartbeats(jm::JobManager& m, std::atomic<bool>& stop) {
  Latencies l;
  weir::proto::HeartbeatRequest req;
  req.set_tm_id("tm");
  while (!stop.load()) {
    const auto t0 = std::chrono::steady_clock::now();
    m.Heartbeat(req);
    l.us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  int state_mb = 32, checkpoints = 20;
  std::string base = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--state-mb")
      state_mb = std::atoi(argv[i + 1]);
    else if (a == "--checkpoints")
      checkpoints = std::atoi(argv[i + 1]);
    else if (a == "--dir")
      base = argv[i + 1];
  }
  const std::string dir = base + "/weir-jm-hb-bench-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  spdlog::set_level(spdlog::level::warn);

  auto gateway_owned = std::make_unique<InstantGateway>();
  InstantGateway* gateway = gateway_owned.get();
  weir::Executor executor("jm-exec", 8);
  jm::JobManagerOptions o;
  o.checkpoints.directory = dir + "/checkpoints";
  o.ha_dir = dir + "/ha";
  jm::JobManager m(
      o, std::move(gateway_owned), NowMs,
      [&](const std::string& lane, std::function<void()> fn) {
        (void)executor.Submit(lane, std::move(fn));
      },
      &weir::BuiltinOperators());
  weir::proto::RegisterTaskManagerRequest r;
  r.set_tm_id("tm");
  r.set_rpc_address("tm:1");
  r.set_data_address("tm:2");
  r.set_slots(2);
  if (!m.RegisterTaskManager(r).ok()) return 1;
  auto spec = weir::ParseJobFile(R"(
name: hb
checkpointing: {interval: 10ms, retained: 1}
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {fields: [{name: k, expr: "id % 2"}]}}
  - {id: out, type: blackhole, parallelism: 2}
edges:
  - {from: gen, to: out}
)");
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().ToString().c_str());
    return 1;
  }
  weir::proto::JobGraph g;
  weir::ToProto(spec.value(), &g);
  auto job = m.SubmitJob(g);
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", job.status().ToString().c_str());
    return 1;
  }
  for (const char* t : {"gen"}) {
    for (int i = 0; i < 2; ++i) {
      weir::proto::TaskStateUpdate u;
      u.set_job_id(*job);
      u.set_task_id(t);
      u.set_subtask(i);
      u.set_state(weir::proto::SubtaskInfo::RUNNING);
      m.UpdateTaskState(u);
    }
  }
  // Baseline: heartbeats with nothing else going on.
  std::atomic<bool> stop{false};
  Latencies idle;
  {
    std::thread hb([&] { idle = Heartbeats(m, stop); });
    std::this_thread::sleep_for(std::chrono::seconds(2));
    stop = true;
    hb.join();
  }
  // Operator state of each acknowledgement: state_mb in all over the 2 subtasks.
  const std::string chunk(1 << 20, 'x');
  stop = false;
  Latencies busy;
  std::thread hb([&] { busy = Heartbeats(m, stop); });
  const auto t0 = std::chrono::steady_clock::now();
  int done = 0;
  while (done < checkpoints) {
    m.Tick();
    const int64_t id = gateway->last_trigger.load();
    if (id == 0 || id <= gateway->last_notified.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      weir::proto::AcknowledgeCheckpointRequest a;
      a.set_job_id(*job);
      a.set_task_id("gen");
      a.set_subtask(i);
      a.set_checkpoint_id(id);
      auto* os = a.add_states();
      os->set_vertex_id("gen");
      os->set_subtask(i);
      auto* l = os->add_operator_state();
      l->set_name("blob");
      for (int mb = 0; mb < state_mb / 2; ++mb) l->add_entries(chunk);
      m.AcknowledgeCheckpoint(std::move(a));
    }
    while (gateway->last_notified.load() < id)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    ++done;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  hb.join();
  executor.Shutdown();
  std::filesystem::remove_all(dir);
  std::printf(
      "jm_heartbeat_bench: %d checkpoints of %d MB metadata in %.1f s (%.0f MB/s written)\n",
      checkpoints, state_mb, secs, checkpoints * state_mb / secs);
  std::printf(
      "  heartbeat latency, idle (baseline): p50 %.0f us  p99 %.0f us  max %.0f us  (%zu calls)\n",
      idle.Pct(0.5), idle.Pct(0.99), idle.Pct(1.0), idle.us.size());
  std::printf(
      "  heartbeat latency, during checkpoints: p50 %.0f us  p99 %.0f us  max %.0f us  (%zu "
      "calls)\n",
      busy.Pct(0.5), busy.Pct(0.99), busy.Pct(1.0), busy.us.size());
  std::printf("  ratio during/idle: p50 %.2f  p99 %.2f\n",
              busy.Pct(0.5) / std::max(1.0, idle.Pct(0.5)),
              busy.Pct(0.99) / std::max(1.0, idle.Pct(0.99)));
  return 0;
}
