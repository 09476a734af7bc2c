// The job manager's logic with a fake task manager gateway and a manual clock.
#include "weir/jobmanager/job_manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "weir/builtins.h"
#include "weir/job_graph.h"

namespace weir::jm {
namespace {

class FakeGateway : public TaskManagerGateway {
 public:
  struct Calls {
    std::mutex mu;
    std::vector<proto::DeployTaskRequest> deploys;
    std::map<std::string, int> deploys_per_tm;
    std::vector<std::string> cancels;
    std::vector<proto::TriggerCheckpointRequest> triggers;
    std::vector<proto::NotifyCheckpointRequest> notifies;
    bool fail_deploy = false;
    // Ping: addresses where nobody answers, and who answers elsewhere (default: the address's
    // host part, which AddTm makes the task manager's id).
    std::set<std::string> unreachable;
    std::map<std::string, std::string> answers_as;
    std::vector<std::string> pings;
    Status deploy_error;  // returned by DeployTask when not ok: the task manager's own answer
    std::function<void(const proto::NotifyCheckpointRequest&)> on_notify;
  };
  explicit FakeGateway(Calls* calls) : calls_(calls) {}
  Status DeployTask(const std::string& addr, const proto::DeployTaskRequest& req) override {
    std::lock_guard<std::mutex> lock(calls_->mu);
    if (calls_->fail_deploy) return Status::Unavailable("connection refused");
    if (!calls_->deploy_error.ok()) return calls_->deploy_error;
    calls_->deploys.push_back(req);
    ++calls_->deploys_per_tm[addr];
    return Status::Ok();
  }
  Status TriggerCheckpoint(const std::string& addr,
                           const proto::TriggerCheckpointRequest& req) override {
    std::lock_guard<std::mutex> lock(calls_->mu);
    calls_->triggers.push_back(req);
    return Status::Ok();
  }
  Status NotifyCheckpoint(const std::string& addr,
                          const proto::NotifyCheckpointRequest& req) override {
    std::lock_guard<std::mutex> lock(calls_->mu);
    if (calls_->on_notify) calls_->on_notify(req);
    calls_->notifies.push_back(req);
    return Status::Ok();
  }
  Status CancelJobTasks(const std::string& addr, const std::string& job_id, int) override {
    std::lock_guard<std::mutex> lock(calls_->mu);
    calls_->cancels.push_back(addr + " " + job_id);
    return Status::Ok();
  }
  Result<std::string> Ping(const std::string& addr, int64_t timeout_ms) override {
    std::lock_guard<std::mutex> lock(calls_->mu);
    calls_->pings.push_back(addr);
    if (calls_->unreachable.count(addr)) {
      return Status::DeadlineExceeded("no answer in " + std::to_string(timeout_ms) + " ms");
    }
    auto it = calls_->answers_as.find(addr);
    if (it != calls_->answers_as.end()) return it->second;
    return addr.substr(0, addr.rfind(':'));
  }

 private:
  Calls* calls_;
};

constexpr const char* kJob = R"(
name: j
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 10, fields: [{name: k, expr: "id % 2"}]}}
  - {id: agg, type: keyed_aggregate, parallelism: 2, config: {key: [k], aggregations: [{fn: count}]}}
  - {id: out, type: blackhole, parallelism: 2}
edges:
  - {from: gen, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)";

class JobManagerTest : public ::testing::Test {
 protected:
  JobManagerTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("weir-jm-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    JobManagerOptions o;
    o.checkpoints.directory = (dir_ / "checkpoints").string();
    o.savepoint_dir = (dir_ / "savepoints").string();
    o.ha_dir = (dir_ / "ha").string();
    o.heartbeat_timeout_ms = 5000;
    o.slot_wait_timeout_ms = 10000;
    jm_ = std::make_unique<JobManager>(
        o, std::make_unique<FakeGateway>(&calls_), [this] { return now_; },
        // Queued, run by Drain(): the real executor never runs work under the caller's lock.
        [this](const std::string&, std::function<void()> fn) { pending_.push_back(std::move(fn)); },
        &BuiltinOperators());
  }

  void AddTm(const std::string& id, int slots) {
    proto::RegisterTaskManagerRequest r;
    r.set_tm_id(id);
    r.set_rpc_address(id + ":1");
    r.set_data_address(id + ":2");
    r.set_slots(slots);
    ASSERT_TRUE(jm_->RegisterTaskManager(r).ok());
    Drain();
  }

  proto::JobGraph Graph(const std::string& yaml = kJob) {
    auto spec = ParseJobFile(yaml);
    EXPECT_TRUE(spec.ok());
    proto::JobGraph g;
    ToProto(spec.value(), &g);
    return g;
  }

  void Report(const std::string& job, const std::string& task, int sub, TaskState s,
              const std::string& err = "") {
    proto::TaskStateUpdate u;
    u.set_job_id(job);
    u.set_task_id(task);
    u.set_subtask(sub);
    u.set_state(ToProto(s));
    u.set_error(err);
    // As a task manager reports it: a subtask cut off by a stopped peer is kCancelled.
    if (s == TaskState::kFailed) {
      u.set_error_code(static_cast<int>(err.rfind("CANCELLED:", 0) == 0 ? StatusCode::kCancelled
                                                                        : StatusCode::kInternal));
    }
    jm_->UpdateTaskState(u);
    Drain();
  }

  std::string State(const std::string& job) {
    return proto::JobInfo::State_Name(jm_->GetJob(job)->state());
  }

  void Beat(const std::string& tm) {
    proto::HeartbeatRequest r;
    r.set_tm_id(tm);
    jm_->Heartbeat(r);
  }

  void Drain() {
    while (!pending_.empty()) {
      auto fn = std::move(pending_.front());
      pending_.erase(pending_.begin());
      fn();
    }
  }
  Result<std::string> Submit(const proto::JobGraph& g) {
    auto r = jm_->SubmitJob(g);
    Drain();
    return r;
  }
  void Tick() {
    jm_->Tick();
    Drain();
  }

  ~JobManagerTest() override { std::filesystem::remove_all(dir_); }

  // Acknowledges checkpoint `id` for every subtask of kJob with a little operator state;
  // `agg_wm` (if set) gives each agg subtask i the commit watermark agg_wm(i).
  void AckAll(const std::string& job, int64_t id,
              std::function<std::optional<int64_t>(int)> agg_wm = {}) {
    for (const char* t : {"gen", "agg"}) {
      for (int i = 0; i < 2; ++i) {
        proto::AcknowledgeCheckpointRequest a;
        a.set_job_id(job);
        a.set_task_id(t);
        a.set_subtask(i);
        a.set_checkpoint_id(id);
        auto* os = a.add_states();
        os->set_vertex_id(t);
        os->set_subtask(i);
        auto* l = os->add_operator_state();
        l->set_name("pos");
        l->add_entries(std::string(t) + std::to_string(i));
        (*os->mutable_counts())[std::string(t) == "gen" ? "read" : "committed"] = 10 * (i + 1) * id;
        if (agg_wm && std::string(t) == "agg") {
          if (auto w = agg_wm(i)) os->set_commit_watermark(*w);
        }
        jm_->AcknowledgeCheckpoint(a);
        Drain();
      }
    }
  }
  void AllRunning(const std::string& job) {
    for (const char* t : {"gen", "agg"}) {
      for (int i = 0; i < 2; ++i) Report(job, t, i, TaskState::kRunning);
    }
  }
  proto::JobGraph CheckpointedGraph(int64_t interval_ms, int retained = 1) {
    proto::JobGraph g = Graph();
    g.mutable_checkpointing()->set_interval_ms(interval_ms);
    g.mutable_checkpointing()->set_timeout_ms(5000);
    g.mutable_checkpointing()->set_retained(retained);
    return g;
  }

