// What the tests of keyed operators driven through the Operator API share (window_aggregate_test,
// join_test): collecting output rows, a per-test directory per state backend (the test
// parameter: "rocksdb" or "heap"), operator contexts on it, and snapshot -> upload -> restore.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "weir/key_groups.h"
#include "weir/operator.h"

namespace weir::testing_keyed {

namespace fs = std::filesystem;

constexpr int kMaxParallelism = 128;

class Collect : public Output {
 public:
  Status Emit(RowBatch& batch) override {
    for (size_t i = 0; i < batch.size(); ++i) rows.push_back(batch[i].ToString());
    return Status::Ok();
  }
  std::vector<std::string> rows;
};

inline int GroupOfKey(const std::string& k) {
  return KeyGroupForHash(HashValue(Value::String(k), 0), kMaxParallelism);
}

class KeyedOperatorTest : public ::testing::TestWithParam<std::string> {
 protected:
  explicit KeyedOperatorTest(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = fs::temp_directory_path() /
           (prefix_ + std::to_string(getpid()) + "-" + name + "-" + GetParam());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A context for vertex `vertex` owning `range`, with a fresh local directory, the backend
  // under test and the fixture's metrics.
  OperatorContext Context(const std::string& vertex, KeyGroupRange range,
                          const RestoredState* restored) {
    OperatorContext ctx;
    ctx.vertex_id = vertex;
    ctx.max_parallelism = kMaxParallelism;
    ctx.key_groups = range;
    ctx.local_dir = (dir_ / ("local-" + std::to_string(next_++))).string();
    fs::create_directories(ctx.local_dir);
    ctx.state_backend = GetParam();
    ctx.metrics = &metrics_;
    ctx.restored = restored;
    return ctx;
  }

  // Snapshot -> upload -> what a restore gets (added to `merge_into`'s, if given).
  RestoredState TakeSnapshot(Operator& op, int64_t id, RestoredState* merge_into = nullptr) {
    OperatorSnapshot snap;
    Status st = op.Snapshot(id, &snap);
    EXPECT_TRUE(st.ok()) << st.ToString();
    RestoredState r = merge_into != nullptr ? *merge_into : RestoredState{};
    r.root = (dir_ / "checkpoints").string();
    proto::CheckpointOptions options;
    options.set_root(r.root);
    options.set_incremental(true);
    auto handle =
        snap.keyed->Upload(options, "chk-" + std::to_string(id) + "/op-" + std::to_string(next_++));
    EXPECT_TRUE(handle.ok()) << handle.status().ToString();
    r.keyed.push_back(*handle);
    for (auto& l : snap.operator_state) r.operator_state.push_back(l);
    op.NotifyCheckpointComplete(id);
    return r;
  }

  std::string prefix_;
  fs::path dir_;
  int next_ = 0;
  OperatorMetrics metrics_;
};

}  // namespace weir::testing_keyed
