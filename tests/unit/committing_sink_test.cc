// The exactly-once committing_file sink, driven through real Tasks in one process: checkpoints
// are triggered and completed by the test as the job manager would, and restores are planned
// from the acknowledgements with the job manager's own PlanRestore.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "duckdb_reader.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/jobmanager/checkpoint_coordinator.h"
#include "weir/network.h"
#include "weir/partition_template.h"
#include "weir/record_counters.h"
#include "weir/task.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

// Only a guard against a hung test: nothing below depends on how long anything takes.
constexpr auto kHangGuard = std::chrono::seconds(60);

using RestorePlan = std::map<std::pair<std::string, int>, proto::RestoreInfo>;

// One attempt of a job: every subtask on its own thread, checkpoints driven by the test.
class Attempt {
 public:
  Attempt(const std::string& yaml, std::string job_id, int attempt, const fs::path& state_dir,
          const RestorePlan& restore = {}) {
    auto spec = ParseJobFile(yaml);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    auto plan = BuildPlan(std::move(spec).value(), BuiltinOperators());
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    plan_ = std::make_shared<const ExecutionPlan>(std::move(plan).value());
    for (size_t t = 0; t < plan_->tasks.size(); ++t) {
      const TaskPlan& tp = plan_->tasks[t];
      const bool source = plan_->spec.vertices[tp.vertices[0]].type == "datagen";
      for (int i = 0; i < tp.parallelism; ++i) {
        TaskSetup s;
        s.job_id = job_id;
        s.attempt = attempt;
        s.plan = plan_;
        s.task_index = static_cast<int>(t);
        s.subtask = i;
        s.network = &net_;
        s.registry = &BuiltinOperators();
        s.local_dir = (state_dir / (job_id + "-" + tp.id + "-" + std::to_string(i))).string();
        s.locate = [](const std::string&, int) { return PeerLocation{true, "", ""}; };
        auto it = restore.find({tp.id, i});
        if (it != restore.end()) s.restore = it->second;
        s.on_state = [this](TaskState st, const Status& err) {
          if (st != TaskState::kFailed) return;
          std::lock_guard<std::mutex> lock(mu_);
          errors_.push_back(err.ToString());
        };
        s.on_checkpoint_ack = [this](proto::AcknowledgeCheckpointRequest a) {
          std::lock_guard<std::mutex> lock(mu_);
          const int64_t id = a.checkpoint_id();
          acks_[id].push_back(std::move(a));
          cv_.notify_all();
        };
        s.on_checkpoint_decline = [this](int64_t id, const std::string& why) {
          std::lock_guard<std::mutex> lock(mu_);
          declines_[id].push_back(why);
          cv_.notify_all();
        };
        tasks_.push_back(std::make_unique<Task>(std::move(s)));
        if (source) sources_.push_back(tasks_.back().get());
      }
    }
    for (auto& t : tasks_) threads_.emplace_back([&t] { t->Run(); });
  }

  // After a failed assertion the job may still run (hold: true never ends): stop it.
  ~Attempt() {
    bool running = false;
    for (auto& th : threads_) running = running || th.joinable();
    if (running) Cancel();
    for (auto& th : threads_) {
      if (th.joinable()) th.join();
    }
  }

  const ExecutionPlan& plan() const { return *plan_; }

  // Rows the sources have produced so far.
  int64_t SourceRows() const {
    int64_t n = 0;
    for (const Task* t : sources_) n += t->metrics().records_in.load();
    return n;
  }
  bool AwaitSourceRows(int64_t n) const {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    while (SourceRows() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  void Trigger(int64_t id) {
    proto::CheckpointOptions opts;
    opts.set_root("/nonexistent-no-keyed-state");
    for (Task* t : sources_) t->TriggerCheckpoint(id, 0, opts);
  }
  // Waits until every subtask acknowledged or declined checkpoint `id`; true if all acked.
  bool AwaitCheckpoint(int64_t id) {
    std::unique_lock<std::mutex> lock(mu_);
    const bool done = cv_.wait_for(
        lock, kHangGuard, [&] { return acks_[id].size() + declines_[id].size() == tasks_.size(); });
    EXPECT_TRUE(done) << "checkpoint " << id << " hangs";
    return done && declines_[id].empty();
  }
  // Trigger + await, as the coordinator does (one checkpoint at a time).
  bool Checkpoint(int64_t id) {
    Trigger(id);
    return AwaitCheckpoint(id);
  }
  void Notify(int64_t id) {
    for (auto& t : tasks_) t->NotifyCheckpoint(id, true);
  }
  // As the coordinator does: with the minimum commit watermark per vertex of checkpoint id's
  // acknowledgements (when every subtask of the vertex reported one).
  void NotifyWithWatermarks(int64_t id) {
    std::map<std::string, std::pair<int64_t, int>> mins;
    for (const auto& a : Acks(id)) {
      for (const auto& os : a.states()) {
        if (!os.has_commit_watermark()) continue;
        auto [it, fresh] = mins.try_emplace(os.vertex_id(), os.commit_watermark(), 0);
        it->second.first = std::min(it->second.first, os.commit_watermark());
        ++it->second.second;
      }
    }
    std::map<std::string, int64_t> wms;
    for (const auto& v : plan_->spec.vertices) {
      auto it = mins.find(v.id);
      if (it != mins.end() && it->second.second == v.parallelism) wms[v.id] = it->second.first;
    }
    for (auto& t : tasks_) t->NotifyCheckpoint(id, true, wms);
  }
  std::vector<proto::AcknowledgeCheckpointRequest> Acks(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return acks_[id];
  }
  std::vector<std::string> Declines(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return declines_[id];
  }
  std::vector<std::string> Errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

  void Cancel() {
    for (auto& t : tasks_) t->MarkCancelled();
    for (auto& t : tasks_) t->Cancel();
  }
  std::vector<TaskState> Join() {
    for (auto& th : threads_) th.join();
    std::vector<TaskState> states;
    for (auto& t : tasks_) states.push_back(t->state());
    return states;
  }

 private:
  std::shared_ptr<const ExecutionPlan> plan_;
  NetworkEnvironment net_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<Task*> sources_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, std::vector<proto::AcknowledgeCheckpointRequest>> acks_;
  std::map<int64_t, std::vector<std::string>> declines_;
  std::vector<std::string> errors_;
};

// What the coordinator writes as _metadata when every subtask acknowledged.
proto::CheckpointMetadata MetadataFrom(const std::vector<proto::AcknowledgeCheckpointRequest>& acks,
                                       int64_t id, int max_parallelism) {
  std::map<std::string, std::map<int, proto::OperatorSubtaskState>> by_vertex;
  for (const auto& a : acks) {
    for (const auto& os : a.states()) by_vertex[os.vertex_id()][os.subtask()] = os;
  }
  proto::CheckpointMetadata md;
  md.set_checkpoint_id(id);
  md.set_max_parallelism(max_parallelism);
  for (auto& [vertex, subtasks] : by_vertex) {
    proto::VertexState* vs = md.add_vertices();
    vs->set_vertex_id(vertex);
    vs->set_parallelism(static_cast<int>(subtasks.size()));
    for (auto& [i, os] : subtasks) *vs->add_subtasks() = os;
  }
  return md;
}

// The sink's "pending@v1" entries in the acks: (checkpoint, staging name, final name).
struct Pending {
  int64_t checkpoint;
  std::string staging, final_name;
};
std::vector<Pending> PendingIn(const std::vector<proto::AcknowledgeCheckpointRequest>& acks,
                               const std::string& vertex) {
  std::vector<Pending> out;
  for (const auto& a : acks) {
    for (const auto& os : a.states()) {
      if (os.vertex_id() != vertex) continue;
      for (const auto& l : os.operator_state()) {
        if (l.name() != "pending@v1") continue;
        for (const std::string& e : l.entries()) {
          proto::CommittingFilePending p;
          EXPECT_TRUE(p.ParseFromString(e));
          out.push_back({p.checkpoint(), p.staging(), p.final_name()});
        }
      }
    }
  }
  return out;
}

// The ids datagen had emitted at the checkpoint, from its splits: a fresh subtask i of p owns
// ids i, i+p, ...; a split (next, stride) has emitted those below next; a finished split is
// gone from the state.
std::set<int64_t> EmittedAt(const std::vector<proto::AcknowledgeCheckpointRequest>& acks,
                            int64_t total, int p) {
  std::map<int64_t, int64_t> next_by_residue;
  for (const auto& a : acks) {
    for (const auto& os : a.states()) {
      if (os.vertex_id() != "gen") continue;
      EXPECT_EQ(os.operator_state(0).name(), "splits@v1");
      for (const std::string& e : os.operator_state(0).entries()) {
        proto::DatagenSplit sp;
        EXPECT_TRUE(sp.ParseFromString(e));
        EXPECT_EQ(sp.stride(), p);
        next_by_residue[sp.next() % p] = sp.next();
      }
    }
  }
  std::set<int64_t> ids;
  for (int64_t id = 0; id < total; ++id) {
    auto it = next_by_residue.find(id % p);
    if (it == next_by_residue.end() || id < it->second) ids.insert(id);
  }
  return ids;
}

class CommittingSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A parameterized test's name holds '/': flattened, so TearDown removes the whole tree.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '.');
    dir_ = fs::temp_directory_path() /
           ("weir-committing-sink-test-" + std::to_string(getpid()) + "-" + name);
    fs::remove_all(dir_);
    out_ = dir_ / "out";
    staging_ = out_ / ".staging";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Yaml(int gen_p, int sink_p, const std::string& gen_extra,
                   const std::string& partition = "forward") const {
    return R"Y(
vertices:
  - {id: gen, type: datagen, parallelism: )Y" +
           std::to_string(gen_p) + ", config: {" + gen_extra + R"Y(}}
  - {id: out, type: committing_file, parallelism: )Y" +
           std::to_string(sink_p) + ", config: {path: \"" + out_.string() + R"Y("}}
edges:
  - {from: gen, to: out, partition: )Y" +
           partition + "}\n";
  }

  // id -> how many times it occurs in the files of `dir` (not below it).
  static std::map<int64_t, int> IdsIn(const fs::path& dir, bool staging = false) {
    std::map<int64_t, int> ids;
    if (!fs::exists(dir)) return ids;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      const std::string name = e.path().filename().string();
      if (staging && !name.ends_with(".pending") && !name.ends_with(".inprogress")) continue;
      std::ifstream in(e.path());
      std::string line;
      while (std::getline(in, line)) {
        long long id;
        EXPECT_EQ(sscanf(line.c_str(), R"({"id":%lld})", &id), 1) << e.path() << ": " << line;
        ++ids[id];
      }
    }
    return ids;
  }
  std::map<int64_t, int> Committed() const { return IdsIn(out_); }

  std::set<std::string> Names(const fs::path& dir) const {
    std::set<std::string> names;
    if (!fs::exists(dir)) return names;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file()) names.insert(e.path().filename().string());
    }
    return names;
  }

  // Waits until every file is committed (the notification is handled on the task thread).
  bool AwaitCommitted(const std::vector<Pending>& files, int64_t up_to) const {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    for (const Pending& p : files) {
      if (p.checkpoint > up_to) continue;
      while (!fs::exists(out_ / p.final_name)) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return true;
  }

  static void ExpectEachOnce(const std::map<int64_t, int>& ids, int64_t total) {
    EXPECT_EQ(static_cast<int64_t>(ids.size()), total);
    int64_t bad = 0;
    for (int64_t id = 0; id < total; ++id) {
      auto it = ids.find(id);
      if (it == ids.end() || it->second != 1) {
        if (++bad <= 5) {
          ADD_FAILURE() << "id " << id << " committed " << (it == ids.end() ? 0 : it->second)
                        << " times";
        }
      }
    }
    EXPECT_EQ(bad, 0);
  }

  fs::path dir_, out_, staging_;
};