  std::filesystem::path dir_;
  std::vector<std::function<void()>> pending_;
  int64_t now_ = 1000;
  FakeGateway::Calls calls_;
  std::unique_ptr<JobManager> jm_;
};

TEST_F(JobManagerTest, SchedulesSpreadAcrossTaskManagersAndFinishes) {
  AddTm("a", 2);
  AddTm("b", 2);
  auto id = Submit(Graph());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(State(*id), "RUNNING");
  ASSERT_EQ(calls_.deploys.size(), 4u);  // 2 tasks x 2 subtasks
  EXPECT_EQ(calls_.deploys_per_tm["a:1"], 2);
  EXPECT_EQ(calls_.deploys_per_tm["b:1"], 2);
  EXPECT_EQ(calls_.deploys[0].locations_size(), 4);
  for (auto& tm : jm_->ListTaskManagers()) EXPECT_EQ(tm.free_slots(), 1);
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) Report(*id, t, i, TaskState::kRunning);
  }
  EXPECT_EQ(State(*id), "RUNNING");
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) Report(*id, t, i, TaskState::kFinished);
  }
  EXPECT_EQ(State(*id), "FINISHED");
  for (auto& tm : jm_->ListTaskManagers()) EXPECT_EQ(tm.free_slots(), 2);
}

TEST_F(JobManagerTest, InvalidGraphIsRejectedAndNothingIsKept) {
  AddTm("a", 2);
  proto::JobGraph g = Graph();
  g.mutable_vertices(1)->set_type("nope");
  auto id = Submit(g);
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("vertex 'agg': type: unknown operator type 'nope'"),
            std::string::npos);
  EXPECT_TRUE(jm_->ListJobs().empty());
  EXPECT_TRUE(calls_.deploys.empty());
  g = Graph();
  g.mutable_vertices(0)->set_config_yaml("{total: [");
  EXPECT_FALSE(Submit(g).ok());
  g = Graph();
  g.set_max_parallelism(-5);
  EXPECT_FALSE(Submit(g).ok());
}

TEST_F(JobManagerTest, WaitsForSlotsThenRunsWhenATaskManagerArrives) {
  AddTm("a", 1);
  auto id = Submit(Graph());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(State(*id), "CREATED");
  EXPECT_NE(jm_->GetJob(*id)->failure().find("waiting for slots: needs 2, 1 free of 1"),
            std::string::npos);
  now_ += 1000;
  Beat("a");
  Tick();
  EXPECT_EQ(State(*id), "CREATED");
  AddTm("b", 1);
  EXPECT_EQ(State(*id), "RUNNING");
  EXPECT_TRUE(jm_->GetJob(*id)->failure().empty());
}

TEST_F(JobManagerTest, FailsWithAClearReasonWhenSlotsNeverCome) {
  AddTm("a", 1);
  auto id = Submit(Graph());
  ASSERT_TRUE(id.ok());
  for (int i = 0; i < 12; ++i) {
    now_ += 1000;
    Beat("a");
    Tick();
  }
  EXPECT_EQ(State(*id), "FAILED");
  EXPECT_NE(jm_->GetJob(*id)->failure().find("not enough slots: needs 2"), std::string::npos)
      << jm_->GetJob(*id)->failure();
}

TEST_F(JobManagerTest, LostTaskManagerFailsItsJobsAndCancelsTheRest) {
  AddTm("a", 1);
  AddTm("b", 1);
  auto id = Submit(Graph());
  ASSERT_TRUE(id.ok());
  now_ += 3000;
  Beat("a");
  now_ += 3000;  // b silent for 6 s > 5 s
  Tick();
  EXPECT_EQ(State(*id), "FAILED");
  EXPECT_NE(jm_->GetJob(*id)->failure().find("task manager b lost"), std::string::npos);
  ASSERT_EQ(calls_.cancels.size(), 1u);
  EXPECT_EQ(calls_.cancels[0], "a:1 " + *id);
  ASSERT_EQ(jm_->ListTaskManagers().size(), 1u);
  EXPECT_EQ(jm_->ListTaskManagers()[0].free_slots(), 1);
}

TEST_F(JobManagerTest, SubtaskFailureFailsTheJobWithItsError) {
  AddTm("a", 2);
  auto id = Submit(Graph());
  Report(*id, "agg", 1, TaskState::kFailed, "IO_ERROR: disk full");
  EXPECT_EQ(State(*id), "FAILED");
  EXPECT_NE(jm_->GetJob(*id)->failure().find("vertex 'agg' subtask 1 failed: IO_ERROR: disk full"),
            std::string::npos);
  // Later reports of the failed attempt change nothing.
  Report(*id, "gen", 0, TaskState::kFinished);
  EXPECT_EQ(State(*id), "FAILED");
}

TEST_F(JobManagerTest, DeploymentFailureFailsTheJob) {
  AddTm("a", 2);
  calls_.fail_deploy = true;
  auto id = Submit(Graph());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(State(*id), "FAILED");
  EXPECT_NE(jm_->GetJob(*id)->failure().find("task manager a lost: deployment failed"),
            std::string::npos)
      << jm_->GetJob(*id)->failure();
  EXPECT_TRUE(jm_->ListTaskManagers().empty()) << "an unreachable task manager is dropped";
}

