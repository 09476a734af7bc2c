// The snapshottable keyed state backends (RocksDB and heap): access, snapshot/upload/restore
// round trips, incremental checkpoints, savepoints, rescaling, switching backends, and errors
// for missing or corrupt state files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "weir/key_groups.h"
#include "weir/state/backend.h"
#include "weir/state/caching_backend.h"

namespace weir::state {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int kMaxParallelism = 128;

// kCachedRocksDb: RocksDB behind a write-back cache of 2 KiB (a dozen entries: most writes are
// evicted and written back in batches, some are still dirty at the snapshot).
enum class Kind { kRocksDb, kHeap, kCachedRocksDb };

std::string KindName(Kind k) {
  return k == Kind::kRocksDb ? "RocksDb" : k == Kind::kHeap ? "Heap" : "CachedRocksDb";
}
Kind Other(Kind k) {
  return k == Kind::kRocksDb ? Kind::kHeap : Kind::kRocksDb;
}

// "key group:key" -> value: what a backend holds, comparable across backends.
using Contents = std::map<std::string, std::string>;

std::string Entry(int kg, std::string_view key) {
  return std::to_string(kg) + ":" + std::string(key);
}

Contents Dump(KeyedStateBackend& b) {
  Contents out;
  Status st = b.ForEach([&out](int kg, std::string_view key, std::string_view value) {
    EXPECT_TRUE(out.emplace(Entry(kg, key), std::string(value)).second) << "duplicate " << key;
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::string Key(int i) {
  return "key-" + std::to_string(i);
}
int KeyGroupOfKey(const std::string& key) {
  return KeyGroupForHash(StableHash(key), kMaxParallelism);
}

class StateFixture : public ::testing::Test {
 public:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = fs::temp_directory_path() / ("weir-state-test-" + std::to_string(getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    root_ = (dir_ / "checkpoints" / "job").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Local(const std::string& name) const { return (dir_ / "local" / name).string(); }

  Result<std::unique_ptr<SnapshottableBackend>> Open(
      Kind kind, const std::string& local, KeyGroupRange range,
      const std::vector<proto::KeyedStateHandle>& restore = {}, const std::string& root = "") {
    BackendOptions o;
    o.local_dir = local;
    o.max_parallelism = kMaxParallelism;
    o.key_groups = range;
    const std::string& r = root.empty() ? root_ : root;
    if (kind == Kind::kHeap) return OpenHeapBackend(o, restore, r);
    auto b = OpenRocksDbBackend(o, restore, r);
    if (!b.ok() || kind == Kind::kRocksDb) return b;
    auto cached = NewCachingBackend(std::move(b).value(), 2048);
    cached->HintPointLookups('k');  // the tests' keys: "key-<i>"
    return cached;
  }
  std::unique_ptr<SnapshottableBackend> MustOpen(
      Kind kind, const std::string& local, KeyGroupRange range,
      const std::vector<proto::KeyedStateHandle>& restore = {}, const std::string& root = "") {
    auto b = Open(kind, local, range, restore, root);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b).value() : nullptr;
  }

  proto::KeyedStateHandle Checkpoint(SnapshottableBackend& b, int64_t id, const std::string& excl,
                                     bool incremental = true, const std::string& root = "") {
    auto upload = b.Snapshot(id);
    EXPECT_TRUE(upload.ok()) << upload.status().ToString();
    if (!upload.ok()) return {};
    SnapshotTarget t{root.empty() ? root_ : root, excl, incremental};
    auto handle = (*upload)->Upload(t);
    EXPECT_TRUE(handle.ok()) << handle.status().ToString();
    return handle.ok() ? *handle : proto::KeyedStateHandle{};
  }

  // Puts keys [from, to) into whichever of `backends` owns each key's group (their ranges
  // partition 0..127), and records them in `expected`.
  void Fill(const std::vector<SnapshottableBackend*>& backends,
            const std::vector<KeyGroupRange>& ranges, int from, int to, const std::string& tag,
            Contents* expected) {
    for (int i = from; i < to; ++i) {
      const std::string key = Key(i);
      const int kg = KeyGroupOfKey(key);
      const std::string value = tag + "-" + std::to_string(i);
      for (size_t b = 0; b < backends.size(); ++b) {
        if (!ranges[b].Contains(kg)) continue;
        ASSERT_TRUE(backends[b]->Put(kg, key, value).ok());
        (*expected)[Entry(kg, key)] = value;
      }
    }
  }

  static Contents InRange(const Contents& all, KeyGroupRange r) {
    Contents out;
    for (const auto& [k, v] : all) {
      if (r.Contains(std::stoi(k.substr(0, k.find(':'))))) out.emplace(k, v);
    }
    return out;
  }

  // Writes keys over all 128 key groups into 2 subtasks of kind `from`, snapshots both, and
  // restores into `new_parallelism` backends of kind `to`.
  void RescaleCase(Kind from, Kind to, int new_parallelism);

  fs::path dir_;
  std::string root_;
};

class StateTest : public StateFixture, public ::testing::WithParamInterface<Kind> {};

const KeyGroupRange kAll{0, kMaxParallelism - 1};

TEST_P(StateTest, PutGetDeleteForEach) {
  auto b = MustOpen(GetParam(), Local("a"), kAll);
  ASSERT_NE(b, nullptr);
  std::string v;
  EXPECT_FALSE(b->Get(3, "x", &v));
  ASSERT_TRUE(b->Put(3, "x", "one").ok());
  ASSERT_TRUE(b->Put(4, "x", "other group").ok());
  ASSERT_TRUE(b->Put(3, "y", std::string("\0bin\xff", 5)).ok());
  ASSERT_TRUE(b->Get(3, "x", &v));
  EXPECT_EQ(v, "one");
  ASSERT_TRUE(b->Put(3, "x", "two").ok());
  ASSERT_TRUE(b->Get(3, "x", &v));
  EXPECT_EQ(v, "two");
  ASSERT_TRUE(b->Get(4, "x", &v));
  EXPECT_EQ(v, "other group");
  ASSERT_TRUE(b->Get(3, "y", &v));
  EXPECT_EQ(v, std::string("\0bin\xff", 5));
  ASSERT_TRUE(b->Delete(4, "x").ok());
  EXPECT_FALSE(b->Get(4, "x", &v));
  ASSERT_TRUE(b->Delete(4, "never there").ok());
  EXPECT_EQ(Dump(*b), (Contents{{"3:x", "two"}, {"3:y", std::string("\0bin\xff", 5)}}));
  EXPECT_GE(b->ApproximateCount(), 1u);
}

TEST_P(StateTest, LocalDirIsCreatedAndRemoved) {
  const std::string local = Local("a");
  fs::create_directories(local + "/stale");  // left over from a crashed process
  {
    auto b = MustOpen(GetParam(), local, kAll);
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(fs::exists(local));
    EXPECT_FALSE(fs::exists(local + "/stale"));
  }
  EXPECT_FALSE(fs::exists(local));
}

TEST_P(StateTest, SnapshotRestoreRoundTrip) {
  Contents expected;
  proto::KeyedStateHandle handle;
  {
    auto b = MustOpen(GetParam(), Local("a"), kAll);
    ASSERT_NE(b, nullptr);
    Fill({b.get()}, {kAll}, 0, 3000, "v", &expected);
    ASSERT_TRUE(b->Delete(KeyGroupOfKey(Key(7)), Key(7)).ok());
    expected.erase(Entry(KeyGroupOfKey(Key(7)), Key(7)));
    handle = Checkpoint(*b, 1, "chk-1/op-0");
    // Writes after the snapshot are not in it.
    Contents late;
    Fill({b.get()}, {kAll}, 3000, 3100, "late", &late);
  }
  EXPECT_EQ(handle.backend(), GetParam() == Kind::kHeap ? "heap" : "rocksdb");
  EXPECT_EQ(handle.key_group_first(), 0);
  EXPECT_EQ(handle.key_group_last(), kMaxParallelism - 1);
  uint64_t sum = 0;
  for (const auto& f : handle.files()) {
    sum += f.size();
    EXPECT_EQ(fs::file_size(fs::path(root_) / f.path()), f.size()) << f.path();
  }
  EXPECT_EQ(handle.state_size(), sum);
  EXPECT_EQ(handle.incremental_size(), sum);  // the first checkpoint uploads everything
  EXPECT_EQ(ReferencedFiles(handle).size(), static_cast<size_t>(handle.files_size()));

  auto restored = MustOpen(GetParam(), Local("b"), kAll, {handle});
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(Dump(*restored), expected);
  std::string v;
  ASSERT_TRUE(restored->Get(KeyGroupOfKey(Key(5)), Key(5), &v));
  EXPECT_EQ(v, "v-5");
  // The restored backend goes on working and snapshotting.
  ASSERT_TRUE(restored->Put(1, "new", "x").ok());
  proto::KeyedStateHandle again = Checkpoint(*restored, 2, "chk-2/op-0");
  expected["1:new"] = "x";
  auto third = MustOpen(GetParam(), Local("c"), kAll, {again});
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(Dump(*third), expected);
}

TEST_P(StateTest, EmptyStateRoundTrip) {
  proto::KeyedStateHandle handle;
  {
    auto b = MustOpen(GetParam(), Local("a"), kAll);
    ASSERT_NE(b, nullptr);
    handle = Checkpoint(*b, 1, "chk-1/op-0");
  }
  auto restored = MustOpen(GetParam(), Local("b"), kAll, {handle});
  ASSERT_NE(restored, nullptr);
  EXPECT_TRUE(Dump(*restored).empty());
}

TEST_P(StateTest, UploadOutlivesBackend) {
  const std::string local = Local("a");
  std::unique_ptr<SnapshotUpload> upload;
  {
    auto b = MustOpen(GetParam(), local, kAll);
    ASSERT_NE(b, nullptr);
    ASSERT_TRUE(b->Put(9, "k", "v").ok());
    auto u = b->Snapshot(1);
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    upload = std::move(u).value();
  }
  auto handle = upload->Upload({root_, "chk-1/op-0", true});
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_FALSE(upload->Upload({root_, "chk-1/op-0", true}).ok());  // at most once
  upload.reset();
  EXPECT_FALSE(fs::exists(local));
  auto restored = MustOpen(GetParam(), Local("b"), kAll, {*handle});
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(Dump(*restored), (Contents{{"9:k", "v"}}));
}

TEST_P(StateTest, UnusedSnapshotLeavesNothingBehind) {
  const std::string local = Local("a");
  auto b = MustOpen(GetParam(), local, kAll);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Put(9, "k", "v").ok());
  {
    auto u = b->Snapshot(1);
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    b->NotifyCheckpointAborted(1);
  }
  EXPECT_FALSE(fs::exists(local + "/chk-1"));
  EXPECT_FALSE(fs::exists(root_));
}

TEST_P(StateTest, SavepointIsSelfContained) {
  Contents expected;
  const std::string savepoint = (dir_ / "savepoint-1").string();
  proto::KeyedStateHandle handle;
  {
    auto b = MustOpen(GetParam(), Local("a"), kAll);
    ASSERT_NE(b, nullptr);
    Fill({b.get()}, {kAll}, 0, 2000, "v", &expected);
    // An incremental checkpoint first: the savepoint must not point at its shared files.
    Checkpoint(*b, 1, "chk-1/op-0");
    Fill({b.get()}, {kAll}, 2000, 2500, "v", &expected);
    handle = Checkpoint(*b, 2, "op-0", /*incremental=*/false, savepoint);
  }
  for (const auto& f : handle.files()) EXPECT_THAT(f.path(), ::testing::StartsWith("op-0/"));
  EXPECT_EQ(handle.incremental_size(), handle.state_size());
  // Move it: a savepoint's handle paths are relative to the savepoint directory.
  const std::string moved = (dir_ / "elsewhere" / "sp").string();
  fs::create_directories(fs::path(moved).parent_path());
  fs::rename(savepoint, moved);
  fs::remove_all(root_);
  auto restored = MustOpen(GetParam(), Local("b"), kAll, {handle}, moved);
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(Dump(*restored), expected);
}

void StateFixture::RescaleCase(Kind from, Kind to, int new_parallelism) {
  std::vector<proto::KeyedStateHandle> handles;
  Contents expected;
  {
    std::vector<std::unique_ptr<SnapshottableBackend>> old;
    std::vector<KeyGroupRange> ranges;
    for (int i = 0; i < 2; ++i) {
      ranges.push_back(KeyGroupRangeFor(i, kMaxParallelism, 2));
      old.push_back(MustOpen(from, Local("old-" + std::to_string(i)), ranges.back()));
      ASSERT_NE(old.back(), nullptr);
    }
    Fill({old[0].get(), old[1].get()}, ranges, 0, 6000, "v", &expected);
    std::set<int> groups;
    for (const auto& [k, v] : expected) groups.insert(std::stoi(k.substr(0, k.find(':'))));
    ASSERT_EQ(groups.size(), static_cast<size_t>(kMaxParallelism));
    for (int i = 0; i < 2; ++i) {
      handles.push_back(Checkpoint(*old[i], 5, "chk-5/op-" + std::to_string(i)));
    }
  }
  Contents seen;
  for (int i = 0; i < new_parallelism; ++i) {
    const KeyGroupRange r = KeyGroupRangeFor(i, kMaxParallelism, new_parallelism);
    auto b = MustOpen(to, Local("new-" + std::to_string(i)), r, handles);
    ASSERT_NE(b, nullptr);
    Contents got = Dump(*b);
    EXPECT_EQ(got, InRange(expected, r)) << "subtask " << i << " of " << new_parallelism;
    seen.insert(got.begin(), got.end());
    // Point reads work too (RocksDB: a range cut out of a bigger DB is really gone).
    std::string v;
    for (int k = 0; k < 6000; k += 97) {
      const std::string key = Key(k);
      const int kg = KeyGroupOfKey(key);
      EXPECT_EQ(b->Get(kg, key, &v), r.Contains(kg)) << key;
    }
    // And a snapshot of the rescaled backend restores to the same contents.
    auto handle = Checkpoint(*b, 6, "chk-6/new-" + std::to_string(i));
    EXPECT_EQ(handle.key_group_first(), r.first);
    EXPECT_EQ(handle.key_group_last(), r.last);
    auto again = MustOpen(to, Local("again-" + std::to_string(i)), r, {handle});
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(Dump(*again), got);
  }
  EXPECT_EQ(seen, expected);
}

TEST_P(StateTest, RescaleUpTo3) {
  RescaleCase(GetParam(), GetParam(), 3);
}
TEST_P(StateTest, RescaleDownTo1) {
  RescaleCase(GetParam(), GetParam(), 1);
}
TEST_P(StateTest, SameParallelism) {
  RescaleCase(GetParam(), GetParam(), 2);
}
TEST_P(StateTest, ScaleOutTo4) {
  RescaleCase(GetParam(), GetParam(), 4);
}
TEST_P(StateTest, SwitchBackendSameParallelism) {
  RescaleCase(GetParam(), Other(GetParam()), 2);
}
TEST_P(StateTest, SwitchBackendRescaled) {
  RescaleCase(GetParam(), Other(GetParam()), 3);
  RescaleCase(GetParam(), Other(GetParam()), 1);
}

// One handle of kind `GetParam()` with some state, for the error tests.
class StateErrorTest : public StateTest {
 protected:
  void SetUp() override {
    StateTest::SetUp();
    auto b = MustOpen(GetParam(), Local("src"), kAll);
    ASSERT_NE(b, nullptr);
    Contents ignored;
    Fill({b.get()}, {kAll}, 0, 5000, "value-with-some-bytes-in-it", &ignored);
    handle_ = Checkpoint(*b, 1, "chk-1/op-0");
    ASSERT_GT(handle_.files_size(), 0);
  }

  std::string PathOf(const proto::StateFile& f) const {
    return (fs::path(root_) / f.path()).string();
  }
  const proto::StateFile& Find(const std::string& suffix) const {
    for (const auto& f : handle_.files()) {
      if (f.local_name().ends_with(suffix) || f.local_name().starts_with(suffix)) return f;
    }
    ADD_FAILURE() << "no file " << suffix;
    return handle_.files(0);
  }
  // The biggest file: for RocksDB an SST, for the heap backend its only file.
  const proto::StateFile& Biggest() const {
    const proto::StateFile* best = &handle_.files(0);
    for (const auto& f : handle_.files()) {
      if (f.size() > best->size()) best = &f;
    }
    return *best;
  }

  // Restoring must fail, naming `path`, in every way the handle can be read: same range and a
  // sub-range (RocksDB: the files become the DB), merged with another handle (entries read; the
  // same handle twice is enough to take that path), and into the other backend.
  void ExpectRestoreFails(const std::string& path) {
    int n = 0;
    for (Kind kind : {GetParam(), Other(GetParam())}) {
      for (int variant = 0; variant < 3; ++variant) {
        const KeyGroupRange r = variant == 1 ? KeyGroupRange{0, 63} : kAll;
        std::vector<proto::KeyedStateHandle> restore = {handle_};
        if (variant == 2) restore.push_back(handle_);
        auto b = Open(kind, Local("dst-" + std::to_string(n++)), r, restore);
        ASSERT_FALSE(b.ok()) << KindName(kind) << " restored a damaged snapshot";
        EXPECT_THAT(b.status().message(), HasSubstr(path)) << b.status().ToString();
        if (getenv("STATE_TEST_VERBOSE")) std::cerr << b.status().ToString() << "\n";
      }
    }
  }

  static void FlipByte(const std::string& path, uint64_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x40);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
  }

  proto::KeyedStateHandle handle_;
};

TEST_P(StateErrorTest, MissingFile) {
  const std::string path = PathOf(Biggest());
  fs::remove(path);
  ExpectRestoreFails(path);
}

TEST_P(StateErrorTest, TruncatedFile) {
  const std::string path = PathOf(Biggest());
  fs::resize_file(path, Biggest().size() / 2);
  ExpectRestoreFails(path);
}

TEST_P(StateErrorTest, TruncatedFileWithSizeRecordedToMatch) {
  // Also when the handle agrees with the truncated size (the file's own structure is checked).
  const std::string path = PathOf(Biggest());
  const uint64_t half = Biggest().size() / 2;
  fs::resize_file(path, half);
  for (auto& f : *handle_.mutable_files()) {
    if (PathOf(f) == path) f.set_size(half);
  }
  ExpectRestoreFails(path);
}

TEST_P(StateErrorTest, FlippedByteInTheMiddle) {
  const std::string path = PathOf(Biggest());
  FlipByte(path, Biggest().size() / 2);
  ExpectRestoreFails(path);
}

TEST_P(StateErrorTest, FlippedFirstByte) {
  // Heap: the magic. RocksDB: the first data block of the SST.
  const std::string path = PathOf(Biggest());
  FlipByte(path, 0);
  ExpectRestoreFails(path);
}

TEST_P(StateErrorTest, FlippedLastByte) {
  const std::string path = PathOf(Biggest());
  FlipByte(path, Biggest().size() - 1);
  ExpectRestoreFails(path);
}

TEST_P(StateErrorTest, CorruptManifest) {
  if (GetParam() != Kind::kRocksDb) GTEST_SKIP() << "RocksDB only";
  const proto::StateFile& manifest = Find("MANIFEST-");
  const std::string path = PathOf(manifest);
  FlipByte(path, manifest.size() / 2);
  ExpectRestoreFails(path);
}

TEST_P(StateErrorTest, BadHandles) {
  proto::KeyedStateHandle h = handle_;
  h.set_backend("leveldb");
  auto b = Open(GetParam(), Local("d1"), kAll, {h});
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("leveldb"));
  h = handle_;
  h.mutable_files(0)->set_path("../../etc/passwd");
  b = Open(GetParam(), Local("d2"), kAll, {h});
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("../../etc/passwd"));
  h = handle_;
  h.mutable_files(0)->set_local_name("a/b");
  EXPECT_FALSE(Open(GetParam(), Local("d3"), kAll, {h}).ok());
  // A handle outside our range is not even read.
  h = handle_;
  h.set_key_group_first(200);
  h.set_key_group_last(210);
  fs::remove_all(root_);
  auto ok = Open(GetParam(), Local("d4"), kAll, {h});
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(StateOptionsTest, BadOptions) {
  BackendOptions o;
  o.key_groups = kAll;
  EXPECT_FALSE(OpenHeapBackend(o, {}, "").ok());  // no local dir
  o.local_dir = "/tmp/weir-state-test-bad-options-" + std::to_string(getpid());
  o.key_groups = {0, 128};
  EXPECT_FALSE(OpenRocksDbBackend(o, {}, "").ok());
  o.key_groups = {5, 4};
  EXPECT_FALSE(OpenHeapBackend(o, {}, "").ok());
  EXPECT_FALSE(fs::exists(o.local_dir));
}

// RocksDB: incremental checkpoints upload each SST once.
class RocksDbIncrementalTest : public StateFixture {};

TEST_F(RocksDbIncrementalTest, SecondCheckpointUploadsOnlyNewFiles) {
  Contents expected;
  auto b = MustOpen(Kind::kRocksDb, Local("a"), kAll);
  ASSERT_NE(b, nullptr);
  Fill({b.get()}, {kAll}, 0, 20000, "v", &expected);
  proto::KeyedStateHandle first = Checkpoint(*b, 1, "chk-1/op-0");
  Fill({b.get()}, {kAll}, 20000, 21000, "v", &expected);
  proto::KeyedStateHandle second = Checkpoint(*b, 2, "chk-2/op-0");

  std::set<std::string> first_shared;
  for (const auto& f : first.files()) {
    if (f.local_name().ends_with(".sst")) {
      EXPECT_THAT(f.path(), ::testing::StartsWith("shared/"));
      first_shared.insert(f.path());
    } else {
      EXPECT_THAT(f.path(), ::testing::StartsWith("chk-1/op-0/"));
    }
  }
  ASSERT_FALSE(first_shared.empty());
  int reused = 0;
  for (const auto& f : second.files()) {
    if (first_shared.count(f.path()) > 0) ++reused;
  }
  EXPECT_GT(reused, 0);
  EXPECT_LT(second.incremental_size(), second.state_size());
  EXPECT_GT(second.incremental_size(), 0u);
  if (getenv("STATE_TEST_VERBOSE")) std::cerr << first.DebugString() << second.DebugString();

  // Nothing changed: only the small per-checkpoint files are copied.
  proto::KeyedStateHandle third = Checkpoint(*b, 3, "chk-3/op-0");
  uint64_t shared_bytes = 0;
  for (const auto& f : third.files()) {
    if (f.path().starts_with("shared/")) shared_bytes += f.size();
  }
  EXPECT_EQ(third.incremental_size(), third.state_size() - shared_bytes);

  // Each checkpoint restores on its own (the first one as it was).
  auto r2 = MustOpen(Kind::kRocksDb, Local("r2"), kAll, {second});
  ASSERT_NE(r2, nullptr);
  EXPECT_EQ(Dump(*r2), expected);
  auto r1 = MustOpen(Kind::kRocksDb, Local("r1"), kAll, {first});
  ASSERT_NE(r1, nullptr);
  EXPECT_EQ(Dump(*r1).size(), 20000u);
}

TEST_F(RocksDbIncrementalTest, RestoredBackendReusesSharedFiles) {
  Contents expected;
  proto::KeyedStateHandle first;
  {
    auto b = MustOpen(Kind::kRocksDb, Local("a"), kAll);
    ASSERT_NE(b, nullptr);
    Fill({b.get()}, {kAll}, 0, 20000, "v", &expected);
    first = Checkpoint(*b, 1, "chk-1/op-0");
  }
  auto b = MustOpen(Kind::kRocksDb, Local("b"), kAll, {first});
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->Put(0, "one more", "x").ok());
  proto::KeyedStateHandle second = Checkpoint(*b, 2, "chk-2/op-0");
  std::set<std::string> first_paths;
  for (const auto& f : first.files()) first_paths.insert(f.path());
  uint64_t reused = 0;
  for (const auto& f : second.files()) {
    if (first_paths.count(f.path()) > 0) reused += f.size();
  }
  EXPECT_GT(reused, 0u);
  EXPECT_EQ(second.incremental_size() + reused, second.state_size());
  // A different storage root (another job) gets its own copies.
  const std::string other_root = (dir_ / "checkpoints" / "job2").string();
  proto::KeyedStateHandle third = Checkpoint(*b, 3, "chk-3/op-0", true, other_root);
  EXPECT_EQ(third.incremental_size(), third.state_size());
}

TEST_F(RocksDbIncrementalTest, SnapshotIdInUse) {
  auto b = MustOpen(Kind::kRocksDb, Local("a"), kAll);
  ASSERT_NE(b, nullptr);
  auto u1 = b->Snapshot(1);
  ASSERT_TRUE(u1.ok());
  EXPECT_EQ(b->Snapshot(1).status().code(), StatusCode::kFailedPrecondition);
  auto u2 = b->Snapshot(2);  // concurrent snapshots are fine
  ASSERT_TRUE(u2.ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, StateTest,
                         ::testing::Values(Kind::kRocksDb, Kind::kHeap, Kind::kCachedRocksDb),
                         [](const auto& info) { return KindName(info.param); });
INSTANTIATE_TEST_SUITE_P(Backends, StateErrorTest, ::testing::Values(Kind::kRocksDb, Kind::kHeap),
                         [](const auto& info) { return KindName(info.param); });

}  // namespace
}  // namespace weir::state