TEST_F(CommittingSinkTest, BoundedJobCommitsEveryRowOnceAndLeavesNoStaging) {
  Attempt job(Yaml(2, 2, "total: 100000"), "job1", 0, dir_ / ".state");
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kFinished);
  ExpectEachOnce(Committed(), 100000);
  EXPECT_TRUE(Names(staging_).empty());
}

// Unchained (rebalance over the network) and at another parallelism than the source.
TEST_F(CommittingSinkTest, BoundedJobThroughTheNetwork) {
  Attempt job(Yaml(2, 3, "total: 30000", "rebalance"), "job1", 0, dir_ / ".state");
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kFinished);
  ExpectEachOnce(Committed(), 30000);
  EXPECT_TRUE(Names(staging_).empty());
}

// Checkpoints 1..3, only 1 and 2 complete: exactly the rows before barrier 2 are committed
// (the source positions in checkpoint 2 say which), the rest waits in staging.
TEST_F(CommittingSinkTest, OnlyCompletedCheckpointsAreCommitted) {
  constexpr int64_t kTotal = 20000;
  // Rate-limited so the barriers fall inside the data; the checks hold wherever they fall.
  Attempt job(Yaml(2, 2, "total: 20000, hold: true, rows_per_second: 20000"), "job1", 0,
              dir_ / ".state");
  for (int64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(job.AwaitSourceRows(kTotal * id / 4));
    ASSERT_TRUE(job.Checkpoint(id));
  }
  job.Notify(1);
  job.Notify(2);
  const auto acks2 = job.Acks(2);
  const auto pending2 = PendingIn(acks2, "out");
  ASSERT_TRUE(AwaitCommitted(pending2, 2));
  // hold: true keeps the job running once all rows are out; wait for them, then stop.
  ASSERT_TRUE(job.AwaitSourceRows(kTotal));
  job.Cancel();
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kCanceled);

  // Committed: exactly the files checkpoint 2 named, holding exactly the rows emitted before it.
  std::set<std::string> expected_files;
  for (const Pending& p : pending2) expected_files.insert(p.final_name);
  EXPECT_EQ(Names(out_), expected_files);
  const std::set<int64_t> before2 = EmittedAt(acks2, kTotal, 2);
  const auto committed = Committed();
  std::set<int64_t> committed_ids;
  for (const auto& [id, n] : committed) {
    EXPECT_EQ(n, 1) << "id " << id;
    committed_ids.insert(id);
  }
  EXPECT_EQ(committed_ids, before2);
  // Staging: checkpoint 3's pending files and the in-progress ones, with every other row.
  auto staged = IdsIn(staging_, true);
  for (const auto& [id, n] : staged) {
    EXPECT_EQ(n, 1) << "id " << id;
    EXPECT_FALSE(committed.count(id)) << "id " << id << " both committed and staged";
  }
  // Rows after checkpoint 3 may still sit in the writer's buffer (never needed: a restore
  // replays them); every row before it is on disk.
  for (int64_t id : EmittedAt(job.Acks(3), kTotal, 2)) {
    EXPECT_TRUE(staged.count(id) || committed.count(id))
        << "id " << id << " neither staged nor committed";
  }
  for (const Pending& p : PendingIn(job.Acks(3), "out")) {
    if (p.checkpoint == 3) {
      EXPECT_TRUE(fs::exists(staging_ / p.staging)) << p.staging;
    }
  }
}

struct RestoreCase {
  std::string name;
  int gen_p, sink_p;      // after the restore
  std::string partition;  // gen -> out after the restore
  std::string job_id;     // of the restored job ("job1" again: a restart of the same job)
  int attempt;
  bool notify_first;  // checkpoint 1's completion reached the first run
};

void PrintTo(const RestoreCase& c, std::ostream* os) {
  *os << c.name;
}

class CommittingSinkRestoreTest : public CommittingSinkTest,
                                  public ::testing::WithParamInterface<RestoreCase> {};

// A first run takes checkpoints 1..3 and dies: checkpoint 2 completed but its notification was
// never delivered, checkpoint 3 never completed, rows after 3 sit in in-progress files, and one
// of checkpoint 2's files was already renamed (a crash between two renames). The job restores
// from checkpoint 2 and runs to the end: every id is committed exactly once, and the staging
// files written after checkpoint 2 are gone, while other jobs' and vertices' files stay.
TEST_P(CommittingSinkRestoreTest, RestoreCommitsCheckpointAndDeletesLaterLeftovers) {
  const RestoreCase& c = GetParam();
  constexpr int64_t kTotal = 20000;
  std::vector<proto::AcknowledgeCheckpointRequest> acks2;
  int max_parallelism = 0;
  {
    Attempt first(Yaml(2, 2, "total: 20000, hold: true, rows_per_second: 20000"), "job1", 0,
                  dir_ / ".state");
    max_parallelism = first.plan().spec.max_parallelism;
    for (int64_t id = 1; id <= 3; ++id) {
      ASSERT_TRUE(first.AwaitSourceRows(kTotal * id / 4));
      ASSERT_TRUE(first.Checkpoint(id));
      if (id == 1 && c.notify_first) {
        first.Notify(1);
        ASSERT_TRUE(AwaitCommitted(PendingIn(first.Acks(1), "out"), 1));
      }
    }
    acks2 = first.Acks(2);
    ASSERT_TRUE(first.AwaitSourceRows(kTotal * 7 / 8));
    first.Cancel();
    for (auto s : first.Join()) EXPECT_EQ(s, TaskState::kCanceled);
  }
  const auto pending2 = PendingIn(acks2, "out");
  ASSERT_FALSE(pending2.empty());
  std::set<std::string> needed;
  for (const Pending& p : pending2) needed.insert(p.staging);
  // The restore must delete these: written by job1's sink, not named by checkpoint 2.
  std::set<std::string> later;
  for (const std::string& n : Names(staging_)) {
    if (!needed.count(n)) later.insert(n);
  }
  // One more, in case the run's timing left none: an in-progress file of a later window.
  const std::string planted = "part-job1-out-1-0-9-77.jsonl.inprogress";
  std::ofstream(staging_ / planted) << "{\"id\":999999}\n";
  later.insert(planted);
  // Not ours: another job, another vertex (whose id extends ours), a foreign file.
  const std::set<std::string> foreign = {"part-job9-out-0-0-3-0.jsonl.pending",
                                         "part-job1-out-x-0-0-3-0.jsonl.inprogress", "notes.txt"};
  for (const std::string& n : foreign) std::ofstream(staging_ / n) << "keep\n";
  // A crash between two renames: one of checkpoint 2's files is already committed.
  fs::rename(staging_ / pending2[0].staging, out_ / pending2[0].final_name);

  auto md = MetadataFrom(acks2, 2, max_parallelism);
  std::string yaml = Yaml(c.gen_p, c.sink_p, "total: 20000", c.partition);
  auto spec = ParseJobFile(yaml);
  ASSERT_TRUE(spec.ok());
  auto plan = BuildPlan(std::move(spec).value(), BuiltinOperators());
  ASSERT_TRUE(plan.ok());
  auto restore = jm::PlanRestore(md, (dir_ / "chk-2").string(), *plan, false);
  ASSERT_TRUE(restore.ok()) << restore.status().ToString();
  {
    Attempt second(yaml, c.job_id, c.attempt, dir_ / ".state", *restore);
    for (auto s : second.Join()) EXPECT_EQ(s, TaskState::kFinished);
    auto errors = second.Errors();
    EXPECT_TRUE(errors.empty()) << errors[0];
  }
  ExpectEachOnce(Committed(), kTotal);
  for (const std::string& n : later) EXPECT_FALSE(fs::exists(staging_ / n)) << n;
  EXPECT_EQ(Names(staging_), foreign);
  for (const Pending& p : pending2) EXPECT_TRUE(fs::exists(out_ / p.final_name)) << p.final_name;
}

INSTANTIATE_TEST_SUITE_P(
    Parallelism, CommittingSinkRestoreTest,
    ::testing::Values(RestoreCase{"SameParallelismNewJob", 2, 2, "forward", "job2", 0, true},
                      RestoreCase{"ScaleUpSameJobNextAttempt", 1, 3, "rebalance", "job1", 1, false},
                      RestoreCase{"ScaleDown", 1, 1, "forward", "job3", 0, true}),
    [](const ::testing::TestParamInfo<RestoreCase>& i) { return i.param.name; });

// Checkpoint 1's pending file vanishes before its completion: the next snapshot declines,
// naming the file, and so does every later one (the output is no longer exact).
TEST_F(CommittingSinkTest, MissingPendingFileDeclinesTheNextCheckpoint) {
  Attempt job(Yaml(1, 1, "total: 5000, hold: true"), "job1", 0, dir_ / ".state");
  ASSERT_TRUE(job.AwaitSourceRows(5000));
  ASSERT_TRUE(job.Checkpoint(1));
  const auto pending = PendingIn(job.Acks(1), "out");
  ASSERT_EQ(pending.size(), 1u);
  fs::remove(staging_ / pending[0].staging);
  job.Notify(1);
  job.Trigger(2);
  EXPECT_FALSE(job.AwaitCheckpoint(2));
  auto declines = job.Declines(2);
  ASSERT_EQ(declines.size(), 1u);
  EXPECT_NE(declines[0].find(pending[0].staging), std::string::npos) << declines[0];
  EXPECT_NE(declines[0].find("missing"), std::string::npos) << declines[0];
  job.Trigger(3);
  EXPECT_FALSE(job.AwaitCheckpoint(3));
  job.Cancel();
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kCanceled);
}

// A restore whose checkpoint names a file that is neither staged nor committed fails the
// subtask, naming the file, rather than starting on incomplete output.
TEST_F(CommittingSinkTest, RestoreWithAMissingPendingFileFails) {
  std::vector<proto::AcknowledgeCheckpointRequest> acks;
  int max_parallelism = 0;
  {
    Attempt first(Yaml(1, 1, "total: 5000, hold: true"), "job1", 0, dir_ / ".state");
    max_parallelism = first.plan().spec.max_parallelism;
    ASSERT_TRUE(first.AwaitSourceRows(5000));
    ASSERT_TRUE(first.Checkpoint(1));
    acks = first.Acks(1);
    first.Cancel();
    first.Join();
  }
  const auto pending = PendingIn(acks, "out");
  ASSERT_EQ(pending.size(), 1u);
  fs::remove(staging_ / pending[0].staging);
  const std::string yaml = Yaml(1, 1, "total: 5000");
  auto plan = BuildPlan(ParseJobFile(yaml).value(), BuiltinOperators());
  ASSERT_TRUE(plan.ok());
  auto restore = jm::PlanRestore(MetadataFrom(acks, 1, max_parallelism), (dir_ / "chk-1").string(),
                                 *plan, false);
  ASSERT_TRUE(restore.ok()) << restore.status().ToString();
  Attempt second(yaml, "job2", 0, dir_ / ".state", *restore);
  auto states = second.Join();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0], TaskState::kFailed);
  auto errors = second.Errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(pending[0].staging), std::string::npos) << errors[0];
}