TEST_F(JobManagerTest, CancelGoesThroughCancellingToCanceled) {
  AddTm("a", 2);
  auto id = Submit(Graph());
  auto st = jm_->CancelJob(*id);
  Drain();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(JobStateName(*st), std::string("CANCELLING"));
  EXPECT_EQ(calls_.cancels.size(), 1u);
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) Report(*id, t, i, TaskState::kCanceled);
  }
  EXPECT_EQ(State(*id), "CANCELED");
  EXPECT_EQ(jm_->CancelJob(*id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(jm_->CancelJob("nope").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace weir::jm

namespace weir::jm {
namespace {

TEST_F(JobManagerTest, RootCauseReplacesASecondaryFailure) {
  AddTm("a", 2);
  auto id = Submit(Graph());
  Report(*id, "gen", 0, TaskState::kFailed, "CANCELLED: the consuming subtask stopped");
  EXPECT_EQ(State(*id), "FAILED");
  Report(*id, "agg", 0, TaskState::kFailed, "UNAVAILABLE: input from 'gen' subtask 1 on b lost");
  EXPECT_NE(jm_->GetJob(*id)->failure().find("vertex 'agg' subtask 0 failed: UNAVAILABLE"),
            std::string::npos)
      << jm_->GetJob(*id)->failure();
  // A second root cause does not replace the first.
  Report(*id, "agg", 1, TaskState::kFailed, "IO_ERROR: later");
  EXPECT_EQ(jm_->GetJob(*id)->failure().find("IO_ERROR"), std::string::npos);
}

}  // namespace
}  // namespace weir::jm

namespace weir::jm {
namespace {

namespace fs = std::filesystem;

TEST_F(JobManagerTest, CheckpointCompletesOnlyWhenEverySubtaskAcknowledged) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(500));
  AllRunning(*id);
  now_ += 400;
  Tick();
  EXPECT_TRUE(calls_.triggers.empty()) << "interval not reached";
  now_ += 200;
  Tick();
  ASSERT_EQ(calls_.triggers.size(), 2u);  // the two datagen subtasks
  const int64_t cp = calls_.triggers[0].checkpoint_id();
  EXPECT_EQ(calls_.triggers[0].task_id(), "gen");
  const fs::path chk = dir_ / "checkpoints" / *id / ("chk-" + std::to_string(cp));
  // Three of four acknowledgements: not complete, no metadata.
  proto::AcknowledgeCheckpointRequest a;
  a.set_job_id(*id);
  a.set_checkpoint_id(cp);
  for (auto [t, i] : std::vector<std::pair<const char*, int>>{{"gen", 0}, {"gen", 1}, {"agg", 0}}) {
    a.set_task_id(t);
    a.set_subtask(i);
    jm_->AcknowledgeCheckpoint(a);
  }
  Drain();
  EXPECT_FALSE(fs::exists(chk / "_metadata"));
  EXPECT_EQ(jm_->GetJob(*id)->checkpoints().completed(), 0);
  AckAll(*id, cp);  // (duplicates are ignored)
  EXPECT_TRUE(fs::exists(chk / "_metadata"));
  auto md = ReadMetadata(chk.string());
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  EXPECT_EQ(md->checkpoint_id(), cp);
  EXPECT_EQ(jm_->GetJob(*id)->checkpoints().completed(), 1);
  ASSERT_EQ(calls_.notifies.size(), 1u);  // one task manager hosts the job
  EXPECT_TRUE(calls_.notifies[0].completed());
}

TEST_F(JobManagerTest, NotifyCarriesTheMinimumCommitWatermarkOnlyWhenAllSubtasksReported) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(500));
  AllRunning(*id);
  now_ += 600;
  Tick();
  ASSERT_EQ(calls_.triggers.size(), 2u);
  const int64_t cp1 = calls_.triggers.back().checkpoint_id();
  AckAll(*id, cp1, [](int i) -> std::optional<int64_t> { return i == 0 ? 5000 : 3000; });
  ASSERT_EQ(calls_.notifies.size(), 1u);
  const auto& wms = calls_.notifies[0].commit_watermarks();
  ASSERT_EQ(wms.count("agg"), 1u);
  EXPECT_EQ(wms.at("agg"), 3000);
  EXPECT_EQ(wms.count("gen"), 0u);
  // One subtask without a commit watermark: none is sent for the vertex.
  now_ += 600;
  Tick();
  const int64_t cp2 = calls_.triggers.back().checkpoint_id();
  ASSERT_GT(cp2, cp1);
  AckAll(*id, cp2, [](int i) -> std::optional<int64_t> {
    if (i == 0) return 9000;
    return std::nullopt;
  });
  ASSERT_EQ(calls_.notifies.size(), 2u);
  EXPECT_TRUE(calls_.notifies[1].commit_watermarks().empty());
  // Reconciliation: counters summed over the subtasks, per completed checkpoint, newest first.
  const auto cps = jm_->GetJob(*id)->checkpoints();
  ASSERT_EQ(cps.recent_completed_size(), 2);
  EXPECT_EQ(cps.recent_completed(0).id(), cp2);
  EXPECT_EQ(cps.recent_completed(0).counts().at("read"), 30 * cp2);
  EXPECT_EQ(cps.recent_completed(0).counts().at("committed"), 30 * cp2);
  EXPECT_EQ(cps.recent_completed(1).counts().at("read"), 30 * cp1);
  EXPECT_EQ(cps.latest_completed().counts().at("read"), 30 * cp2);
}

TEST_F(JobManagerTest, TimeoutAndDeclineAbortAndRemovePartialFiles) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  now_ += 100;
  Tick();
  ASSERT_EQ(calls_.triggers.size(), 2u);
  const int64_t cp1 = calls_.triggers[0].checkpoint_id();
  const fs::path chk1 = dir_ / "checkpoints" / *id / ("chk-" + std::to_string(cp1));
  fs::create_directories(chk1 / "agg-0");
  std::ofstream(chk1 / "agg-0" / "partial") << "x";
  now_ += 5001;
  Beat("a");
  Tick();  // expired
  EXPECT_FALSE(fs::exists(chk1));
  ASSERT_EQ(calls_.notifies.size(), 1u);
  EXPECT_FALSE(calls_.notifies[0].completed());
  auto stats = jm_->GetJob(*id)->checkpoints();
  EXPECT_EQ(stats.failed(), 1);
  EXPECT_NE(stats.recent_failures(0).failure().find("expired"), std::string::npos);
  now_ += 200;
  Tick();
  ASSERT_EQ(calls_.triggers.size(), 4u);
  const int64_t cp2 = calls_.triggers[2].checkpoint_id();
  EXPECT_GT(cp2, cp1);
  proto::DeclineCheckpointRequest d;
  d.set_job_id(*id);
  d.set_task_id("agg");
  d.set_subtask(1);
  d.set_checkpoint_id(cp2);
  d.set_reason("IO_ERROR: disk full");
  jm_->DeclineCheckpoint(d);
  Drain();
  stats = jm_->GetJob(*id)->checkpoints();
  EXPECT_EQ(stats.failed(), 2);
  EXPECT_NE(stats.recent_failures(0).failure().find("declined by 'agg' subtask 1: IO_ERROR"),
            std::string::npos);
  EXPECT_EQ(State(*id), "RUNNING") << "failures are tolerated by default";
}

TEST_F(JobManagerTest, TooManyConsecutiveFailuresFailTheJob) {
  AddTm("a", 2);
  proto::JobGraph g = CheckpointedGraph(100);
  g.mutable_checkpointing()->set_tolerable_failures(1);
  g.mutable_restart_strategy()->set_type("none");
  auto id = Submit(g);
  AllRunning(*id);
  for (int i = 0; i < 2; ++i) {
    now_ += 100;
    Tick();
    proto::DeclineCheckpointRequest d;
    d.set_job_id(*id);
    d.set_task_id("gen");
    d.set_checkpoint_id(calls_.triggers.back().checkpoint_id());
    d.set_reason("nope");
    jm_->DeclineCheckpoint(d);
    Drain();
  }
  EXPECT_EQ(State(*id), "FAILED");
  EXPECT_NE(jm_->GetJob(*id)->failure().find("too many consecutive checkpoint failures"),
            std::string::npos);
}

