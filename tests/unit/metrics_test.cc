// Live figures: the task manager's sampler (cumulative counters to per-second rates), the job
// manager's view of them (heartbeats, throughput history, exceptions, the plan) and the
// Prometheus text both serve.
#include <gtest/gtest.h>

#include "subtask_sampler.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/jobmanager/job_manager.h"
#include "weir/jobmanager/metrics.h"
#include "weir/prometheus_families.h"

namespace weir {
namespace {

TEST(SubtaskSampler, RatesAndTimesPerSecondBetweenSamples) {
  OperatorMetrics m;
  tm::SubtaskSampler s;
  m.records_in = 100;
  proto::SubtaskMetrics first = s.Sample(m, 1'000'000'000, 5000);
  EXPECT_EQ(first.records_in(), 100);
  EXPECT_EQ(first.records_in_per_second(), 0);  // no interval yet
  EXPECT_FALSE(first.has_input_watermark());
  // Two seconds later: 4000 more in, 1000 out; 500 ms idle and 1 s back-pressured.
  m.records_in = 4100;
  m.records_out = 1000;
  m.idle_ns = 500'000'000;
  m.backpressured_ns = 1'000'000'000;
  m.input_watermark = 1234;
  m.input_queued = 3;
  m.input_capacity = 12;
  proto::SubtaskMetrics second = s.Sample(m, 3'000'000'000, 7000);
  EXPECT_DOUBLE_EQ(second.records_in_per_second(), 2000);
  EXPECT_DOUBLE_EQ(second.records_out_per_second(), 500);
  EXPECT_DOUBLE_EQ(second.idle_ms_per_second(), 250);
  EXPECT_DOUBLE_EQ(second.backpressured_ms_per_second(), 500);
  EXPECT_DOUBLE_EQ(second.busy_ms_per_second(), 250);
  EXPECT_DOUBLE_EQ(second.input_buffer_usage(), 0.25);
  EXPECT_DOUBLE_EQ(second.output_buffer_usage(), 0.5);
  EXPECT_EQ(second.input_watermark(), 1234);
  EXPECT_FALSE(second.has_output_watermark());
  EXPECT_EQ(second.sample_time_ms(), 7000);
}

TEST(SubtaskSampler, TimesPerSecondStayWithinASecond) {
  OperatorMetrics m;
  tm::SubtaskSampler s;
  s.Sample(m, 0, 0);
  m.idle_ns = 5'000'000'000;  // more than the interval (clock skew between readings)
  proto::SubtaskMetrics r = s.Sample(m, 1'000'000'000, 1000);
  EXPECT_DOUBLE_EQ(r.idle_ms_per_second(), 1000);
  EXPECT_DOUBLE_EQ(r.busy_ms_per_second(), 0);
}

TEST(SubtaskSampler, IdleAndBackPressureTogetherFillAtMostTheInterval) {
  OperatorMetrics m;
  tm::SubtaskSampler s;
  s.Sample(m, 0, 0);
  m.idle_ns = 900'000'000;
  m.backpressured_ns = 300'000'000;  // 1.2 s of waits in a 1 s interval
  proto::SubtaskMetrics r = s.Sample(m, 1'000'000'000, 1000);
  EXPECT_DOUBLE_EQ(r.idle_ms_per_second() + r.backpressured_ms_per_second(), 1000);
  EXPECT_DOUBLE_EQ(r.idle_ms_per_second(), 750);
  EXPECT_DOUBLE_EQ(r.busy_ms_per_second(), 0);
}

TEST(FamilyBuilder, GroupsPointsByNameWithLabelsAndTypes) {
  FamilyBuilder b;
  b.Counter("weir_x_total", "x", {{"job", "j"}}, 3);
  b.Counter("weir_x_total", "x", {{"job", "k"}}, 4);
  MetricPoint p{"weir_kafka_consumer_lag", "lag", MetricKind::kGauge,
                {{"vertex", "src"}, {"partition", "1"}}, 7};
  b.AddPoint(p, {{"job", "j"}, {"vertex", "task"}, {"subtask", "0"}});
  const std::string text = PrometheusText(b.Take());
  EXPECT_NE(text.find("# TYPE weir_x_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("weir_x_total{job=\"k\"} 4"), std::string::npos) << text;
  // The operator's vertex replaces the task's; its own labels are added.
  EXPECT_NE(text.find("weir_kafka_consumer_lag{job=\"j\",vertex=\"src\",subtask=\"0\",partition=\"1\"} 7"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE weir_kafka_consumer_lag gauge"), std::string::npos);
}

TEST(ProcessMetrics, ReadsThisProcess) {
  FamilyBuilder b;
  AddProcessMetrics(b, {{"component", "test"}});
  const std::string text = PrometheusText(b.Take());
  for (const char* name : {"weir_process_resident_memory_bytes", "weir_process_cpu_seconds_total",
                           "weir_process_threads", "weir_process_open_fds"}) {
    EXPECT_NE(text.find(std::string(name) + "{component=\"test\"}"), std::string::npos) << name;
  }
  EXPECT_EQ(text.find("weir_process_threads{component=\"test\"} 0"), std::string::npos) << text;
}

class NoGateway : public jm::TaskManagerGateway {
 public:
  Status DeployTask(const std::string&, const proto::DeployTaskRequest&) override {
    return Status::Ok();
  }
  Status CancelJobTasks(const std::string&, const std::string&, int) override {
    return Status::Ok();
  }
  Status TriggerCheckpoint(const std::string&, const proto::TriggerCheckpointRequest&) override {
    return Status::Ok();
  }
  Status NotifyCheckpoint(const std::string&, const proto::NotifyCheckpointRequest&) override {
    return Status::Ok();
  }
  Result<std::string> Ping(const std::string&, int64_t) override { return std::string("tm1"); }
};

constexpr const char* kJob = R"(
name: j
vertices:
  - {id: gen, type: datagen, parallelism: 1, config: {fields: [{name: k, expr: "id % 2"}]}}
  - {id: agg, type: keyed_aggregate, parallelism: 1, config: {key: [k], aggregations: [{fn: count}]}}
  - {id: out, type: blackhole, parallelism: 1}
edges:
  - {from: gen, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)";

class JobManagerMetricsTest : public ::testing::Test {
 protected:
  JobManagerMetricsTest() {
    jm::JobManagerOptions o;
    o.heartbeat_interval_ms = 1000;
    jm_ = std::make_unique<jm::JobManager>(
        o, std::make_unique<NoGateway>(), [this] { return now_; },
        [this](const std::string&, std::function<void()> fn) { pending_.push_back(std::move(fn)); },
        &BuiltinOperators());
    proto::RegisterTaskManagerRequest r;
    r.set_tm_id("tm1");
    r.set_slots(1);
    r.set_metrics_address("127.0.0.1:9999");
    EXPECT_TRUE(jm_->RegisterTaskManager(r).ok());
    auto spec = ParseJobFile(kJob);
    proto::JobGraph g;
    ToProto(spec.value(), &g);
    auto id = jm_->SubmitJob(g);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    job_ = *id;
    Drain();
    for (const char* t : {"gen", "agg"}) {
      proto::TaskStateUpdate u;
      u.set_job_id(job_);
      u.set_task_id(t);
      u.set_state(proto::SubtaskInfo::RUNNING);
      jm_->UpdateTaskState(u);
    }
  }
  void Drain() {
    while (!pending_.empty()) {
      auto fn = std::move(pending_.front());
      pending_.erase(pending_.begin());
      fn();
    }
  }
  void Beat(double gen_rate, int attempt = 0, const std::string& tm = "tm1") {
    proto::HeartbeatRequest h;
    h.set_tm_id(tm);
    auto* r = h.add_metrics();
    r->set_job_id(job_);
    r->set_attempt(attempt);
    r->set_task_id("gen");
    r->set_subtask(0);
    r->mutable_metrics()->set_records_out(42);
    r->mutable_metrics()->set_records_out_per_second(gen_rate);
    r->mutable_metrics()->set_busy_ms_per_second(300);
    jm_->Heartbeat(h);
  }
  std::vector<std::function<void()>> pending_;
  int64_t now_ = 1'000'000;
  std::unique_ptr<jm::JobManager> jm_;
  std::string job_;
};

TEST_F(JobManagerMetricsTest, HeartbeatFiguresReachJobInfoAndThroughputHistory) {
  Beat(5000);
  auto info = jm_->GetJob(job_);
  ASSERT_TRUE(info.ok());
  const proto::SubtaskInfo* gen = nullptr;
  for (const auto& s : info->subtasks()) {
    if (s.task_id() == "gen") gen = &s;
  }
  ASSERT_NE(gen, nullptr);
  EXPECT_EQ(gen->records_out(), 42);
  EXPECT_DOUBLE_EQ(gen->metrics().records_out_per_second(), 5000);
  // A report of another attempt, or from a task manager the subtask is not on, is ignored.
  Beat(1, /*attempt=*/7);
  Beat(2, 0, "tm-other");
  EXPECT_DOUBLE_EQ(jm_->GetJob(job_)->subtasks(0).metrics().records_out_per_second(), 5000);
  // One throughput sample per heartbeat interval, bounded.
  for (int i = 0; i < 400; ++i) {
    now_ += 1000;
    Beat(5000);
    jm_->Tick();
    Drain();
  }
  auto hist = jm_->ThroughputHistory(job_);
  ASSERT_TRUE(hist.ok());
  EXPECT_EQ(hist->size(), jm::JobManager::kThroughputSamples);
  EXPECT_DOUBLE_EQ(hist->back().records_out_per_second().at("gen"), 5000);
  EXPECT_LT(hist->front().time_ms(), hist->back().time_ms());
  EXPECT_FALSE(jm_->ThroughputHistory("nope").ok());
}

TEST_F(JobManagerMetricsTest, PlanExceptionsAndTaskManagerAddressAreShown) {
  auto info = jm_->GetJob(job_);
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->plan_size(), 2);  // gen | agg -> out
  EXPECT_EQ(info->plan(0).task_id(), "gen");
  ASSERT_EQ(info->plan(1).vertices_size(), 2);
  EXPECT_EQ(info->plan(1).vertex_types(0), "keyed_aggregate");
  ASSERT_EQ(info->plan(1).inputs_size(), 1);
  EXPECT_EQ(info->plan(1).inputs(0).partitioning(), "hash");
  EXPECT_EQ(info->plan(1).inputs(0).from_task(), "gen");
  EXPECT_GT(info->attempt_start_time_ms(), 0);
  EXPECT_EQ(jm_->ListTaskManagers()[0].metrics_address(), "127.0.0.1:9999");
  proto::TaskStateUpdate u;
  u.set_job_id(job_);
  u.set_task_id("agg");
  u.set_state(proto::SubtaskInfo::FAILED);
  u.set_error("boom");
  u.set_error_code(static_cast<int>(StatusCode::kInternal));
  jm_->UpdateTaskState(u);
  Drain();
  info = jm_->GetJob(job_);
  ASSERT_GE(info->exceptions_size(), 1);
  EXPECT_NE(info->exceptions(0).cause().find("boom"), std::string::npos);
  EXPECT_TRUE(info->exceptions(0).root_cause());
  EXPECT_EQ(info->exceptions(0).time_ms(), now_);
}

TEST_F(JobManagerMetricsTest, PrometheusTextOfTheJobManager) {
  Beat(5000);
  const std::string text = jm::JobManagerMetricsText(*jm_, now_ + 10'000);
  for (const std::string& want : std::vector<std::string>{
           "weir_jobmanager_taskmanagers 1", "weir_jobmanager_slots_total 1",
        "weir_job_status{job=\"" + job_ + "\",name=\"j\",state=\"RUNNING\"} 1",
        "weir_job_restarts_total{job=\"" + job_ + "\"} 0",
        "weir_job_uptime_seconds{job=\"" + job_ + "\"} 10",
        "weir_job_checkpoints_completed_total{job=\"" + job_ + "\"} 0",
        "weir_vertex_records_out_per_second{job=\"" + job_ + "\",vertex=\"gen\"} 5000",
        "weir_jobmanager_jobs{state=\"RUNNING\"} 1", "weir_process_open_fds"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
}

}  // namespace
}  // namespace weir