// A fresh start deletes only its own job's leftovers (an earlier attempt), never another job's.
TEST_F(CommittingSinkTest, FreshStartDeletesOnlyThisJobsEarlierAttempts) {
  fs::create_directories(staging_);
  const std::string earlier = "part-job1-out-0-0-1-0.jsonl.inprogress";
  const std::string other_job = "part-job2-out-0-0-1-0.jsonl.pending";
  std::ofstream(staging_ / earlier) << R"({"id":123456})"
                                    << "\n";
  std::ofstream(staging_ / other_job) << R"({"id":123456})"
                                      << "\n";
  Attempt job(Yaml(1, 1, "total: 100"), "job1", 1, dir_ / ".state");
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kFinished);
  ExpectEachOnce(Committed(), 100);
  EXPECT_EQ(Names(staging_), std::set<std::string>{other_job});
}

// The sink's operator API, called directly so that the order of the subtasks' Open calls is
// under the test's control (with real tasks it is a race).
class DiscardOutput : public Output {
 public:
  Status Emit(RowBatch&) override { return Status::Ok(); }
};

std::unique_ptr<Operator> MakeSink(const fs::path& out, const Schema& schema) {
  auto config = Config::Parse("path: \"" + out.string() + "\"", "config");
  EXPECT_TRUE(config.ok());
  auto op = BuiltinOperators().Find("committing_file")->Create(config.value(), schema);
  EXPECT_TRUE(op.ok()) << op.status().ToString();
  return std::move(op).value();
}

OperatorContext SinkContext(const std::string& job, int attempt, int subtask, int parallelism,
                            const RestoredState* restored = nullptr) {
  OperatorContext ctx;
  ctx.job_id = job;
  ctx.attempt = attempt;
  ctx.vertex_id = "out";
  ctx.subtask = subtask;
  ctx.parallelism = parallelism;
  ctx.log_prefix = "test subtask=" + std::to_string(subtask);
  ctx.restored = restored;
  return ctx;
}

Status WriteIds(Operator& op, int64_t from, int64_t to) {
  RowBatch batch;
  for (int64_t id = from; id < to; ++id) batch.Append(1)[0].SetInt64(id);
  DiscardOutput out;
  return op.Process(batch, out);
}

// A list of the sink's versioned state in the form written before versioned state (up to
// 2026-11-30): the name without "@v1", each entry tagged text fields joined by NUL.
proto::NamedList ToLegacy(const proto::NamedList& l) {
  const std::string base = l.name().substr(0, l.name().find('@'));
  if (base == l.name() || base == "_counts") return l;
  proto::NamedList out;
  out.set_name(base);
  out.set_mode(l.mode());
  auto join = [](std::vector<std::string> f) {
    std::string s;
    for (size_t i = 0; i < f.size(); ++i) s += (i > 0 ? std::string(1, '\0') : "") + f[i];
    return s;
  };
  for (const std::string& e : l.entries()) {
    if (base == "pending") {
      proto::CommittingFilePending p;
      EXPECT_TRUE(p.ParseFromString(e));
      out.add_entries(join({"p1", std::to_string(p.checkpoint()), p.staging(), p.final_name()}));
    } else if (base == "writers") {
      proto::CommittingFileWriter w;
      EXPECT_TRUE(w.ParseFromString(e));
      std::vector<std::string> f = {"w1", std::to_string(w.checkpoint()), w.job_id(),
                                    std::to_string(w.attempt()), std::to_string(w.subtask())};
      f.insert(f.end(), w.staging_names().begin(), w.staging_names().end());
      out.add_entries(join(f));
    } else if (base == "partitions") {
      proto::CommittingFilePartition t;
      EXPECT_TRUE(t.ParseFromString(e));
      out.add_entries(join({"t1", t.dir(), std::to_string(t.end())}));
    } else if (base == "event_time") {
      proto::CommittingFileEventTime t;
      EXPECT_TRUE(t.ParseFromString(e));
      out.add_entries(join({"e1", std::to_string(t.watermark())}));
    } else {
      ADD_FAILURE() << "unknown list " << l.name();
    }
  }
  return out;
}

// Parameter: whether the restored state is in the legacy format (the same outcome is expected).
class CommittingSinkScanTest : public CommittingSinkTest,
                               public ::testing::WithParamInterface<bool> {};

// Old subtasks 0 and 1 snapshot checkpoint 1 and die with rows after it. New subtask 0 of the
// restore opens first: it must keep old subtask 1's pending file (new subtask 1 commits it; only
// the UNION list tells subtask 0 it is needed) and delete the rows after the checkpoint. New
// subtask 1 opens after subtask 0 has begun writing: it must keep its sibling's file.
TEST_P(CommittingSinkScanTest, RestoreScanKeepsOtherSubtasksShareAndSiblingFiles) {
  Schema schema;
  schema.Add("id", Type::kInt64);
  std::vector<OperatorSnapshot> snaps(2);
  for (int i = 0; i < 2; ++i) {
    auto old = MakeSink(out_, schema);
    ASSERT_TRUE(old->Open(SinkContext("job1", 0, i, 2)).ok());
    ASSERT_TRUE(WriteIds(*old, i * 10, i * 10 + 10).ok());
    ASSERT_TRUE(old->Snapshot(1, &snaps[i]).ok());
    ASSERT_TRUE(WriteIds(*old, 100 + i, 101 + i).ok());  // after the checkpoint: replayed
    ASSERT_TRUE(old->Close().ok());
  }
  // As PlanRestore deals them to two new subtasks: SPLIT round-robin, UNION whole.
  std::vector<RestoredState> restored(2);
  for (int i = 0; i < 2; ++i) {
    for (const proto::NamedList& versioned : snaps[i].operator_state) {
      const proto::NamedList l = GetParam() ? ToLegacy(versioned) : versioned;
      if (l.mode() == proto::NamedList::UNION) {
        for (auto& r : restored) r.operator_state.push_back(l);
      } else {
        ASSERT_EQ(l.entries_size(), 1);
        restored[i].operator_state.push_back(l);
      }
    }
  }
  int pending = 0;
  for (const std::string& n : Names(staging_)) pending += n.ends_with(".pending");
  ASSERT_EQ(pending, 2);
  ASSERT_EQ(Names(staging_).size(), 4u);  // two pending, two in progress

  auto new0 = MakeSink(out_, schema);
  ASSERT_TRUE(new0->Open(SinkContext("job2", 0, 0, 2, &restored[0])).ok());
  EXPECT_EQ(Names(out_).size(), 1u);      // its share: old subtask 0's file
  EXPECT_EQ(Names(staging_).size(), 1u);  // old subtask 1's, waiting for new subtask 1
  ASSERT_TRUE(WriteIds(*new0, 100, 101).ok());
  const std::set<std::string> sibling = Names(staging_);
  ASSERT_EQ(sibling.size(), 2u);

  auto new1 = MakeSink(out_, schema);
  ASSERT_TRUE(new1->Open(SinkContext("job2", 0, 1, 2, &restored[1])).ok());
  EXPECT_EQ(Names(out_).size(), 2u);
  EXPECT_EQ(Names(staging_).size(), 1u);  // new subtask 0's in-progress file survived
  ASSERT_TRUE(WriteIds(*new1, 101, 102).ok());
  DiscardOutput out;
  ASSERT_TRUE(new0->Finish(out).ok());
  ASSERT_TRUE(new1->Finish(out).ok());
  ASSERT_TRUE(new0->Close().ok());
  ASSERT_TRUE(new1->Close().ok());
  auto ids = Committed();
  std::map<int64_t, int> expected;
  for (int64_t id = 0; id < 20; ++id) expected[id] = 1;
  expected[100] = expected[101] = 1;
  EXPECT_EQ(ids, expected);
  EXPECT_TRUE(Names(staging_).empty());
}

INSTANTIATE_TEST_SUITE_P(Formats, CommittingSinkScanTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "LegacyTextLists" : "VersionedLists";
                         });