TEST_F(JobManagerTest, PruningKeepsRetainedAndSharedFilesTheyUse) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(100, /*retained=*/2));
  AllRunning(*id);
  const fs::path root = dir_ / "checkpoints" / *id;
  fs::create_directories(root / "shared");
  for (const char* f : {"a.sst", "b.sst", "c.sst"}) std::ofstream(root / "shared" / f) << f;
  // Checkpoints reference {a, b}, {b, c}, {c}: pruning the first deletes a only; the second, b.
  std::vector<std::vector<std::string>> refs = {{"a.sst", "b.sst"}, {"b.sst", "c.sst"}, {"c.sst"}};
  std::vector<int64_t> ids;
  for (const auto& files : refs) {
    now_ += 100;
    Tick();
    const int64_t cp = calls_.triggers.back().checkpoint_id();
    ids.push_back(cp);
    for (const char* t : {"gen", "agg"}) {
      for (int i = 0; i < 2; ++i) {
        proto::AcknowledgeCheckpointRequest a;
        a.set_job_id(*id);
        a.set_task_id(t);
        a.set_subtask(i);
        a.set_checkpoint_id(cp);
        if (std::string(t) == "agg" && i == 0) {
          auto* os = a.add_states();
          os->set_vertex_id("agg");
          auto* k = os->mutable_keyed();
          k->set_key_group_first(0);
          k->set_key_group_last(63);
          for (const auto& f : files) {
            auto* sf = k->add_files();
            sf->set_path("shared/" + f);
            sf->set_local_name(f);
          }
        }
        jm_->AcknowledgeCheckpoint(a);
        Drain();
      }
    }
  }
  EXPECT_FALSE(fs::exists(root / ("chk-" + std::to_string(ids[0]))));
  EXPECT_TRUE(fs::exists(root / ("chk-" + std::to_string(ids[1])) / "_metadata"));
  EXPECT_TRUE(fs::exists(root / ("chk-" + std::to_string(ids[2])) / "_metadata"));
  EXPECT_FALSE(fs::exists(root / "shared" / "a.sst"));
  EXPECT_TRUE(fs::exists(root / "shared" / "b.sst"));
  EXPECT_TRUE(fs::exists(root / "shared" / "c.sst"));
}

TEST_F(JobManagerTest, RestorePlanRedistributesStateAndRejectsBadSnapshots) {
  AddTm("a", 3);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  now_ += 100;
  Tick();
  const int64_t cp = calls_.triggers.back().checkpoint_id();
  AckAll(*id, cp);
  const std::string chk = (dir_ / "checkpoints" / *id / ("chk-" + std::to_string(cp))).string();
  auto md = ReadMetadata(chk);
  ASSERT_TRUE(md.ok());
  // Rescale gen to 3: its 2 SPLIT entries go round-robin (subtask 2 gets none).
  std::string yaml = kJob;
  const std::string from = "{id: gen, type: datagen, parallelism: 2";
  yaml.replace(yaml.find(from), from.size(), "{id: gen, type: datagen, parallelism: 3");
  auto spec = ParseJobFile(yaml);
  ASSERT_TRUE(spec.ok());
  auto plan = BuildPlan(spec.value(), BuiltinOperators());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto r = PlanRestore(*md, chk, *plan, false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto entries = [&](const std::string& task, int sub) {
    for (const auto& v : r->at({task, sub}).vertices()) {
      if (v.vertex_id() == task) return v.operator_state(0).entries_size();
    }
    return -1;
  };
  EXPECT_EQ(entries("gen", 0), 1);
  EXPECT_EQ(entries("gen", 1), 1);
  EXPECT_EQ(entries("gen", 2), 0);
  EXPECT_EQ(r->at({"gen", 0}).root(), (dir_ / "checkpoints" / *id).string());
  // A vertex the new job lacks.
  std::string renamed = kJob;
  for (const std::string from : {"id: agg,", "to: agg,", "from: agg,"}) {
    std::string to = from;
    to.replace(to.find("agg"), 3, "agx");
    renamed.replace(renamed.find(from), from.size(), to);
  }
  auto plan2 = BuildPlan(ParseJobFile(renamed).value(), BuiltinOperators());
  ASSERT_TRUE(plan2.ok());
  auto bad = PlanRestore(*md, chk, *plan2, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("state of vertex 'agg'"), std::string::npos);
  EXPECT_TRUE(PlanRestore(*md, chk, *plan2, true).ok());
  // Corrupt and missing metadata: clear errors, nothing deleted.
  std::ofstream(chk + "/_metadata", std::ios::trunc) << "garbage";
  auto corrupt = ReadMetadata(chk);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.status().message().find("corrupt checkpoint metadata"), std::string::npos);
  EXPECT_TRUE(fs::exists(chk + "/_metadata"));
  EXPECT_EQ(ReadMetadata(chk + "/nope").status().code(), StatusCode::kNotFound);
  auto via_submit = Submit(Graph());  // unaffected
  EXPECT_TRUE(via_submit.ok());
  auto refused = jm_->SubmitJob(Graph(), chk);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(jm_->ListJobs().size(), 2u) << "a refused restore keeps nothing";
}

}  // namespace
}  // namespace weir::jm

namespace weir::jm {
namespace {

TEST(RestartBackoffTest, StrategiesFollowTheirRules) {
  proto::RestartStrategy none;
  EXPECT_FALSE(RestartBackoff(none, false).OnFailure(0).has_value()) << "default without checkpoints";
  RestartBackoff def(none, true);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(def.OnFailure(i), 100) << "default with checkpoints";

  proto::RestartStrategy fixed;
  fixed.set_type("fixed-delay");
  fixed.set_attempts(2);
  fixed.set_delay_ms(50);
  RestartBackoff f(fixed, true);
  EXPECT_EQ(f.OnFailure(0), 50);
  EXPECT_EQ(f.OnFailure(1), 50);
  EXPECT_FALSE(f.OnFailure(2).has_value());

  proto::RestartStrategy exp;
  exp.set_type("exponential-delay");
  exp.set_initial_delay_ms(100);
  exp.set_max_delay_ms(350);
  exp.set_multiplier(2);
  exp.set_reset_threshold_ms(1000);
  RestartBackoff e(exp, true);
  EXPECT_EQ(e.OnFailure(0), 100);
  EXPECT_EQ(e.OnFailure(1), 200);
  EXPECT_EQ(e.OnFailure(2), 350);
  EXPECT_EQ(e.OnFailure(3), 350);
  e.OnRunning(10);
  EXPECT_EQ(e.OnFailure(5000), 100) << "a stable run resets the delay";

  proto::RestartStrategy rate;
  rate.set_type("failure-rate");
  rate.set_max_failures_per_interval(2);
  rate.set_failure_rate_interval_ms(1000);
  rate.set_delay_ms(10);
  RestartBackoff r(rate, true);
  EXPECT_EQ(r.OnFailure(0), 10);
  EXPECT_EQ(r.OnFailure(100), 10);
  EXPECT_FALSE(r.OnFailure(200).has_value());
  RestartBackoff r2(rate, true);
  EXPECT_EQ(r2.OnFailure(0), 10);
  EXPECT_EQ(r2.OnFailure(100), 10);
  EXPECT_EQ(r2.OnFailure(1500), 10) << "old failures leave the interval";
}

TEST_F(JobManagerTest, FailoverRedeploysFromTheLatestCheckpointAfterOldTasksAreGone) {
  AddTm("a", 2);
  AddTm("b", 2);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  now_ += 100;
  Tick();
  const int64_t cp = calls_.triggers.back().checkpoint_id();
  AckAll(*id, cp);
  const size_t deploys_before = calls_.deploys.size();
  Report(*id, "agg", 1, TaskState::kFailed, "IO_ERROR: boom");
  auto info = *jm_->GetJob(*id);
  EXPECT_EQ(info.state(), proto::JobInfo::RESTARTING);
  EXPECT_EQ(info.restarts(), 1);
  EXPECT_NE(info.last_failure().find("IO_ERROR: boom"), std::string::npos);
  // The delay passed, but old subtasks are still there: no redeployment yet.
  now_ += 150;
  for (const char* tm : {"a", "b"}) Beat(tm);
  Tick();
  EXPECT_EQ(calls_.deploys.size(), deploys_before);
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) Report(*id, t, i, TaskState::kCanceled);
  }
  Tick();
  ASSERT_EQ(calls_.deploys.size(), deploys_before + 4);
  info = *jm_->GetJob(*id);
  EXPECT_EQ(info.state(), proto::JobInfo::RUNNING);
  EXPECT_EQ(info.attempt(), 1);
  const auto& req = calls_.deploys.back();
  EXPECT_EQ(req.attempt(), 1);
  EXPECT_EQ(req.restore().checkpoint_id(), cp);
  EXPECT_NE(info.restored_from().find("chk-" + std::to_string(cp)), std::string::npos);
  // The new attempt checkpoints with ids after the restored one.
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) {
      proto::TaskStateUpdate u;
      u.set_job_id(*id);
      u.set_attempt(1);
      u.set_task_id(t);
      u.set_subtask(i);
      u.set_state(proto::SubtaskInfo::RUNNING);
      jm_->UpdateTaskState(u);
    }
  }
  now_ += 100;
  for (const char* tm : {"a", "b"}) Beat(tm);
  Tick();
  EXPECT_GT(calls_.triggers.back().checkpoint_id(), cp);
  EXPECT_EQ(calls_.triggers.back().attempt(), 1);
}

