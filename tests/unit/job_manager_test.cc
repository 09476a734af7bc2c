// The job manager's logic with a fake task manager gateway and a manual clock.
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "weir/job_graph.h"
#include "weir/jobmanager/job_manager.h"

namespace weir::jm {
namespace {

class FakeGateway : public TaskManagerGateway {
 public:
  struct Calls {
    std::mutex mu;
    std::vector<proto::DeployTaskRequest> deploys;
    std::map<std::string, int> deploys_per_tm;
    std::vector<std::string> cancels;
    bool fail_deploy = false;
  };
  explicit FakeGateway(Calls* calls) : calls_(calls) {}
  Status DeployTask(const std::string& addr, const proto::DeployTaskRequest& req) override {
    std::lock_guard<std::mutex> lock(calls_->mu);
    if (calls_->fail_deploy) return Status::Unavailable("connection refused");
    calls_->deploys.push_back(req);
    ++calls_->deploys_per_tm[addr];
    return Status::Ok();
  }
  Status CancelJobTasks(const std::string& addr, const std::string& job_id, int) override {
    std::lock_guard<std::mutex> lock(calls_->mu);
    calls_->cancels.push_back(addr + " " + job_id);
    return Status::Ok();
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
    JobManagerOptions o;
    o.heartbeat_timeout_ms = 5000;
    o.slot_wait_timeout_ms = 10000;
    jm_ = std::make_unique<JobManager>(
        o, std::make_unique<FakeGateway>(&calls_), [this] { return now_; },
        // Queued, run by Drain(): the real executor never runs work under the caller's lock.
        [this](std::function<void()> fn) { pending_.push_back(std::move(fn)); },
        &BuiltinOperators());
  }

  void AddTm(const std::string& id, int slots) {
    proto::RegisterTaskManagerRequest r;
    r.set_tm_id(id);
    r.set_rpc_address(id + ":1");
    r.set_data_address(id + ":2");
    r.set_slots(slots);
    jm_->RegisterTaskManager(r);
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
    u.set_state(TaskStateName(s));
    u.set_error(err);
    jm_->UpdateTaskState(u);
    Drain();
  }

  std::string State(const std::string& job) { return jm_->GetJob(job)->state(); }

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
  jm_->Heartbeat([] { proto::HeartbeatRequest r; r.set_tm_id("a"); return r; }());
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
    jm_->Heartbeat([] { proto::HeartbeatRequest r; r.set_tm_id("a"); return r; }());
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
  jm_->Heartbeat([] { proto::HeartbeatRequest r; r.set_tm_id("a"); return r; }());
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
  EXPECT_NE(jm_->GetJob(*id)->failure().find("deployment to a:1 failed"), std::string::npos);
}

TEST_F(JobManagerTest, CancelGoesThroughCancellingToCanceled) {
  AddTm("a", 2);
  auto id = Submit(Graph());
  auto st = jm_->CancelJob(*id);
  Drain();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*st, "CANCELLING");
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