TEST(CommittingSinkConfigTest, ConfigErrorsNameTheField) {
  auto build = [](const std::string& gen, const std::string& sink) {
    auto spec = ParseJobFile("vertices:\n  - {id: gen, type: datagen, config: {" + gen +
                             "}}\n  - {id: out, type: committing_file, config: {" + sink +
                             "}}\nedges:\n  - {from: gen, to: out}\n");
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return BuildPlan(std::move(spec).value(), BuiltinOperators()).status();
  };
  EXPECT_TRUE(build("total: 10, hold: true", "path: /tmp/x").ok());
  Status st = build("hold: true", "path: /tmp/x");
  EXPECT_NE(st.message().find("hold"), std::string::npos) << st.ToString();
  st = build("total: 10", "prefix: p");
  EXPECT_NE(st.message().find("path"), std::string::npos) << st.ToString();
  st = build("total: 10", "path: /tmp/x, prefix: a/b");
  EXPECT_NE(st.message().find("prefix"), std::string::npos) << st.ToString();
  st = build("total: 10", "path: /tmp/x, formatt: csv");
  EXPECT_NE(st.message().find("formatt"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace weir

// ------------------------------------------------------------------ partitions and event time
namespace weir {
namespace {

class PartitionedSinkTest : public CommittingSinkTest {
 protected:
  // gen (ids with ts = id * 1000 ms, so 3600 ids per hour of event time) -> out.
  std::string PYaml(int gen_p, int sink_p, const std::string& gen_extra,
                    const std::string& sink_extra, const std::string& ts_expr = "id * 1000",
                    const std::string& bound = "0") const {
    return R"Y(
vertices:
  - {id: gen, type: datagen, parallelism: )Y" +
           std::to_string(gen_p) + ", config: {" + gen_extra + ", fields: [{name: ts, expr: \"" +
           ts_expr + R"Y("}, {name: app, expr: "if(id % 2 = 0, 'a', 'b')"}]},
     watermarks: {event_time_field: ts, interval: 10ms, max_out_of_orderness: )Y" +
           bound + R"Y(}}
  - {id: out, type: committing_file, parallelism: )Y" +
           std::to_string(sink_p) + ", config: {path: \"" + out_.string() + "\", " + sink_extra +
           R"Y(}}
edges:
  - {from: gen, to: out, partition: rebalance}
)Y";
  }

  // Every data file under out_ (not hidden dirs): relative dir -> ids (with ts hour checks).
  std::map<std::string, std::vector<int64_t>> DataFiles(const fs::path& root) const {
    std::map<std::string, std::vector<int64_t>> out;
    if (!fs::exists(root)) return out;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it) {
      const std::string name = it->path().filename().string();
      if (it->is_directory() && (name[0] == '.' || name[0] == '_') && root == out_) {
        it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file() || name[0] == '_') continue;
      const std::string dir = fs::relative(it->path().parent_path(), root).string();
      std::ifstream in(it->path());
      std::string line;
      while (std::getline(in, line)) {
        long long id;
        EXPECT_EQ(sscanf(line.c_str(), R"({"id":%lld)", &id), 1) << it->path() << ": " << line;
        out[dir].push_back(id);
      }
    }
    return out;
  }

  // Waits (at most the hang guard) until hours [from, to) have success files. Each subtask
  // marks the partitions it wrote, a little apart: the checks come after, so a timeout shows
  // there as a missing marker.
  void AwaitMarkers(int from, int to) const {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    auto all_marked = [&] {
      for (int h = from; h < to; ++h) {
        if (!fs::exists(out_ / HourDir(h) / "_SUCCESS")) return false;
      }
      return true;
    };
    while (!all_marked() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  static std::string HourDir(int64_t hour) {
    char buf[64];
    snprintf(buf, sizeof buf, "dt=1970-01-%02d/hour=%02d", static_cast<int>(1 + hour / 24),
             static_cast<int>(hour % 24));
    return buf;
  }
};

TEST_F(PartitionedSinkTest, PartitionsByEventTimeAndMarksThemOnlyAfterTheWatermark) {
  constexpr int64_t kTotal = 36000;  // ten hours of event time
  Attempt job(
      PYaml(2, 2, "total: 36000, hold: true", "partition: \"dt={ts:%Y-%m-%d}/hour={ts:%H}\""),
      "job1", 0, dir_ / ".state");
  ASSERT_TRUE(job.AwaitSourceRows(kTotal));
  // Let the last watermark reach the sinks (sources emit every 10 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(job.Checkpoint(1));
  // Nothing committed yet, so no commit watermark covers anything: no success file.
  job.NotifyWithWatermarks(1);
  ASSERT_TRUE(AwaitCommitted(PendingIn(job.Acks(1), "out"), 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int h = 0; h < 10; ++h) EXPECT_FALSE(fs::exists(out_ / HourDir(h) / "_SUCCESS")) << h;
  // Checkpoint 2 reports the watermark at barrier 1 as committed: hours 0-8 are complete
  // (their end - 1 <= max ts - 1), hour 9 is not (its last millisecond is still to come).
  ASSERT_TRUE(job.Checkpoint(2));
  for (const auto& a : job.Acks(2)) {
    for (const auto& os : a.states()) {
      if (os.vertex_id() == "out") {
        ASSERT_TRUE(os.has_commit_watermark());
        // Each of the two sources emitted every other id: the smaller maximum is kTotal - 2.
        EXPECT_EQ(os.commit_watermark(), (kTotal - 2) * 1000 - 1);
      }
    }
  }
  job.NotifyWithWatermarks(2);
  AwaitMarkers(0, 9);
  job.Cancel();
  job.Join();
  for (int h = 0; h < 9; ++h) EXPECT_TRUE(fs::exists(out_ / HourDir(h) / "_SUCCESS")) << h;
  EXPECT_FALSE(fs::exists(out_ / HourDir(9) / "_SUCCESS"));
  // Every id once, in the directory of its hour.
  std::map<int64_t, int> seen;
  for (const auto& [dir, ids] : DataFiles(out_)) {
    for (int64_t id : ids) {
      ++seen[id];
      EXPECT_EQ(dir, HourDir(id / 3600)) << "id " << id;
    }
  }
  ExpectEachOnce(seen, kTotal);
}

TEST_F(PartitionedSinkTest, LateRowsGoToTheLateDirectoryNeverIntoAPossiblyCommittedPartition) {
  // Every 1000th id carries event time 0 (hour 0). Once the watermark passed hour 0, those
  // rows are late.
  constexpr int64_t kTotal = 10000;
  Attempt job(
      PYaml(1, 1, "total: 10000, rows_per_second: 5000",
            "partition: \"dt={ts:%Y-%m-%d}/hour={ts:%H}\"", "if(id % 1000 = 999, 0, id * 1000)"),
      "job1", 0, dir_ / ".state");
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kFinished);
  const auto data = DataFiles(out_);
  const auto late = DataFiles(out_ / "_late");
  std::map<int64_t, int> seen;
  for (const auto& [dir, ids] : data) {
    for (int64_t id : ids) ++seen[id];
  }
  std::set<int64_t> late_ids;
  for (const auto& [dir, ids] : late) {
    EXPECT_EQ(dir, HourDir(0));
    for (int64_t id : ids) {
      ++seen[id];
      late_ids.insert(id);
      EXPECT_EQ(id % 1000, 999) << "only the old rows can be late";
    }
  }
  ExpectEachOnce(seen, kTotal);
  // Ids from 4999 on come over a second after the watermark passed 01:00.
  for (int64_t id = 4999; id < kTotal; id += 1000) EXPECT_TRUE(late_ids.count(id)) << id;
  EXPECT_FALSE(late_ids.count(999));
}

TEST_F(PartitionedSinkTest, RowsWithBadPartitionValuesGoToDirtyOutputWithTheReason) {
  const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, config: {total: 1000, fields: [{name: app, expr: "if(id % 10 = 0, null, if(id % 10 = 1, 'x/y', 'ok'))"}]}}
  - {id: out, type: committing_file, config: {path: ")Y" +
                           out_.string() + R"Y(", partition: "app={app}"}}
edges:
  - {from: gen, to: out}
)Y";
  Attempt job(yaml, "job1", 0, dir_ / ".state");
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kFinished);
  auto data = DataFiles(out_);
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data["app=ok"].size(), 800u);
  // A '/' is escaped (as Hive does), not a directory level and not dirty.
  EXPECT_EQ(data["app=x%2Fy"].size(), 100u);
  int nulls = 0, lines = 0;
  for (const auto& e : fs::directory_iterator(out_ / "_dirty")) {
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      ++lines;
      if (line.find("\"reason\":\"partition field 'app' is null\"") != std::string::npos &&
          line.find("\"row\":{\"id\":") != std::string::npos) {
        ++nulls;
      }
    }
  }
  EXPECT_EQ(nulls, 100);
  EXPECT_EQ(lines, 100);
}

TEST_F(PartitionedSinkTest, CsvGzipWithHeaderAndSizeRollingKeepEveryRowOnce) {
  const std::string yaml =
      R"Y(
vertices:
  - {id: gen, type: datagen, config: {total: 50000, fields: [{name: s, expr: "concat('v,', id % 7)"}]}}
  - {id: out, type: committing_file, config: {path: ")Y" +
      out_.string() +
      R"Y(", format: csv, csv: {header: true}, compression: gzip, rolling: {max_size: 20kb}}}
edges:
  - {from: gen, to: out}
)Y";
  Attempt job(yaml, "job1", 0, dir_ / ".state");
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kFinished);
  std::map<int64_t, int> seen;
  int files = 0;
  for (const auto& e : fs::directory_iterator(out_)) {
    if (!e.is_regular_file()) continue;
    ASSERT_TRUE(e.path().string().ends_with(".csv.gz")) << e.path();
    ++files;
    gzFile gz = gzopen(e.path().c_str(), "rb");
    ASSERT_NE(gz, nullptr);
    std::string text;
    char buf[65536];
    int n;
    while ((n = gzread(gz, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    gzclose(gz);
    std::istringstream lines(text);
    std::string line;
    ASSERT_TRUE(std::getline(lines, line));
    EXPECT_EQ(line, "id,s");
    while (std::getline(lines, line)) {
      long long id;
      int rest;
      ASSERT_EQ(sscanf(line.c_str(), "%lld,\"v,%d\"", &id, &rest), 2) << line;
      EXPECT_EQ(rest, id % 7);
      ++seen[id];
    }
  }
  EXPECT_GT(files, 3) << "20 KB of compressed output per file should roll several times";
  ExpectEachOnce(seen, 50000);
}

TEST_F(PartitionedSinkTest, ThousandPartitionsWithFewOpenFiles) {
  const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, config: {total: 5000, fields: [{name: k, expr: "id % 1000"}]}}
  - {id: out, type: committing_file, config: {path: ")Y" +
                           out_.string() + R"Y(", partition: "k={k}", max_open_files: 50}}
edges:
  - {from: gen, to: out}
)Y";
  Attempt job(yaml, "job1", 0, dir_ / ".state");
  for (auto s : job.Join()) EXPECT_EQ(s, TaskState::kFinished);
  std::map<int64_t, int> seen;
  const auto data = DataFiles(out_);
  EXPECT_EQ(data.size(), 1000u);
  for (const auto& [dir, ids] : data) {
    for (int64_t id : ids) {
      ++seen[id];
      EXPECT_EQ(dir, "k=" + std::to_string(id % 1000));
    }
  }
  ExpectEachOnce(seen, 5000);
}

TEST_F(PartitionedSinkTest, RestoreCommitsPartitionedFilesAndMarksLater) {
  constexpr int64_t kTotal = 36000;
  const std::string sink = "partition: \"dt={ts:%Y-%m-%d}/hour={ts:%H}\"";
  std::vector<proto::AcknowledgeCheckpointRequest> acks1;
  int max_parallelism = 0;
  {
    Attempt first(PYaml(2, 2, "total: 36000, hold: true, rows_per_second: 72000", sink), "job1", 0,
                  dir_ / ".state");
    max_parallelism = first.plan().spec.max_parallelism;
    ASSERT_TRUE(first.AwaitSourceRows(kTotal / 2));
    ASSERT_TRUE(first.Checkpoint(1));
    acks1 = first.Acks(1);
    ASSERT_TRUE(first.AwaitSourceRows(kTotal * 3 / 4));
    first.Cancel();  // checkpoint 1 completed, its notification never arrived
    first.Join();
  }
  EXPECT_TRUE(DataFiles(out_).empty());
  auto md = MetadataFrom(acks1, 1, max_parallelism);
  // One restored source subtask now reads both old splits, a batch of each in turn: its event
  // times are out of order by up to a batch (1024 rows of stride 2: 2048 s), so the bound must
  // allow that. With a bound of an hour, the final watermark (max - 1 h) completes hours 0-7.
  const std::string yaml = PYaml(1, 3, "total: 36000, hold: true", sink, "id * 1000", "1h");
  auto spec = ParseJobFile(yaml);
  ASSERT_TRUE(spec.ok());
  auto plan = BuildPlan(std::move(spec).value(), BuiltinOperators());
  ASSERT_TRUE(plan.ok());
  auto restore = jm::PlanRestore(md, (dir_ / "chk-1").string(), *plan, false);
  ASSERT_TRUE(restore.ok()) << restore.status().ToString();
  {
    Attempt second(yaml, "job1", 1, dir_ / ".state", *restore);
    const int64_t before = static_cast<int64_t>(EmittedAt(acks1, kTotal, 2).size());
    ASSERT_TRUE(second.AwaitSourceRows(kTotal - before));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(second.Checkpoint(2));
    second.NotifyWithWatermarks(2);
    ASSERT_TRUE(AwaitCommitted(PendingIn(second.Acks(2), "out"), 2));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the commit's bookkeeping
    ASSERT_TRUE(second.Checkpoint(3));
    second.NotifyWithWatermarks(3);
    AwaitMarkers(0, 8);
    second.Cancel();
    second.Join();
  }
  std::map<int64_t, int> seen;
  for (const auto& [dir, ids] : DataFiles(out_)) {
    for (int64_t id : ids) {
      ++seen[id];
      EXPECT_EQ(dir, HourDir(id / 3600));
    }
  }
  ExpectEachOnce(seen, kTotal);
  for (int h = 0; h < 8; ++h) EXPECT_TRUE(fs::exists(out_ / HourDir(h) / "_SUCCESS")) << h;
  EXPECT_FALSE(fs::exists(out_ / HourDir(8) / "_SUCCESS"));
}