TEST_F(JobManagerTest, RegistrationIsRefusedWhenTheAdvertisedAddressDoesNotAnswer) {
  calls_.unreachable.insert("lost:1");
  proto::RegisterTaskManagerRequest r;
  r.set_tm_id("lost");
  r.set_rpc_address("lost:1");
  r.set_data_address("lost:2");
  r.set_slots(2);
  auto resp = jm_->RegisterTaskManager(r);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(resp.status().message().find("lost:1"), std::string::npos) << resp.status().message();
  EXPECT_NE(resp.status().message().find("rpc_advertise"), std::string::npos);
  EXPECT_TRUE(jm_->ListTaskManagers().empty());
  // Another task manager answering there is refused too (it would get this one's deployments).
  calls_.answers_as["shared:1"] = "other";
  r.set_tm_id("mine");
  r.set_rpc_address("shared:1");
  resp = jm_->RegisterTaskManager(r);
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.status().message().find("'other'"), std::string::npos) << resp.status().message();
  EXPECT_TRUE(jm_->ListTaskManagers().empty());
  // Reachable: registered, and told the heartbeat timeout it fences itself by.
  r.set_rpc_address("mine:1");
  resp = jm_->RegisterTaskManager(r);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->heartbeat_timeout_ms(), 5000);
  EXPECT_EQ(resp->jm_session(), jm_->session());
  EXPECT_EQ(jm_->ListTaskManagers().size(), 1u);
}

TEST_F(JobManagerTest, HeartbeatAnswerNamesAttemptsThatAreNotCurrent) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  auto beat = [&](std::vector<std::tuple<std::string, int, std::string>> attempts) {
    proto::HeartbeatRequest r;
    r.set_tm_id("a");
    for (const auto& [job, attempt, session] : attempts) {
      proto::AttemptRef* a = r.add_attempts();
      a->set_job_id(job);
      a->set_attempt(attempt);
      a->set_jm_session(session);
    }
    std::set<std::pair<std::string, int>> stale;
    const proto::HeartbeatResponse resp = jm_->Heartbeat(r);
    for (const auto& a : resp.stale()) stale.insert({a.job_id(), a.attempt()});
    return stale;
  };
  const std::string me = jm_->session();
  EXPECT_TRUE(beat({{*id, 0, me}}).empty()) << "the current attempt is not stale";
  // Deployed by another job manager, unknown job: stale.
  EXPECT_EQ(beat({{*id, 0, "another-session"}}), (std::set<std::pair<std::string, int>>{{*id, 0}}));
  EXPECT_EQ(beat({{"nosuchjob", 0, me}}),
            (std::set<std::pair<std::string, int>>{{"nosuchjob", 0}}));
  // Replaced: once the job restarts, attempt 0 is stale (also while it is RESTARTING).
  Report(*id, "agg", 1, TaskState::kFailed, "IO_ERROR: boom");
  EXPECT_EQ(State(*id), "RESTARTING");
  EXPECT_EQ(beat({{*id, 0, me}}), (std::set<std::pair<std::string, int>>{{*id, 0}}));
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) Report(*id, t, i, TaskState::kCanceled);
  }
  now_ += 200;
  Beat("a");
  Tick();
  ASSERT_EQ(jm_->GetJob(*id)->attempt(), 1);
  EXPECT_EQ(beat({{*id, 0, me}, {*id, 1, me}}), (std::set<std::pair<std::string, int>>{{*id, 0}}));
}

TEST_F(JobManagerTest, TriggersAndNotificationsCarryTheSessionAndQueuedOnesDieWithTheAttempt) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  now_ += 100;
  Tick();
  ASSERT_FALSE(calls_.triggers.empty());
  EXPECT_EQ(calls_.triggers.back().jm_session(), jm_->session());
  const int64_t cp = calls_.triggers.back().checkpoint_id();
  AckAll(*id, cp);
  ASSERT_EQ(calls_.notifies.size(), 1u);
  EXPECT_EQ(calls_.notifies[0].jm_session(), jm_->session());
  EXPECT_EQ(calls_.notifies[0].attempt(), 0);
  // The next checkpoint completes, and its notification waits in the task manager's lane
  // (behind a hung call, say) when the attempt fails: it must never be delivered. The next
  // attempt restores from that checkpoint and commits it itself.
  now_ += 200;
  Tick();
  const int64_t cp2 = calls_.triggers.back().checkpoint_id();
  ASSERT_GT(cp2, cp);
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) {
      proto::AcknowledgeCheckpointRequest a;
      a.set_job_id(*id);
      a.set_task_id(t);
      a.set_subtask(i);
      a.set_checkpoint_id(cp2);
      jm_->AcknowledgeCheckpoint(a);
    }
  }
  // Run the finalization (the I/O lane), which queues the notification; not the notification.
  size_t queued = pending_.size();
  for (size_t n = 0; n < queued; ++n) {
    auto fn = std::move(pending_.front());
    pending_.erase(pending_.begin());
    fn();
  }
  ASSERT_EQ(jm_->GetJob(*id)->checkpoints().completed(), 2);
  ASSERT_FALSE(pending_.empty()) << "the notification is queued";
  ASSERT_EQ(calls_.notifies.size(), 1u);
  proto::TaskStateUpdate u;
  u.set_job_id(*id);
  u.set_task_id("agg");
  u.set_subtask(1);
  u.set_state(proto::SubtaskInfo::FAILED);
  u.set_error("IO_ERROR: boom");
  u.set_error_code(static_cast<int>(StatusCode::kIoError));
  jm_->UpdateTaskState(u);
  Drain();
  EXPECT_EQ(State(*id), "RESTARTING");
  EXPECT_EQ(calls_.notifies.size(), 1u) << "a queued notification of the replaced attempt was sent";
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) Report(*id, t, i, TaskState::kCanceled);
  }
  now_ += 200;
  Beat("a");
  Tick();
  ASSERT_EQ(calls_.deploys.back().attempt(), 1);
  EXPECT_EQ(calls_.deploys.back().restore().checkpoint_id(), cp2);
}