TEST_F(PartitionedSinkTest, EmptyPartitionsAreMarkedOnlyOnceTheWatermarkPassesThem) {
  // Hours 0 and 3 have data, hours 1 and 2 none; the last id is in hour 3.
  Attempt job(PYaml(1, 1, "total: 7200, hold: true",
                    "partition: \"dt={ts:%Y-%m-%d}/hour={ts:%H}\", "
                    "partition_commit: {empty_partitions: true}",
                    "if(id < 3600, id * 1000, id * 1000 + 7200000)"),
              "job1", 0, dir_ / ".state");
  ASSERT_TRUE(job.AwaitSourceRows(7200));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(job.Checkpoint(1));
  job.NotifyWithWatermarks(1);
  // Checkpoint 2 reports what checkpoint 1's commit covered: wait for that commit.
  ASSERT_TRUE(AwaitCommitted(PendingIn(job.Acks(1), "out"), 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(job.Checkpoint(2));
  job.NotifyWithWatermarks(2);
  AwaitMarkers(0, 3);
  job.Cancel();
  job.Join();
  for (int h = 0; h < 3; ++h) EXPECT_TRUE(fs::exists(out_ / HourDir(h) / "_SUCCESS")) << h;
  EXPECT_FALSE(fs::exists(out_ / HourDir(3) / "_SUCCESS")) << "hour 3 is not over";
  EXPECT_FALSE(fs::exists(out_ / HourDir(4))) << "nothing past the watermark";
  const auto data = DataFiles(out_);
  EXPECT_EQ(data.count(HourDir(1)), 0u);
  EXPECT_EQ(data.count(HourDir(0)), 1u);
}

TEST(PartitionTemplateTest, RendersFieldsAndTimesAndRejectsBadValues) {
  Schema s;
  s.Add("ts", Type::kTimestamp);
  s.Add("app", Type::kString);
  s.Add("n", Type::kInt64);
  s.Add("d", Type::kDouble);
  auto t = PartitionTemplate::Parse("dt={ts:%Y-%m-%d}/hour={ts:%H}/app={app}", s, "p");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->has_time());
  EXPECT_FALSE(t->time_only());
  EXPECT_EQ(t->granularity_ms(), 3600000);
  Row r(4);
  r[0].SetTimestamp(1763794800000 + 5 * 60 * 1000);  // 2025-11-22 07:05 UTC
  r[1].SetString("web");
  r[2].SetInt64(1);
  std::string dir, reason;
  int64_t start = 0;
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
  EXPECT_EQ(dir, "dt=2025-11-22/hour=07/app=web");
  EXPECT_EQ(start, 1763794800000);
  // Values are escaped as Hive does, never split into directory levels.
  r[1].SetString("a/b");
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
  EXPECT_EQ(dir, "dt=2025-11-22/hour=07/app=a%2Fb");
  r[1].SetString("..");  // not a level of its own here: a plain name, as in Hive
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
  EXPECT_EQ(dir, "dt=2025-11-22/hour=07/app=..");
  r[1].SetNull();
  EXPECT_FALSE(t->Render(r, &dir, &start, &reason));
  EXPECT_EQ(reason, "partition field 'app' is null");
  r[1].SetString("");
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
  EXPECT_EQ(dir, "dt=2025-11-22/hour=07/app=__HIVE_DEFAULT_PARTITION__");
  // A value alone as a directory level can neither hide it nor be "." or "..".
  auto bare = PartitionTemplate::Parse("{app}", s, "p");
  ASSERT_TRUE(bare.ok());
  for (const auto& [value, want] :
       std::vector<std::pair<std::string, std::string>>{{"_late", "%5Flate"},
                                                        {".", "%2E"},
                                                        {"..", "%2E."},
                                                        {".hidden", "%2Ehidden"},
                                                        {"a.b_", "a.b_"}}) {
    r[1].SetString(value);
    ASSERT_TRUE(bare->Render(r, &dir, &start, &reason)) << value << ": " << reason;
    EXPECT_EQ(dir, want) << value;
  }
  // Time-only templates enumerate partitions; negative times floor correctly.
  auto days = PartitionTemplate::Parse("day={ts:%F}", s, "p");
  ASSERT_TRUE(days.ok());
  EXPECT_TRUE(days->time_only());
  EXPECT_EQ(days->granularity_ms(), 86400000);
  EXPECT_EQ(days->RenderTime(0), "day=1970-01-01");
  r[0].SetTimestamp(-1);
  ASSERT_TRUE(days->Render(r, &dir, &start, &reason));
  EXPECT_EQ(dir, "day=1969-12-31");
  EXPECT_EQ(start, -86400000);

  for (const auto& [text, want] : std::vector<std::pair<std::string, std::string>>{
           {"x={nope}", "p: unknown field 'nope'"},
           {"x={app:%H}", "has a time format but is string"},
           {"x={d}", "field 'd' is double"},
           {"x={ts:abc}", "has no time specifier"},
           {"/x={app}", "relative path"},
           {"../x={app}", "'..'"},
           {"x={app", "unmatched '{'"},
           {"a}={app}", "unmatched '}'"},
           {"static", "has no {field} placeholder"},
           {"a={ts:%H}/b={n:%M}", "must all use one field"},
       }) {
    auto bad = PartitionTemplate::Parse(text, s, "p");
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.status().message().find(want), std::string::npos)
        << text << ": " << bad.status().message();
  }
}

TEST(PartitionTemplateTest, EscapesHiveCharactersAndInvalidUtf8) {
  Schema s;
  s.Add("app", Type::kString);
  auto t = PartitionTemplate::Parse("app={app}", s, "p");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Row r(1);
  std::string dir, reason;
  int64_t start = 0;
  for (const auto& [value, want] : std::vector<std::pair<std::string, std::string>>{
           {"plain-value_1.2 x", "plain-value_1.2 x"},
           {"a/b", "a%2Fb"},
           {"100%", "100%25"},
           {"12:30", "12%3A30"},
           {"line\nbreak\r", "line%0Abreak%0D"},
           {std::string("nul\0x", 5), "nul%00x"},
           {"\"#%'*/:=?\\{[]^\x7f", "%22%23%25%27%2A%2F%3A%3D%3F%5C%7B%5B%5D%5E%7F"},
           {"}|<>~ !$&()+,;@`", "}|<>~ !$&()+,;@`"},  // not in Hive's list
           {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
           // Not UTF-8: a stray byte, a truncated sequence, an overlong form, a surrogate.
           {"a\xffz", "a%FFz"},
           {"x\xc3", "x%C3"},
           {"\xc0\xaf", "%C0%AF"},
           {"\xed\xa0\x80", "%ED%A0%80"},
           {"\xf4\x90\x80\x80", "%F4%90%80%80"},
       }) {
    r[0].SetString(value);
    ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
    EXPECT_EQ(dir, "app=" + want);
    // Escaping is the escape function's job; Render only adds the literal around it.
    std::string direct;
    AppendEscapedPartitionValue(value, false, &direct);
    EXPECT_EQ(direct, want);
  }
}

TEST(PartitionTemplateTest, OverlongValuesAreRejectedNamingTheFieldAndLength) {
  Schema s;
  s.Add("app", Type::kString);
  s.Add("b", Type::kString);
  s.Add("c", Type::kString);
  s.Add("d", Type::kString);
  s.Add("e", Type::kString);
  auto t = PartitionTemplate::Parse("app={app}", s, "p");
  ASSERT_TRUE(t.ok());
  Row r(5);
  std::string dir, reason;
  int64_t start = 0;
  r[0].SetString(std::string(251, 'x'));  // "app=" + 251 = 255 bytes: the limit
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
  EXPECT_EQ(dir.size(), 255u);
  r[0].SetString(std::string(252, 'x'));
  EXPECT_FALSE(t->Render(r, &dir, &start, &reason));
  EXPECT_NE(reason.find("field 'app' makes a directory name of 256 bytes"), std::string::npos)
      << reason;
  r[0].SetString(std::string(300, 'x'));
  EXPECT_FALSE(t->Render(r, &dir, &start, &reason));
  EXPECT_NE(reason.find("304 bytes after escaping (limit 255)"), std::string::npos) << reason;
  // Short before escaping, too long after: 100 '/' become 300 bytes.
  r[0].SetString(std::string(100, '/'));
  EXPECT_FALSE(t->Render(r, &dir, &start, &reason));
  EXPECT_NE(reason.find("304 bytes"), std::string::npos) << reason;
  // Each level fits, the whole directory does not; the longest value is named.
  auto deep = PartitionTemplate::Parse("a={app}/b={b}/c={c}/d={d}/e={e}", s, "p");
  ASSERT_TRUE(deep.ok());
  for (int i = 0; i < 5; ++i) r[static_cast<size_t>(i)].SetString(std::string(200, 'y'));
  r[3].SetString(std::string(250, 'y'));
  EXPECT_FALSE(deep->Render(r, &dir, &start, &reason));
  EXPECT_NE(reason.find("partition directory is 1064 bytes after escaping (limit 1024)"),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("field 'd'"), std::string::npos) << reason;
}

TEST(PartitionTemplateTest, TimesNearTheEndsOfInt64AndYearOne) {
  Schema s;
  s.Add("ts", Type::kTimestamp);
  s.Add("n", Type::kInt64);
  auto t = PartitionTemplate::Parse("dt={ts:%Y-%m-%d}/hour={ts:%H}", s, "p");
  ASSERT_TRUE(t.ok());
  Row r(2);
  std::string dir, reason;
  int64_t start = 0;
  // Year 1, 00:30: a normal partition, floored correctly.
  constexpr int64_t kYear1 = -62135596800000;
  r[0].SetTimestamp(kYear1 + 30 * 60 * 1000);
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
  EXPECT_EQ(dir, "dt=0001-01-01/hour=00");  // %Y has at least 4 digits, as in ISO-8601
  EXPECT_EQ(start, kYear1);
  // Negative times floor, including exact multiples.
  r[0].SetTimestamp(-3600000);
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason));
  EXPECT_EQ(start, -3600000);
  EXPECT_EQ(dir, "dt=1969-12-31/hour=23");
  r[0].SetTimestamp(-3600001);
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason));
  EXPECT_EQ(start, -7200000);
  // The hour holding INT64_MIN starts below it, the one holding INT64_MAX ends above it: no
  // partition, a reason, and no overflow (negating INT64_MIN was undefined before).
  for (int64_t ts : {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    r[0].SetTimestamp(ts);
    EXPECT_FALSE(t->Render(r, &dir, &start, &reason)) << ts;
    EXPECT_NE(reason.find("field 'ts': time " + std::to_string(ts) + " ms has no partition"),
              std::string::npos)
        << reason;
  }
  // The last whole hours at both ends render.
  const int64_t lo = (std::numeric_limits<int64_t>::min() / 3600000 + 1) * 3600000;
  r[0].SetTimestamp(lo);
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
  EXPECT_EQ(start, lo);
  const int64_t hi = (std::numeric_limits<int64_t>::max() / 3600000 - 1) * 3600000;
  r[0].SetTimestamp(hi + 5);
  ASSERT_TRUE(t->Render(r, &dir, &start, &reason)) << reason;
  EXPECT_EQ(start, hi);
  // Integer fields as text at the extremes.
  auto n = PartitionTemplate::Parse("n={n}", s, "p");
  ASSERT_TRUE(n.ok());
  r[1].SetInt64(std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(n->Render(r, &dir, &start, &reason));
  EXPECT_EQ(dir, "n=-9223372036854775808");
  EXPECT_EQ(FloorDiv(std::numeric_limits<int64_t>::min(), 1000), -9223372036854776);
  EXPECT_EQ(FloorDiv(-1000, 1000), -1);
  EXPECT_EQ(FloorDiv(-1, 1000), -1);
  EXPECT_EQ(FloorDiv(999, 1000), 0);
}

TEST(PartitionCommitArithmeticTest, NoOverflowNearTheEndsAndFloorsNegativeWatermarks) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kHour = 3600000;
  // end - 1 + delay <= watermark.
  EXPECT_TRUE(PartitionComplete(kHour, 0, kHour - 1));
  EXPECT_FALSE(PartitionComplete(kHour, 0, kHour - 2));
  EXPECT_FALSE(PartitionComplete(kHour, 10, kHour + 8));
  EXPECT_TRUE(PartitionComplete(kHour, 10, kHour + 9));
  // end - 1 + delay passes INT64_MAX: wrapped around it was negative, so "complete" at once.
  EXPECT_FALSE(PartitionComplete(kMax - 5, kHour, 0));
  EXPECT_FALSE(PartitionComplete(kMax - 5, kMax, kMax - 1));
  EXPECT_TRUE(PartitionComplete(kMax - 5, 0, kMax));
  EXPECT_FALSE(PartitionComplete(kMin + kHour, kMax, kMin));

  int64_t start = 0;
  // Watermark 0: the hour [-1 h, 0) is complete.
  ASSERT_TRUE(LastCompleteStart(0, 0, kHour, &start));
  EXPECT_EQ(start, -kHour);
  // Watermark -2: [-1 h, 0) is not (its last millisecond, -1, is still to come). Truncating
  // division said it was.
  ASSERT_TRUE(LastCompleteStart(-2, 0, kHour, &start));
  EXPECT_EQ(start, -2 * kHour);
  ASSERT_TRUE(LastCompleteStart(5 * kHour - 1, kHour, kHour, &start));
  EXPECT_EQ(start, 3 * kHour);
  // The end of input: watermark + 1 overflowed.
  ASSERT_TRUE(LastCompleteStart(kMax, 0, kHour, &start));
  EXPECT_EQ(start, (kMax / kHour - 1) * kHour);
  EXPECT_TRUE(PartitionComplete(start + kHour, 0, kMax));
  // A huge delay at the other end: nothing representable is complete.
  EXPECT_FALSE(LastCompleteStart(kMin, 0, kHour, &start));
  EXPECT_FALSE(LastCompleteStart(kMin + 10, kMax, kHour, &start));
  ASSERT_TRUE(LastCompleteStart(kMin + 2 * kHour, 0, kHour, &start));
  EXPECT_GE(start, kMin);
  EXPECT_TRUE(PartitionComplete(start + kHour, 0, kMin + 2 * kHour));
}

// ---------------------------------------------------------------- bad partition values
// The sink driven directly (rows with any bytes, checkpoints and watermarks under the test's
// control).
class SinkValuesTest : public PartitionedSinkTest {
 protected:
  std::unique_ptr<Operator> Sink(const std::string& extra) {
    auto config = Config::Parse("{path: \"" + out_.string() + "\", " + extra + "}", "config");
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    auto op = BuiltinOperators().Find("committing_file")->Create(config.value(), schema_);
    EXPECT_TRUE(op.ok()) << op.status().ToString();
    auto sink = std::move(op).value();
    EXPECT_TRUE(sink->Open(SinkContext("job1", 0, 0, 1)).ok());
    return sink;
  }
  // One checkpoint, as the job manager runs it: snapshot, completion, commit watermark.
  OperatorSnapshot Checkpoint(Operator& sink, int64_t id) {
    OperatorSnapshot snap;
    Status st = sink.Snapshot(id, &snap);
    EXPECT_TRUE(st.ok()) << "checkpoint " << id << ": " << st.ToString();
    sink.NotifyCheckpointComplete(id);
    if (snap.commit_watermark) sink.NotifyCommitWatermark(id, *snap.commit_watermark);
    return snap;
  }
  // Every line of the files below `root` (recursively, hidden directories too): path -> lines.
  static std::map<std::string, std::vector<std::string>> Lines(const fs::path& root) {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path());
      for (std::string line; std::getline(in, line);) {
        out[fs::relative(e.path().parent_path(), root).string()].push_back(line);
      }
    }
    return out;
  }
  Schema schema_;
};

TEST_F(SinkValuesTest, A300BytePartitionValueGoesToDirtyAndCheckpointsGoOn) {
  schema_.Add("id", Type::kInt64);
  schema_.Add("app", Type::kString);
  auto sink = Sink("partition: \"app={app}\"");
  DiscardOutput out;
  int64_t read = 0;
  for (int64_t cp = 1; cp <= 4; ++cp) {
    RowBatch batch;
    for (int i = 0; i < 100; ++i, ++read) {
      Row& row = batch.Append(2);
      row[0].SetInt64(read);
      row[1].SetString(read % 100 == 42 ? std::string(300, 'x') : "ok");
    }
    ASSERT_TRUE(sink->Process(batch, out).ok());
    OperatorSnapshot snap = Checkpoint(*sink, cp);
    // Each checkpoint balances, and claims no row it does not commit.
    EXPECT_EQ(snap.counts["committed"], cp * 99) << cp;
    EXPECT_EQ(snap.counts["dirty"], cp) << cp;
    EXPECT_EQ(snap.counts["committed"] + snap.counts["dirty"], read);
    EXPECT_EQ(snap.counts["uncommitted"], 0);
  }
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_TRUE(Names(staging_).empty()) << "every file committed";
  const auto lines = Lines(out_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines.at("app=ok").size(), 396u);
  ASSERT_EQ(lines.at("_dirty").size(), 4u);
  for (const std::string& l : lines.at("_dirty")) {
    EXPECT_NE(l.find("\"reason\":\"partition field 'app' makes a directory name of 304 bytes "
                     "after escaping (limit 255)\""),
              std::string::npos)
        << l;
    EXPECT_NE(l.find(std::string(300, 'x')), std::string::npos) << "the row is kept whole";
  }
}

TEST_F(SinkValuesTest, ValuesWithSeparatorsAndInvalidUtf8LandEscapedExactlyOnce) {
  schema_.Add("id", Type::kInt64);
  schema_.Add("app", Type::kString);
  auto sink = Sink("partition: \"app={app}\"");
  const std::vector<std::pair<std::string, std::string>> values = {
      {"a/b", "app=a%2Fb"},
      {"50%", "app=50%25"},
      {"12:00", "app=12%3A00"},
      {"two\nlines", "app=two%0Alines"},
      {"bad\xff\xfe", "app=bad%FF%FE"},
      {"..", "app=.."},
      {"", "app=__HIVE_DEFAULT_PARTITION__"}};
  DiscardOutput out;
  RowBatch batch;
  for (int rep = 0; rep < 3; ++rep) {
    for (size_t i = 0; i < values.size(); ++i) {
      Row& row = batch.Append(2);
      row[0].SetInt64(static_cast<int64_t>(rep * values.size() + i));
      row[1].SetString(values[i].first);
    }
  }
  ASSERT_TRUE(sink->Process(batch, out).ok());
  OperatorSnapshot snap = Checkpoint(*sink, 1);
  EXPECT_EQ(snap.counts["committed"], 21);
  EXPECT_EQ(snap.counts["dirty"], 0);
  // A second checkpoint is not declined (a failed commit would decline it).
  OperatorSnapshot snap2;
  ASSERT_TRUE(sink->Snapshot(2, &snap2).ok());
  ASSERT_TRUE(sink->Close().ok());
  const auto lines = Lines(out_);
  EXPECT_EQ(lines.size(), values.size());
  std::map<int64_t, int> seen;
  for (size_t i = 0; i < values.size(); ++i) {
    auto it = lines.find(values[i].second);
    ASSERT_NE(it, lines.end()) << values[i].second;
    EXPECT_EQ(it->second.size(), 3u);
    for (const std::string& l : it->second) {
      long long id;
      ASSERT_EQ(sscanf(l.c_str(), R"({"id":%lld)", &id), 1) << l;
      EXPECT_EQ(static_cast<size_t>(id) % values.size(), i) << l;
      ++seen[id];
    }
  }
  ExpectEachOnce(seen, 21);
}

// format: parquet. Files per partition and checkpoint, read back by DuckDB (an independent
// reader) with every row exactly once; rows with a string that is not UTF-8 go to dirty with
// the field named; a checkpoint without rows writes no file.
TEST_F(SinkValuesTest, ParquetFilesReadBackInDuckDbAndInvalidUtf8GoesToDirty) {
  schema_.Add("id", Type::kInt64);
  schema_.Add("app", Type::kString);
  schema_.Add("note", Type::kString);
  schema_.Add("ts", Type::kTimestamp);
  schema_.Add("v", Type::kDouble);
  auto sink = Sink("format: parquet, partition: \"app={app}\"");
  DiscardOutput out;
  int64_t id = 0, dirty = 0, web = 0;
  for (int64_t cp = 1; cp <= 3; ++cp) {
    RowBatch batch;
    for (int i = 0; i < 5000; ++i, ++id) {
      Row& row = batch.Append(5);
      row[0].SetInt64(id);
      row[1].SetString(id % 3 == 0 ? "web" : "ios");
      const bool bad = id % 500 == 7;
      dirty += bad;
      web += !bad && id % 3 == 0;
      if (bad) {
        row[2].SetString("caf\xC3");  // cut in the middle of a character
      } else if (id % 4 == 0) {
        row[2].SetNull();
      } else {
        row[2].SetString("naïve ☕ " + std::to_string(id));
      }
      row[3].SetTimestamp(1700000000000 + id);
      row[4].SetDouble(id * 0.5);
    }
    ASSERT_TRUE(sink->Process(batch, out).ok());
    OperatorSnapshot snap = Checkpoint(*sink, cp);
    EXPECT_EQ(snap.counts["committed"] + snap.counts["dirty"], id);
    EXPECT_EQ(snap.counts["dirty"], dirty);
  }
  // A checkpoint with no rows: no new file.
  Checkpoint(*sink, 4);
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_TRUE(Names(staging_).empty()) << "every file committed";
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(out_)) {
    if (!e.is_regular_file() || e.path().parent_path().filename() == "_dirty") continue;
    EXPECT_EQ(e.path().extension(), ".parquet") << e.path();
    ++files;
  }
  EXPECT_EQ(files, 6u) << "one file per partition and checkpoint with rows";
  const std::string glob = out_.string() + "/app=*/*.parquet";
  char want[256];
  std::snprintf(want, sizeof want,
                R"({"n":%lld,"ids":%lld,"web":%lld,"nulls":%lld,"t0":1700000000000,"vs":"%.1f"})",
                static_cast<long long>(id - dirty), static_cast<long long>(id - dirty),
                static_cast<long long>(web), static_cast<long long>((id + 3) / 4), [&] {
                  double v = 0;
                  for (int64_t k = 0; k < id; ++k) v += (k % 500 == 7) ? 0 : k * 0.5;
                  return v;
                }());
  EXPECT_EQ(testing::DuckDb("SELECT count(*) AS n, count(DISTINCT id) AS ids, count(*) FILTER "
                            "(WHERE app = 'web') AS web, count(*) - count(note) AS nulls, "
                            "epoch_ms(min(ts)) AS t0, printf('%.1f', sum(v)) AS vs FROM "
                            "read_parquet('" +
                            glob + "', hive_partitioning = true)"),
            std::vector<std::string>{want});
  EXPECT_EQ(testing::DuckDb("SELECT note FROM read_parquet('" + glob + "') WHERE id = 9"),
            std::vector<std::string>{R"({"note":"naïve ☕ 9"})"});
  const auto lines = Lines(out_ / "_dirty");
  ASSERT_EQ(lines.at(".").size(), static_cast<size_t>(dirty));
  for (const std::string& l : lines.at(".")) {
    EXPECT_NE(l.find("\"reason\":\"field 'note' is not valid UTF-8 (byte 0xC3 at offset 3), "
                     "which a Parquet string must be\""),
              std::string::npos)
        << l;
  }
}