TEST_F(JobManagerTest, LostTaskManagerRestartsOntoRemainingSlotsOrWaits) {
  AddTm("a", 1);
  AddTm("b", 1);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  now_ += 3000;
  Beat("a");
  now_ += 3000;  // b is silent
  Tick();
  EXPECT_EQ(State(*id), "RESTARTING");
  // b's subtasks will never report; a's do.
  for (const char* t : {"gen", "agg"}) Report(*id, t, 0, TaskState::kCanceled);
  now_ += 200;
  Beat("a");
  Tick();
  auto info = *jm_->GetJob(*id);
  EXPECT_EQ(info.state(), proto::JobInfo::CREATED) << "one slot left, two needed: waits";
  EXPECT_NE(info.failure().find("waiting for slots"), std::string::npos);
  now_ += 60000;  // far beyond the slot wait timeout: a restarted job keeps waiting
  Beat("a");
  Tick();
  EXPECT_EQ(State(*id), "CREATED");
  AddTm("b", 1);  // it comes back
  EXPECT_EQ(State(*id), "RUNNING");
}

TEST_F(JobManagerTest, RestartStrategyGivesUpAndCancelWorksWhileRestarting) {
  AddTm("a", 2);
  proto::JobGraph g = CheckpointedGraph(100);
  g.mutable_restart_strategy()->set_type("fixed-delay");
  g.mutable_restart_strategy()->set_attempts(1);
  g.mutable_restart_strategy()->set_delay_ms(10);
  auto id = Submit(g);
  Report(*id, "gen", 0, TaskState::kFailed, "IO_ERROR: one");
  EXPECT_EQ(State(*id), "RESTARTING");
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) Report(*id, t, i, TaskState::kCanceled);
  }
  now_ += 20;
  Beat("a");
  Tick();
  EXPECT_EQ(State(*id), "RUNNING");
  proto::TaskStateUpdate u;
  u.set_job_id(*id);
  u.set_attempt(1);
  u.set_task_id("agg");
  u.set_subtask(0);
  u.set_state(proto::SubtaskInfo::FAILED);
  u.set_error_code(static_cast<int>(StatusCode::kIoError));
  u.set_error("IO_ERROR: two");
  jm_->UpdateTaskState(u);
  Drain();
  auto info = *jm_->GetJob(*id);
  EXPECT_EQ(info.state(), proto::JobInfo::FAILED);
  EXPECT_NE(info.failure().find("gave up after 1 restarts"), std::string::npos) << info.failure();

  auto id2 = Submit(CheckpointedGraph(100));
  Report(*id2, "gen", 0, TaskState::kFailed, "IO_ERROR: x");
  EXPECT_EQ(State(*id2), "RESTARTING");
  ASSERT_TRUE(jm_->CancelJob(*id2).ok());
  Drain();
  EXPECT_EQ(State(*id2), "CANCELED");
}

}  // namespace
}  // namespace weir::jm

namespace weir::jm {
namespace {

TEST_F(JobManagerTest, HaRecordNamesACheckpointBeforeAnySinkHearsOfIt) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(100));
  const fs::path record = dir_ / "ha" / (*id + ".job");
  ASSERT_TRUE(fs::exists(record)) << "recorded at submission";
  int checked = 0;
  calls_.on_notify = [&](const proto::NotifyCheckpointRequest& req) {
    std::ifstream in(record, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    proto::HaJobRecord r;
    ASSERT_TRUE(r.ParseFromString(ss.str()));
    EXPECT_NE(r.latest_checkpoint().find("chk-" + std::to_string(req.checkpoint_id())),
              std::string::npos)
        << "notified of " << req.checkpoint_id() << " while HA names " << r.latest_checkpoint();
    ++checked;
  };
  AllRunning(*id);
  now_ += 100;
  Tick();
  AckAll(*id, calls_.triggers.back().checkpoint_id());
  EXPECT_EQ(checked, 1);
  ASSERT_TRUE(jm_->CancelJob(*id).ok());
  Drain();
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) Report(*id, t, i, TaskState::kCanceled);
  }
  EXPECT_FALSE(fs::exists(record)) << "an ended job leaves the HA directory";
}


// Reports and acknowledgements of a given attempt (the fixture's helpers use attempt 0).
void ReportAttempt(JobManager& jm, const std::string& job, int attempt, TaskState st) {
  for (const char* t : {"gen", "agg"}) {
    for (int i = 0; i < 2; ++i) {
      proto::TaskStateUpdate u;
      u.set_job_id(job);
      u.set_attempt(attempt);
      u.set_task_id(t);
      u.set_subtask(i);
      u.set_state(ToProto(st));
      jm.UpdateTaskState(u);
    }
  }
}

proto::AcknowledgeCheckpointRequest Ack(const std::string& job, int attempt, const char* task,
                                        int sub, int64_t id) {
  proto::AcknowledgeCheckpointRequest a;
  a.set_job_id(job);
  a.set_attempt(attempt);
  a.set_task_id(task);
  a.set_subtask(sub);
  a.set_checkpoint_id(id);
  auto* os = a.add_states();
  os->set_vertex_id(task);
  os->set_subtask(sub);
  return a;
}

TEST_F(JobManagerTest, DeployErrorFromALiveTaskManagerFailsTheSubtaskButKeepsTheTaskManager) {
  AddTm("a", 2);
  calls_.deploy_error = Status::InvalidArgument("job graph rejected: something");
  auto id = Submit(Graph());
  ASSERT_TRUE(id.ok());
  const auto info = *jm_->GetJob(*id);
  EXPECT_EQ(info.state(), proto::JobInfo::FAILED);
  EXPECT_NE(info.failure().find("deployment to a:1 failed: job graph rejected"), std::string::npos)
      << info.failure();
  EXPECT_EQ(info.failure().find("lost"), std::string::npos) << info.failure();
  ASSERT_EQ(jm_->ListTaskManagers().size(), 1u) << "it answered: it is alive";
  // Its slots are free again for the next job.
  EXPECT_EQ(jm_->ListTaskManagers()[0].free_slots(), 2);
}

TEST_F(JobManagerTest, FailedHaWriteFailsTheCheckpointAndNoSinkIsToldItCompleted) {
  AddTm("a", 2);
  proto::JobGraph g = CheckpointedGraph(100);
  g.mutable_checkpointing()->set_tolerable_failures(0);
  auto id = Submit(g);
  AllRunning(*id);
  // The HA directory becomes a plain file: every write into it fails (permissions would not
  // stop root, which runs the tests in CI).
  fs::remove_all(dir_ / "ha");
  { std::ofstream(dir_ / "ha") << "not a directory"; }
  now_ += 100;
  Tick();
  const int64_t cp = calls_.triggers.back().checkpoint_id();
  AckAll(*id, cp);
  const auto info = *jm_->GetJob(*id);
  EXPECT_EQ(info.checkpoints().completed(), 0);
  EXPECT_EQ(info.checkpoints().failed(), 1);
  ASSERT_GT(info.checkpoints().recent_failures_size(), 0);
  EXPECT_NE(info.checkpoints().recent_failures(0).failure().find("HA record"), std::string::npos)
      << info.checkpoints().recent_failures(0).failure();
  for (const auto& n : calls_.notifies) EXPECT_FALSE(n.completed()) << "checkpoint " << n.checkpoint_id();
  // Counted against tolerable_failures (0): the attempt fails.
  EXPECT_NE(info.last_failure().find("too many consecutive checkpoint failures"), std::string::npos)
      << info.last_failure();
  EXPECT_FALSE(fs::exists(dir_ / "checkpoints" / *id / ("chk-" + std::to_string(cp))))
      << "a failed checkpoint's directory goes";
}

TEST_F(JobManagerTest, AcknowledgementNamingFilesOutsideItsCheckpointAbortsIt) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  const fs::path precious = dir_ / "precious";
  { std::ofstream(precious) << "keep me"; }
  int failed = 0;
  for (const std::string& bad :
       {std::string("shared/../../../precious"), (dir_ / "precious").string(), std::string("chk-999/x.sst"),
        std::string("shared//x.sst")}) {
    now_ += 100;
    Tick();
    const int64_t cp = calls_.triggers.back().checkpoint_id();
    auto a = Ack(*id, 0, "agg", 0, cp);
    auto* k = a.mutable_states(0)->mutable_keyed();
    k->set_backend("rocksdb");
    auto* f = k->add_files();
    f->set_path(bad);
    f->set_local_name("x.sst");
    jm_->AcknowledgeCheckpoint(a);
    Drain();
    const auto info = *jm_->GetJob(*id);
    EXPECT_EQ(info.checkpoints().failed(), ++failed) << bad;
    EXPECT_NE(info.checkpoints().recent_failures(0).failure().find("names file '" + bad + "' outside"),
              std::string::npos)
        << info.checkpoints().recent_failures(0).failure();
  }
  EXPECT_EQ(jm_->GetJob(*id)->checkpoints().completed(), 0);
  EXPECT_TRUE(fs::exists(precious));
}

TEST_F(JobManagerTest, CheckpointAndSavepointIdsAreNeverReusedAcrossFailoversAndRestarts) {
  AddTm("a", 2);
  proto::JobGraph g = CheckpointedGraph(0);  // savepoints only
  g.mutable_restart_strategy()->set_type("fixed-delay");
  g.mutable_restart_strategy()->set_attempts(5);
  g.mutable_restart_strategy()->set_delay_ms(10);
  auto id = Submit(g);
  std::vector<std::string> paths;
  auto savepoint = [&](int attempt) {
    proto::SavepointRequest req;
    req.set_job_id(*id);
    std::optional<Result<proto::SavepointResponse>> out;
    jm_->TriggerSavepoint(req, [&](Result<proto::SavepointResponse> r) { out = std::move(r); });
    Tick();
    const int64_t sp = calls_.triggers.back().checkpoint_id();
    for (const char* t : {"gen", "agg"}) {
      for (int i = 0; i < 2; ++i) jm_->AcknowledgeCheckpoint(Ack(*id, attempt, t, i, sp));
    }
    Drain();
    ASSERT_TRUE(out && out->ok()) << (out ? out->status().ToString() : "no answer");
    paths.push_back((*out)->path());
  };
  ReportAttempt(*jm_, *id, 0, TaskState::kRunning);
  savepoint(0);
  // A failover: the next attempt's savepoint gets a new id and directory.
  ReportAttempt(*jm_, *id, 0, TaskState::kFailed);
  ReportAttempt(*jm_, *id, 0, TaskState::kCanceled);
  now_ += 20;
  Beat("a");
  Tick();
  ASSERT_EQ(jm_->GetJob(*id)->attempt(), 1);
  ReportAttempt(*jm_, *id, 1, TaskState::kRunning);
  savepoint(1);
  // A new job manager on the same HA directory resumes the job: ids go on from the reservation.
  JobManagerOptions o;
  o.checkpoints.directory = (dir_ / "checkpoints").string();
  o.savepoint_dir = (dir_ / "savepoints").string();
  o.ha_dir = (dir_ / "ha").string();
  jm_ = std::make_unique<JobManager>(
      o, std::make_unique<FakeGateway>(&calls_), [this] { return now_; },
      [this](const std::string&, std::function<void()> fn) { pending_.push_back(std::move(fn)); },
      &BuiltinOperators());
  ASSERT_EQ(*jm_->RecoverJobs(), 1);
  Drain();
  AddTm("a", 2);
  const int attempt = jm_->GetJob(*id)->attempt();
  ReportAttempt(*jm_, *id, attempt, TaskState::kRunning);
  savepoint(attempt);
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_NE(paths[0], paths[1]);
  EXPECT_NE(paths[1], paths[2]);
  EXPECT_NE(paths[0], paths[2]);
  for (const auto& p : paths) EXPECT_TRUE(fs::exists(fs::path(p) / "_metadata")) << p;
}

TEST_F(JobManagerTest, FinishedJobsBeyondRetainedJobsAreForgotten) {
  JobManagerOptions o;
  o.retained_jobs = 2;
  jm_ = std::make_unique<JobManager>(
      o, std::make_unique<FakeGateway>(&calls_), [this] { return now_; },
      [this](const std::string&, std::function<void()> fn) { pending_.push_back(std::move(fn)); },
      &BuiltinOperators());
  AddTm("a", 8);
  std::vector<std::string> ids;
  for (int j = 0; j < 5; ++j) {
    auto id = Submit(Graph());
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
    ASSERT_TRUE(jm_->CancelJob(*id).ok());
    Drain();
    ReportAttempt(*jm_, *id, 0, TaskState::kCanceled);
    Tick();
  }
  auto running = Submit(Graph());  // a live job is never forgotten
  Tick();
  EXPECT_EQ(jm_->jobs_held(), 3u);
  EXPECT_EQ(jm_->ListJobs().size(), 3u);
  for (int j = 0; j < 3; ++j) EXPECT_FALSE(jm_->GetJob(ids[j]).ok()) << j;
  for (int j = 3; j < 5; ++j) EXPECT_EQ(State(ids[j]), "CANCELED");
  EXPECT_EQ(State(*running), "RUNNING");
}

}  // namespace
}  // namespace weir::jm