// Rolling by size counts encoded bytes: with max_size, files close near it (row groups are
// written when the buffer fills up), each a valid file, every row once.
TEST_F(SinkValuesTest, ParquetRollsBySizeIntoValidFiles) {
  schema_.Add("id", Type::kInt64);
  schema_.Add("payload", Type::kString);
  auto sink = Sink(
      "format: parquet, compression: none, rolling: {max_size: 2mb}, "
      "parquet: {row_group_size: 1mb, page_size: 64kb, dictionary: false}");
  DiscardOutput out;
  int64_t id = 0;
  for (int b = 0; b < 100; ++b) {
    RowBatch batch;
    for (int i = 0; i < 1000; ++i, ++id) {
      Row& row = batch.Append(2);
      row[0].SetInt64(id);
      row[1].SetString(std::string(100, static_cast<char>('a' + id % 26)));
    }
    ASSERT_TRUE(sink->Process(batch, out).ok());
  }
  Checkpoint(*sink, 1);
  ASSERT_TRUE(sink->Close().ok());
  std::vector<uintmax_t> sizes;
  for (const auto& e : fs::directory_iterator(out_)) {
    if (e.is_regular_file()) sizes.push_back(e.file_size());
  }
  // 100,000 rows of ~112 plain bytes: about 11 MB, so at least five files of at most 2 MB (plus
  // the last batch's rows and the footer).
  EXPECT_GE(sizes.size(), 5u);
  for (uintmax_t s : sizes) EXPECT_LT(s, 2u * 1024 * 1024 + 200 * 1024) << s;
  EXPECT_EQ(testing::DuckDb("SELECT count(*) AS n, count(DISTINCT id) AS d FROM read_parquet('" +
                            out_.string() + "/*.parquet')"),
            std::vector<std::string>{R"({"n":100000,"d":100000})"});
}

TEST_F(SinkValuesTest, ParquetConfigErrorsNameTheKey) {
  schema_.Add("id", Type::kInt64);
  auto check = [&](const std::string& extra) {
    auto config = Config::Parse("{path: \"" + out_.string() + "\", " + extra + "}", "config");
    EXPECT_TRUE(config.ok());
    return BuiltinOperators().Find("committing_file")->Validate(config.value(), schema_).status();
  };
  EXPECT_TRUE(check("format: parquet").ok());
  EXPECT_TRUE(check("format: parquet, compression: zstd, parquet: {row_group_size: 8mb}").ok());
  EXPECT_EQ(check("format: parquet, compression: gzip").ToString(),
            "INVALID_ARGUMENT: config.compression: format parquet takes snappy, zstd or none, "
            "got 'gzip'");
  EXPECT_EQ(check("format: json, compression: snappy").ToString(),
            "INVALID_ARGUMENT: config.compression: format json takes none or gzip, got 'snappy'");
  EXPECT_EQ(check("format: json, parquet: {dictionary: false}").ToString(),
            "INVALID_ARGUMENT: config.parquet: only for format parquet");
  EXPECT_NE(check("format: parquet, parquet: {row_groups: 1}").ToString().find("row_groups"),
            std::string::npos);
  EXPECT_EQ(check("format: parquet, parquet: {row_group_size: 10kb}").ToString(),
            "INVALID_ARGUMENT: config.parquet.row_group_size: must be 1mb..1gb");
}

// A row from year 1 that is on time (the first row, no watermark yet) makes the earliest
// partition written year 1: the empty partitions back-fill at most the limit, and each commit
// marks at most the limit.
TEST_F(SinkValuesTest, YearOneRowMakesBoundedEmptyPartitions) {
  schema_.Add("ts", Type::kTimestamp);
  auto sink = Sink(
      "partition: \"dt={ts:%Y-%m-%d}/hour={ts:%H}\", "
      "partition_commit: {empty_partitions: true, empty_partitions_limit: 30}");
  DiscardOutput out;
  constexpr int64_t kYear1 = -62135596800000, kHour = 3600000;
  RowBatch b1;
  b1.Append(1)[0].SetTimestamp(kYear1);
  b1.Append(1)[0].SetTimestamp(100 * kHour);
  ASSERT_TRUE(sink->Process(b1, out).ok());
  ASSERT_TRUE(sink->OnWatermark(100 * kHour + 5, out).ok());
  Checkpoint(*sink, 1);
  Checkpoint(*sink, 2);  // reports checkpoint 1's commit watermark: hours before 100 complete
  auto markers = [&] {
    std::set<std::string> dirs;
    for (const auto& e : fs::recursive_directory_iterator(out_)) {
      if (e.path().filename() == "_SUCCESS") {
        dirs.insert(fs::relative(e.path().parent_path(), out_).string());
      }
    }
    return dirs;
  };
  std::set<std::string> m = markers();
  // Hours 70..99: the 30 before the newest complete one (99), and year 1's own partition.
  EXPECT_EQ(m.size(), 31u);
  EXPECT_TRUE(m.count(HourDir(99)));
  EXPECT_TRUE(m.count(HourDir(70)));
  EXPECT_FALSE(m.count(HourDir(69)));
  EXPECT_TRUE(m.count("dt=0001-01-01/hour=00")) << "the partition with data is marked";
  EXPECT_FALSE(fs::exists(out_ / "dt=0001-01-01" / "hour=01")) << "no empty hour from year 1";
  // The watermark jumps 100 hours: 30 per commit, resumed at the next one.
  RowBatch b2;
  b2.Append(1)[0].SetTimestamp(200 * kHour);
  ASSERT_TRUE(sink->Process(b2, out).ok());
  ASSERT_TRUE(sink->OnWatermark(200 * kHour + 5, out).ok());
  Checkpoint(*sink, 3);
  Checkpoint(*sink, 4);
  m = markers();
  EXPECT_EQ(m.size(), 31u + 30u);
  EXPECT_TRUE(m.count(HourDir(129)));
  EXPECT_FALSE(m.count(HourDir(130)));
  Checkpoint(*sink, 5);
  EXPECT_EQ(markers().size(), 31u + 60u);
  ASSERT_TRUE(sink->Close().ok());
}

// A late row from year 1 must not move the start of the empty partitions back.
TEST_F(SinkValuesTest, LateRowsDoNotMoveTheEmptyPartitionsStart) {
  schema_.Add("ts", Type::kTimestamp);
  auto sink = Sink(
      "partition: \"dt={ts:%Y-%m-%d}/hour={ts:%H}\", "
      "partition_commit: {empty_partitions: true}");
  DiscardOutput out;
  constexpr int64_t kYear1 = -62135596800000, kHour = 3600000;
  ASSERT_TRUE(sink->OnWatermark(10 * kHour, out).ok());
  RowBatch b;
  b.Append(1)[0].SetTimestamp(10 * kHour);
  b.Append(1)[0].SetTimestamp(kYear1);  // late
  ASSERT_TRUE(sink->Process(b, out).ok());
  ASSERT_TRUE(sink->OnWatermark(12 * kHour, out).ok());
  OperatorSnapshot s1 = Checkpoint(*sink, 1);
  EXPECT_EQ(s1.counts["late"], 1);
  EXPECT_EQ(s1.counts["committed"], 1);
  Checkpoint(*sink, 2);
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_TRUE(fs::exists(out_ / "_late" / "dt=0001-01-01" / "hour=00"));
  EXPECT_TRUE(fs::exists(out_ / HourDir(10) / "_SUCCESS"));
  EXPECT_TRUE(fs::exists(out_ / HourDir(11) / "_SUCCESS"));
  EXPECT_FALSE(fs::exists(out_ / HourDir(9))) << "nothing before the first on-time partition";
  EXPECT_FALSE(fs::exists(out_ / "dt=0001-01-01" / "hour=00" / "_SUCCESS"));
}

// A commit that fails (here: a directory where the file should go) must not be counted as
// committed; once a retry commits it, the counts move back.
TEST_F(SinkValuesTest, RowsOfAFailedCommitAreCountedUncommittedUntilCommitted) {
  schema_.Add("id", Type::kInt64);
  schema_.Add("app", Type::kString);
  auto sink = Sink("partition: \"app={app}\"");
  DiscardOutput out;
  RowBatch b;
  for (int i = 0; i < 5; ++i) {
    Row& row = b.Append(2);
    row[0].SetInt64(i);
    row[1].SetString("x");
  }
  ASSERT_TRUE(sink->Process(b, out).ok());
  // "app=x" as a file: the partition directory cannot be created.
  fs::create_directories(out_);
  std::ofstream(out_ / "app=x") << "in the way\n";
  OperatorSnapshot s1;
  ASSERT_TRUE(sink->Snapshot(1, &s1).ok());
  EXPECT_EQ(s1.counts["committed"], 5);  // claimed for checkpoint 1, as the protocol does
  sink->NotifyCheckpointComplete(1);     // fails
  OperatorSnapshot s2;
  EXPECT_FALSE(sink->Snapshot(2, &s2).ok()) << "the failure declines one checkpoint";
  OperatorSnapshot s3;
  ASSERT_TRUE(sink->Snapshot(3, &s3).ok());
  EXPECT_EQ(s3.counts["committed"], 0) << "not committed: not counted";
  EXPECT_EQ(s3.counts["uncommitted"], 5);
  fs::remove(out_ / "app=x");
  sink->NotifyCheckpointComplete(3);  // the retry commits checkpoint 1's file
  OperatorSnapshot s4;
  ASSERT_TRUE(sink->Snapshot(4, &s4).ok());
  EXPECT_EQ(s4.counts["committed"], 5);
  EXPECT_EQ(s4.counts["uncommitted"], 0);
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(Lines(out_).at("app=x").size(), 5u);
}

TEST(PartitionedSinkConfigTest, ErrorsNameTheField) {
  auto check = [](const std::string& config, const std::string& want) {
    const std::string yaml = R"Y(
vertices:
  - {id: gen, type: datagen, config: {total: 1, fields: [{name: ts, expr: "id"}, {name: m, expr: "id"}]}}
  - {id: out, type: committing_file, config: )Y" +
                             config + R"Y(}
edges: [{from: gen, to: out}]
)Y";
    auto spec = ParseJobFile(yaml);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    auto plan = BuildPlan(std::move(spec).value(), BuiltinOperators());
    ASSERT_FALSE(plan.ok()) << config;
    EXPECT_NE(plan.status().message().find(want), std::string::npos)
        << config << ": " << plan.status().message();
  };
  check("{path: /tmp/x, format: orc}",
        "vertex 'out': config.format: expected json, csv or parquet, got 'orc'");
  check("{path: /tmp/x, compression: zstd}", "config.compression: format json takes none or gzip");
  check("{path: /tmp/x, csv: {delimiter: ab}}", "config.csv.delimiter");
  check("{path: /tmp/x, partition: \"m={m:%Y}\"}", "coarser than a day");
  check("{path: /tmp/x, partition: \"m={m}\", partition_commit: {enabled: true}}",
        "needs a time placeholder");
  check(
      "{path: /tmp/x, partition: \"h={ts:%H}/m={m}\", partition_commit: {empty_partitions: true}}",
      "empty_partitions: only for templates");
  check("{path: /tmp/x, late_dir: ../x}", "config.late_dir");
  check("{path: /tmp/x, rolling: {max_sise: 1}}", "max_sise");
  check("{path: /tmp/x, max_open_files: 0}", "config.max_open_files");
}

}  // namespace
}  // namespace weir

// ------------------------------------------------------------------ corrupt restored state
namespace weir {
namespace {

// Opens a committing_file sink restored from one operator-state list holding `entry`.
Status OpenWithRestoredList(const Config& cfg, const Schema& schema, const std::string& list,
                            const std::string& entry) {
  auto op = BuiltinOperators().Find("committing_file")->Create(cfg, schema);
  if (!op.ok()) return op.status();
  RestoredState restored;
  proto::NamedList l;
  l.set_name(list);
  l.add_entries(entry);
  restored.operator_state.push_back(l);
  OperatorContext ctx;
  ctx.job_id = "j";
  ctx.vertex_id = "out";
  ctx.restored = &restored;
  return (*op)->Open(ctx);
}

TEST(CorruptRestoredStateTest, SinkPartitionAndEventTimeEntriesAreRefusedByName) {
  const fs::path dir =
      fs::temp_directory_path() / ("weir-corrupt-state-" + std::to_string(getpid()));
  fs::remove_all(dir);
  Schema schema;
  schema.Add("ts", Type::kTimestamp);
  auto cfg = Config::Parse("{path: \"" + dir.string() + "\", partition: \"h={ts:%H}\"}", "c");
  ASSERT_TRUE(cfg.ok());
  for (const auto& [list, entry, want] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"partitions",
            std::string("t1\0../x\0"
                        "5",
                        9),
            "corrupt 'partitions' entry"},
           {"partitions", std::string("t1\0h=01\0five", 12), "corrupt 'partitions' entry"},
           {"event_time", std::string("e1\0soon", 7), "corrupt 'event_time' entry"},
           {"event_time", "e2", "corrupt 'event_time' entry"},
       }) {
    Status st = OpenWithRestoredList(*cfg, schema, list, entry);
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << list;
    EXPECT_NE(st.message().find(want), std::string::npos) << st.message();
  }
  fs::remove_all(dir);
}

// Versioned lists: entries are checked as the legacy ones were, and a list of another version
// is refused naming it.
TEST(CorruptRestoredStateTest, VersionedEntriesAndOtherVersionsAreRefusedByName) {
  const fs::path dir =
      fs::temp_directory_path() / ("weir-corrupt-vstate-" + std::to_string(getpid()));
  fs::remove_all(dir);
  Schema schema;
  schema.Add("ts", Type::kTimestamp);
  auto cfg = Config::Parse("{path: \"" + dir.string() + "\", partition: \"h={ts:%H}\"}", "c");
  ASSERT_TRUE(cfg.ok());
  proto::CommittingFilePartition bad_dir;
  bad_dir.set_dir("../x");
  proto::CommittingFileWriter bad_writer;
  bad_writer.set_job_id("j");
  bad_writer.add_staging_names("a/b");
  proto::CommittingFilePending bad_pending;
  bad_pending.set_staging("..");
  bad_pending.set_final_name("x");
  for (const auto& [list, entry, code, want] :
       std::vector<std::tuple<std::string, std::string, StatusCode, std::string>>{
           {"partitions@v1", bad_dir.SerializeAsString(), StatusCode::kDataLoss,
            "corrupt 'partitions' entry"},
           {"writers@v1", bad_writer.SerializeAsString(), StatusCode::kDataLoss,
            "corrupt 'writers' entry"},
           {"pending@v1", bad_pending.SerializeAsString(), StatusCode::kDataLoss,
            "corrupt 'pending' entry"},
           {"pending@v1", "\xff\xff", StatusCode::kDataLoss,
            "corrupt entry in restored state 'pending@v1'"},
           {"event_time@v2", "", StatusCode::kFailedPrecondition,
            "'event_time@v2' has a format this version does not read (it reads "
            "'event_time@v1')"},
       }) {
    Status st = OpenWithRestoredList(*cfg, schema, list, entry);
    EXPECT_EQ(st.code(), code) << list << ": " << st.ToString();
    EXPECT_NE(st.message().find(want), std::string::npos) << st.message();
  }
  fs::remove_all(dir);
}

// Legacy "partitions" and "event_time" lists restore: the next snapshot carries the partition
// and the minimum restored watermark in the versioned lists.
TEST(LegacySinkStateTest, PartitionsAndEventTimeFromLegacyListsRestore) {
  const fs::path dir = fs::temp_directory_path() / ("weir-legacy-sink-" + std::to_string(getpid()));
  fs::remove_all(dir);
  Schema schema;
  schema.Add("ts", Type::kTimestamp);
  auto cfg = Config::Parse("{path: \"" + dir.string() + "\", partition: \"h={ts:%H}\"}", "c");
  ASSERT_TRUE(cfg.ok());
  RestoredState restored;
  auto add = [&](const std::string& name, std::vector<std::string> entries) {
    proto::NamedList l;
    l.set_name(name);
    for (const std::string& e : entries) l.add_entries(e);
    restored.operator_state.push_back(l);
  };
  add("pending", {});
  add("writers", {std::string("w1\0"
                              "4\0j0\0"
                              "0\0"
                              "0",
                              11)});
  add("partitions", {std::string("t1\0h=01\0"
                                 "7200000",
                                 15)});
  add("event_time", {std::string("e1\0"
                                 "7000",
                                 7),
                     std::string("e1\0"
                                 "5000",
                                 7)});
  auto op = BuiltinOperators().Find("committing_file")->Create(*cfg, schema);
  ASSERT_TRUE(op.ok());
  OperatorContext ctx;
  ctx.job_id = "j";
  ctx.vertex_id = "out";
  ctx.restored = &restored;
  Status st = (*op)->Open(ctx);
  ASSERT_TRUE(st.ok()) << st.ToString();
  OperatorSnapshot snap;
  st = (*op)->Snapshot(5, &snap);  // after the restored checkpoint 4
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::map<std::string, proto::NamedList> lists;
  for (const proto::NamedList& l : snap.operator_state) lists[l.name()] = l;
  ASSERT_EQ(lists.count("partitions@v1"), 1u);
  ASSERT_EQ(lists["partitions@v1"].entries_size(), 1);
  proto::CommittingFilePartition part;
  ASSERT_TRUE(part.ParseFromString(lists["partitions@v1"].entries(0)));
  EXPECT_EQ(part.dir(), "h=01");
  EXPECT_EQ(part.end(), 7200000);
  ASSERT_EQ(lists["event_time@v1"].entries_size(), 1);
  proto::CommittingFileEventTime et;
  ASSERT_TRUE(et.ParseFromString(lists["event_time@v1"].entries(0)));
  EXPECT_EQ(et.watermark(), 5000);
  EXPECT_EQ(snap.commit_watermark, std::optional<int64_t>(5000));
  proto::CommittingFileWriter w;
  ASSERT_EQ(lists["writers@v1"].entries_size(), 1);
  ASSERT_TRUE(w.ParseFromString(lists["writers@v1"].entries(0)));
  EXPECT_EQ(w.checkpoint(), 5);
  for (const auto& [name, l] : lists) EXPECT_NE(name, "partitions") << "legacy list written";
  ASSERT_TRUE((*op)->Close().ok());
  fs::remove_all(dir);
}

TEST(CorruptRestoredStateTest, RecordCountersRefuseCorruptEntriesAndAddUpGoodOnes) {
  RestoredState restored;
  proto::NamedList l;
  l.set_name("_counts");
  l.add_entries(
      std::string("c1\0read\0"
                  "10\0dirty\0"
                  "2",
                  18));
  l.add_entries(
      std::string("c1\0read\0"
                  "5",
                  9));
  restored.operator_state.push_back(l);
  RecordCounters c;
  ASSERT_TRUE(c.Restore(&restored).ok());
  EXPECT_EQ(c.Get("read"), 15);
  EXPECT_EQ(c.Get("dirty"), 2);
  for (const std::string& bad : {std::string("c2\0read\0"
                                             "1",
                                             9),
                                 std::string("c1\0read", 7), std::string("c1\0read\0x", 9)}) {
    RestoredState r;
    proto::NamedList b;
    b.set_name("_counts");
    b.add_entries(bad);
    r.operator_state.push_back(b);
    RecordCounters rc;
    Status st = rc.Restore(&r);
    EXPECT_EQ(st.code(), StatusCode::kDataLoss);
    EXPECT_NE(st.message().find("corrupt '_counts' entry"), std::string::npos);
  }
}

}  // namespace
}  // namespace weir

namespace weir {
namespace {

// Snapshots from before side outputs: parse embedded its dirty sink and kept that sink's lists
// as "dirty/<list>" in its own state. PlanRestore moves them to the vertex the dirty.path
// shorthand now adds ("<id>-dirty-sink"), dealt as any SPLIT / UNION list; parse keeps the rest.
// A snapshot that already has state of the new vertex is left alone.
TEST(LegacyDirtyStateTest, PlanRestoreMovesParsesDirtyListsToTheDirtySinkVertex) {
  const std::string yaml = R"Y(
max_parallelism: 16
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 10, fields: [{name: value, expr: "string(id)"}]}}
  - {id: p, type: parse, parallelism: 2, config: {format: json, fields: [{name: n, type: int64}], dirty: {path: /tmp/weir-legacy-dirty}}}
  - {id: out, type: blackhole, parallelism: 2}
edges:
  - {from: gen, to: p}
  - {from: p, to: out}
)Y";
  auto plan = BuildPlan(ParseJobFile(yaml).value(), BuiltinOperators());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  proto::CheckpointMetadata md;
  md.set_checkpoint_id(7);
  md.set_max_parallelism(16);
  proto::VertexState* vs = md.add_vertices();
  vs->set_vertex_id("p");
  vs->set_parallelism(2);
  for (int i = 0; i < 2; ++i) {
    proto::OperatorSubtaskState* os = vs->add_subtasks();
    os->set_vertex_id("p");
    os->set_subtask(i);
    auto add = [&](const std::string& name, proto::NamedList::Mode mode, const std::string& e) {
      proto::NamedList* l = os->add_operator_state();
      l->set_name(name);
      l->set_mode(mode);
      l->add_entries(e);
    };
    add("_counts", proto::NamedList::SPLIT, "counts" + std::to_string(i));
    add("dirty/pending", proto::NamedList::SPLIT, "pending" + std::to_string(i));
    add("dirty/writers", proto::NamedList::UNION, "writer" + std::to_string(i));
  }
  auto restore = jm::PlanRestore(md, "/tmp/weir-legacy-chk/chk-7", *plan, false);
  ASSERT_TRUE(restore.ok()) << restore.status().ToString();
  for (int i = 0; i < 2; ++i) {
    std::map<std::string, std::map<std::string, std::vector<std::string>>> lists;  // vertex -> list
    for (const auto& task : {std::string("gen"), std::string("p-dirty-sink")}) {
      for (const auto& vr : restore->at({task, i}).vertices()) {
        for (const auto& l : vr.operator_state()) {
          lists[vr.vertex_id()][l.name()].assign(l.entries().begin(), l.entries().end());
        }
      }
    }
    EXPECT_EQ(lists["p"].size(), 1u) << "parse keeps only its counters";
    EXPECT_EQ(lists["p"]["_counts"], std::vector<std::string>{"counts" + std::to_string(i)});
    EXPECT_EQ(lists["p-dirty-sink"]["pending"],
              std::vector<std::string>{"pending" + std::to_string(i)});
    EXPECT_EQ(lists["p-dirty-sink"]["writers"], (std::vector<std::string>{"writer0", "writer1"}));
  }
  // A newer snapshot has the sink's own state: nothing moves.
  proto::VertexState* own = md.add_vertices();
  own->set_vertex_id("p-dirty-sink");
  own->set_parallelism(2);
  proto::NamedList* l = own->add_subtasks()->add_operator_state();
  l->set_name("pending");
  l->add_entries("own");
  restore = jm::PlanRestore(md, "/tmp/weir-legacy-chk/chk-7", *plan, false);
  ASSERT_TRUE(restore.ok()) << restore.status().ToString();
  for (const auto& vr : restore->at({"p-dirty-sink", 0}).vertices()) {
    for (const auto& ol : vr.operator_state()) {
      EXPECT_EQ(ol.name(), "pending");
      EXPECT_EQ(ol.entries(0), "own");
    }
  }
}

}  // namespace
}  // namespace weir