// ---------------------------------------------------------------- policy (issue #12, item 4)
namespace weir::jm {
namespace {

TEST_F(JobManagerTest, SubmitRefusesOutputsOutsideAllowedPaths) {
  JobManagerOptions o;
  o.checkpoints.directory = (dir_ / "checkpoints").string();
  const std::string allowed = (dir_ / "out").string();
  o.allowed_paths = {allowed};
  jm_ = std::make_unique<JobManager>(
      o, std::make_unique<FakeGateway>(&calls_), [this] { return now_; },
      [this](const std::string&, std::function<void()> fn) { pending_.push_back(std::move(fn)); },
      &BuiltinOperators());
  AddTm("a", 2);
  auto job = [&](const std::string& sink_type, const std::string& path,
                 const std::string& extra = "") {
    return Graph("name: p\n" + extra +
                 "vertices:\n"
                 "  - {id: gen, type: datagen, config: {total: 1, fields: [{name: k, expr: \"id\"}]}}\n"
                 "  - {id: out, type: " + sink_type + ", config: {path: \"" + path + "\"}}\n"
                 "edges:\n  - {from: gen, to: out}\n");
  };
  for (const char* type : {"file", "committing_file"}) {
    EXPECT_TRUE(Submit(job(type, allowed + "/x")).ok()) << type;
    EXPECT_TRUE(Submit(job(type, allowed)).ok()) << type;
    for (const std::string& bad : {(dir_ / "outside").string(), allowed + "/../elsewhere",
                                   std::string("/etc"), std::string("relative/out")}) {
      auto r = Submit(job(type, bad));
      ASSERT_FALSE(r.ok()) << type << " " << bad;
      EXPECT_NE(r.status().message().find("vertex 'out': config.path"), std::string::npos)
          << r.status().message();
      EXPECT_NE(r.status().message().find("security.allowed_paths"), std::string::npos);
    }
  }
  // A job's own checkpoint directory.
  auto ck = Submit(job("file", allowed + "/x", "checkpointing: {interval: 1s, dir: /tmp/elsewhere}\n"));
  ASSERT_FALSE(ck.ok());
  EXPECT_NE(ck.status().message().find("checkpointing.dir"), std::string::npos)
      << ck.status().message();
  // parse's dirty: {path} shorthand becomes a committing_file vertex: checked the same way.
  auto dirty = Submit(Graph(
      "name: d\nvertices:\n"
      "  - {id: gen, type: datagen, config: {total: 1, fields: [{name: value, expr: \"string(id)\"}]}}\n"
      "  - {id: p, type: parse, config: {format: json, fields: [{name: n, type: int64}], "
      "dirty: {path: /tmp/dirty-out}}}\n"
      "  - {id: out, type: blackhole}\n"
      "edges:\n  - {from: gen, to: p}\n  - {from: p, to: out}\n"));
  ASSERT_FALSE(dirty.ok());
  EXPECT_NE(dirty.status().message().find("/tmp/dirty-out"), std::string::npos)
      << dirty.status().message();
  // What a job reads: lookup_join's side input.
  auto lookup = [&](const std::string& path) {
    return Submit(Graph(
        "name: l\nvertices:\n"
        "  - {id: gen, type: datagen, config: {total: 1, fields: [{name: a, expr: \"id\"}]}}\n"
        "  - {id: side, type: lookup_join, config: {path: \"" +
        path +
        "\", schema: [{name: k, "
        "type: int64}, {name: v}], key: k, lookup: a}}\n"
        "  - {id: out, type: blackhole}\n"
        "edges:\n  - {from: gen, to: side}\n  - {from: side, to: out}\n"));
  };
  EXPECT_TRUE(lookup(allowed + "/side.csv").ok());
  auto side = lookup("/etc/passwd");
  ASSERT_FALSE(side.ok());
  EXPECT_NE(side.status().message().find("vertex 'side': config.path: '/etc/passwd' is outside"),
            std::string::npos)
      << side.status().message();
  // A savepoint into a directory outside is refused; the job keeps running.
  auto running = Submit(job("file", allowed + "/y"));
  ASSERT_TRUE(running.ok());
  Report(*running, "gen", 0, TaskState::kRunning);
  proto::SavepointRequest req;
  req.set_job_id(*running);
  req.set_directory("/tmp/not-allowed");
  std::optional<Status> answer;
  jm_->TriggerSavepoint(req, [&](Result<proto::SavepointResponse> r) { answer = r.status(); });
  Drain();
  ASSERT_TRUE(answer.has_value());
  EXPECT_FALSE(answer->ok());
  EXPECT_NE(answer->message().find("savepoint directory"), std::string::npos) << answer->message();
}

TEST_F(JobManagerTest, ForgedAcknowledgementsAreRefusedAndDeleteNothing) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  const fs::path precious = dir_ / "precious";
  { std::ofstream(precious) << "keep me"; }
  struct Forgery {
    std::string what;
    std::function<void(proto::AcknowledgeCheckpointRequest&)> apply;
    std::string expect;
  };
  auto file = [](proto::AcknowledgeCheckpointRequest& a, const std::string& path,
                 const std::string& local, uint64_t size = 10) {
    auto* k = a.mutable_states(0)->mutable_keyed();
    k->set_backend("rocksdb");
    k->set_key_group_first(0);
    k->set_key_group_last(63);
    auto* f = k->add_files();
    f->set_path(path);
    f->set_local_name(local);
    f->set_size(size);
  };
  const std::vector<Forgery> forgeries = {
      {"../../etc/passwd", [&](auto& a) { file(a, "../../etc/passwd", "x.sst"); }, "outside"},
      {"absolute", [&](auto& a) { file(a, precious.string(), "x.sst"); }, "outside"},
      {"shared/../..", [&](auto& a) { file(a, "shared/../../precious", "x.sst"); }, "outside"},
      {"local name ..", [&](auto& a) { file(a, "shared/x.sst", ".."); }, "local name"},
      {"local name a/b", [&](auto& a) { file(a, "shared/x.sst", "../../x"); }, "local name"},
      {"size", [&](auto& a) { file(a, "shared/x.sst", "x.sst", ~uint64_t{0}); }, "impossible size"},
      {"key groups", [&](auto& a) {
         file(a, "shared/x.sst", "x.sst");
         a.mutable_states(0)->mutable_keyed()->set_key_group_last(100000);
       }, "key groups"},
      {"another vertex", [&](auto& a) { a.mutable_states(0)->set_vertex_id("gen"); }, "not (once) its own"},
      {"another subtask", [&](auto& a) { a.mutable_states(0)->set_subtask(1); }, "not (once) its own"},
      {"negative count", [&](auto& a) { (*a.mutable_states(0)->mutable_counts())["x"] = -5; }, "count"},
  };
  int failed = 0;
  for (const Forgery& f : forgeries) {
    now_ += 100;
    Tick();
    const int64_t cp = calls_.triggers.back().checkpoint_id();
    auto a = Ack(*id, 0, "agg", 0, cp);
    f.apply(a);
    jm_->AcknowledgeCheckpoint(a);
    Drain();
    const auto info = *jm_->GetJob(*id);
    EXPECT_EQ(info.checkpoints().failed(), ++failed) << f.what;
    EXPECT_NE(info.checkpoints().recent_failures(0).failure().find(f.expect), std::string::npos)
        << f.what << ": " << info.checkpoints().recent_failures(0).failure();
  }
  EXPECT_EQ(jm_->GetJob(*id)->checkpoints().completed(), 0);
  EXPECT_TRUE(fs::exists(precious));
}

TEST_F(JobManagerTest, RestoreRefusesMetadataNamingFilesOutsideTheSnapshot) {
  AddTm("a", 2);
  auto id = Submit(CheckpointedGraph(100));
  AllRunning(*id);
  now_ += 100;
  Tick();
  const int64_t cp = calls_.triggers.back().checkpoint_id();
  AckAll(*id, cp);
  const std::string chk = (dir_ / "checkpoints" / *id / ("chk-" + std::to_string(cp))).string();
  auto md = ReadMetadata(chk);
  ASSERT_TRUE(md.ok());
  auto plan = BuildPlan(ParseJobFile(kJob).value(), BuiltinOperators());
  ASSERT_TRUE(plan.ok());
  for (const std::string& bad : {std::string("../../../etc/passwd"), std::string("/etc/passwd")}) {
    proto::CheckpointMetadata forged = *md;
    for (auto& vs : *forged.mutable_vertices()) {
      if (vs.vertex_id() != "agg") continue;
      auto* k = vs.mutable_subtasks(0)->mutable_keyed();
      k->set_backend("rocksdb");
      k->set_key_group_last(10);
      auto* f = k->add_files();
      f->set_path(bad);
      f->set_local_name("x.sst");
    }
    auto r = PlanRestore(forged, chk, *plan, false);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("names file '" + bad + "' outside"), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace weir::jm
