// The write-back cache in front of RocksDB (state/include/weir/state/caching_backend.h): hits
// stay in memory, the bound holds, evictions and snapshots write dirty entries back in batches,
// and scans, prefix deletes, appends and uncached keys see exactly what they would without it.
#include "weir/state/caching_backend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "weir/key_groups.h"
#include "weir/state/backend.h"
#include "weir/state/typed_state.h"

namespace weir::state {
namespace {

namespace fs = std::filesystem;

class CachingBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("weir-cache-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<SnapshottableBackend> Open(
      size_t cache, const std::string& name,
      const std::vector<proto::KeyedStateHandle>& restore = {}) {
    BackendOptions o;
    o.local_dir = (dir_ / name).string();
    o.max_parallelism = 128;
    o.key_groups = {0, 127};
    auto b = OpenRocksDbBackend(o, restore, (dir_ / "chk").string());
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    auto c = NewCachingBackend(std::move(b).value(), cache);
    c->HintPointLookups('v');  // "v..." keys are cached; "m..." keys are not
    return c;
  }
  static CacheStats Stats(const SnapshottableBackend& b) {
    CacheStats s;
    EXPECT_TRUE(GetCacheStats(b, &s));
    return s;
  }
  static std::map<std::string, std::string> Dump(SnapshottableBackend& b) {
    std::map<std::string, std::string> out;
    EXPECT_TRUE(b.ForEach([&](int kg, std::string_view k, std::string_view v) {
                   out[std::to_string(kg) + ":" + std::string(k)] = std::string(v);
                   return Status::Ok();
                 }).ok());
    return out;
  }
  proto::KeyedStateHandle Checkpoint(SnapshottableBackend& b, int64_t id) {
    auto up = b.Snapshot(id);
    EXPECT_TRUE(up.ok()) << up.status().ToString();
    auto h = (*up)->Upload({(dir_ / "chk").string(), "chk-" + std::to_string(id), true});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return *h;
  }

  fs::path dir_;
};

TEST_F(CachingBackendTest, HotKeysAreServedFromMemory) {
  auto b = Open(1 << 20, "a");
  std::string v;
  EXPECT_FALSE(b->Get(3, "v1", &v));  // a miss, remembered as absent
  EXPECT_FALSE(b->Get(3, "v1", &v));  // a hit
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(b->Put(3, "v1", std::to_string(i)).ok());
    ASSERT_TRUE(b->Get(3, "v1", &v));
  }
  EXPECT_EQ(v, "99");
  CacheStats s = Stats(*b);
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.hits, 101);
  EXPECT_EQ(s.entries, 1);
  EXPECT_EQ(s.dirty, 1);
  EXPECT_EQ(s.flushes, 0);  // nothing written yet
  ASSERT_TRUE(b->Delete(3, "v1").ok());
  EXPECT_FALSE(b->Get(3, "v1", &v));
}

TEST_F(CachingBackendTest, TheBoundHoldsAndEvictedWritesSurvive) {
  auto b = Open(64 << 10, "a");
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(
        b->Put(i % 128, "v" + std::to_string(i), std::string(20, 'x') + std::to_string(i)).ok());
    ASSERT_LE(Stats(*b).bytes, 64 << 10);
  }
  CacheStats s = Stats(*b);
  EXPECT_GT(s.evictions, 15000);
  EXPECT_GT(s.flushes, 10);
  EXPECT_LT(s.flushes, 2000);  // batches, not a write per key
  std::string v;
  for (int i = 0; i < 20000; i += 997) {
    ASSERT_TRUE(b->Get(i % 128, "v" + std::to_string(i), &v)) << i;
    EXPECT_EQ(v, std::string(20, 'x') + std::to_string(i));
  }
  EXPECT_EQ(Dump(*b).size(), 20000u);
}

TEST_F(CachingBackendTest, SnapshotHoldsDirtyEntriesAndRestores) {
  std::vector<proto::KeyedStateHandle> handles;
  {
    auto b = Open(1 << 20, "a");
    ASSERT_TRUE(b->Put(1, "v-a", "1").ok());
    ASSERT_TRUE(b->Put(2, "v-b", "2").ok());
    ASSERT_TRUE(b->Put(2, "m-uncached", "3").ok());
    ASSERT_TRUE(b->Delete(1, "v-a").ok());
    ASSERT_TRUE(b->Put(5, "v-c", "5").ok());
    EXPECT_EQ(Stats(*b).dirty, 3);
    handles.push_back(Checkpoint(*b, 1));
    EXPECT_EQ(Stats(*b).dirty, 0);
    // After the snapshot: not in it.
    ASSERT_TRUE(b->Put(5, "v-c", "late").ok());
  }
  auto r = Open(1 << 20, "b", handles);
  std::map<std::string, std::string> want = {{"2:v-b", "2"}, {"2:m-uncached", "3"}, {"5:v-c", "5"}};
  EXPECT_EQ(Dump(*r), want);
}

TEST_F(CachingBackendTest, ScansPrefixDeletesAndAppendsSeeThroughTheCache) {
  auto b = Open(1 << 20, "a");
  ASSERT_TRUE(b->Put(7, "v/1", "a").ok());
  ASSERT_TRUE(b->Put(7, "v/2", "b").ok());
  ASSERT_TRUE(b->Put(7, "w/1", "c").ok());  // 'w' is not cacheable
  // A scan sees the dirty entries.
  int n = 0;
  for (auto it = b->Scan({7, 7}, "v/"); it->Valid(); it->Next()) ++n;
  EXPECT_EQ(n, 2);
  // Append to a cached key extends the cached value; to an uncached one goes through.
  ASSERT_TRUE(b->Append(7, "v/1", "+").ok());
  ASSERT_TRUE(b->Append(7, "m/1", "x").ok());
  ASSERT_TRUE(b->Append(7, "m/1", "y").ok());
  std::string v;
  ASSERT_TRUE(b->Get(7, "v/1", &v));
  EXPECT_EQ(v, "a+");
  ASSERT_TRUE(b->Get(7, "m/1", &v));
  EXPECT_EQ(v, "xy");
  // A prefix delete drops cached and stored entries alike.
  ASSERT_TRUE(b->Put(7, "v/3", "d").ok());
  ASSERT_TRUE(b->DeletePrefix(7, "v/").ok());
  EXPECT_FALSE(b->Get(7, "v/1", &v));
  EXPECT_FALSE(b->Get(7, "v/3", &v));
  ASSERT_TRUE(b->Get(7, "w/1", &v));
  std::map<std::string, std::string> want = {{"7:w/1", "c"}, {"7:m/1", "xy"}};
  EXPECT_EQ(Dump(*b), want);
}

// Map states: entries per key ("v/<key>/<map key>"), a scan of one key after writes, and a
// clear of one key (a prefix delete) that drops that key's cached entries, in any key group,
// and leaves every other key's cached and dirty entries as they were.
TEST_F(CachingBackendTest, PerKeyScansAndClearsLeaveOtherKeysCached) {
  auto b = Open(1 << 20, "a");
  for (int k = 0; k < 50; ++k) {
    for (int m = 0; m < 4; ++m) {
      const std::string key = "v/" + std::to_string(k) + "/" + std::to_string(m);
      ASSERT_TRUE(b->Put(k % 3, key, std::to_string(k * 10 + m)).ok());
    }
  }
  EXPECT_EQ(Stats(*b).dirty, 200);
  // A scan of one key writes the dirty entries through first, and sees them.
  int n = 0;
  for (auto it = b->Scan({1, 1}, "v/7/"); it->Valid(); it->Next()) ++n;
  EXPECT_EQ(n, 4);
  EXPECT_EQ(Stats(*b).dirty, 0);
  EXPECT_EQ(Stats(*b).flushes, 1);
  // Only key 7 is cleared: not "v/70/0", which sorts right after it in the same key group.
  ASSERT_TRUE(b->Put(1, "v/70/0", "new").ok());
  ASSERT_TRUE(b->Put(1, "v/7/9", "dirty before the clear").ok());
  const int64_t entries = Stats(*b).entries;
  ASSERT_TRUE(b->DeletePrefix(1, "v/7/").ok());
  EXPECT_EQ(Stats(*b).entries, entries - 5);
  std::string v;
  for (int m : {0, 1, 2, 3, 9}) EXPECT_FALSE(b->Get(1, "v/7/" + std::to_string(m), &v)) << m;
  ASSERT_TRUE(b->Get(1, "v/70/0", &v));
  EXPECT_EQ(v, "new");
  ASSERT_TRUE(b->Get(1, "v/1/3", &v));
  EXPECT_EQ(v, "13");
  const CacheStats s = Stats(*b);
  EXPECT_EQ(s.misses, 5);  // the cleared key's entries only; the rest were served from memory
  // The clear wrote the dirty entries first; later ones are written at the next snapshot.
  ASSERT_TRUE(b->Put(0, "v/3/0", "changed").ok());
  EXPECT_EQ(Stats(*b).dirty, 1);
  auto r = Open(1 << 20, "b", {Checkpoint(*b, 1)});
  const auto dump = Dump(*r);
  EXPECT_EQ(dump.size(), 197u);  // 200, less key 7's four, plus v/70/0
  EXPECT_EQ(dump.at("0:v/3/0"), "changed");
  EXPECT_EQ(dump.at("1:v/70/0"), "new");
  EXPECT_EQ(dump.count("1:v/7/0"), 0u);
  EXPECT_EQ(dump.count("1:v/7/9"), 0u);
}

// Typed map states are cached unless registered kUncached (count_distinct's value sets).
TEST_F(CachingBackendTest, UncachedMapStatesGoStraightToTheBackend) {
  auto c = Open(1 << 20, "a");
  SnapshottableBackend* cache = c.get();
  auto store = KeyedStateStore::Create(std::move(c), {0, 127});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto cached = (*store)->GetMapState("windows");
  auto uncached = (*store)->GetMapState("distinct", 1, KeyedStateStore::Caching::kUncached);
  ASSERT_TRUE(cached.ok() && uncached.ok());
  const std::string key = "auction-7";
  ASSERT_TRUE((*store)->SetCurrentKey(KeyGroupForHash(StableHash(key), 128), key).ok());
  const int64_t before = Stats(*cache).entries;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(uncached->Put("v" + std::to_string(i), "").ok());
  EXPECT_EQ(Stats(*cache).entries, before);
  EXPECT_TRUE(uncached->Contains("v3"));
  EXPECT_EQ(Stats(*cache).entries, before);
  ASSERT_TRUE(cached->Put("w1", "acc").ok());
  EXPECT_EQ(Stats(*cache).entries, before + 1);
  std::string v;
  EXPECT_TRUE(cached->Get("w1", &v));
  EXPECT_EQ(v, "acc");
  int n = 0;
  for (auto it = uncached->Iterate(); it.Valid(); it.Next()) ++n;
  EXPECT_EQ(n, 10);
}

// Keys spread far wider than the cache stop being admitted once the full cache hits almost
// nothing; hot keys bring admission back at a probe window; values are right throughout.
TEST_F(CachingBackendTest, ThrashingTurnsAdmissionOffAndHotKeysTurnItOn) {
  auto b = Open(64 << 10, "a");
  std::string v;
  auto rmw = [&](const std::string& key) {
    int64_t n = 0;
    if (b->Get(1, key, &v)) n = std::stoll(v);
    ASSERT_TRUE(b->Put(1, key, std::to_string(n + 1)).ok());
  };
  for (int i = 0; i < 3 * 65536; ++i) rmw("v" + std::to_string(i));  // never seen twice
  CacheStats s = Stats(*b);
  EXPECT_FALSE(s.admitting);
  EXPECT_LE(s.bytes, 64 << 10);
  for (int i = 0; i < 18 * 65536; ++i) rmw("v-hot-" + std::to_string(i % 10));
  s = Stats(*b);
  EXPECT_TRUE(s.admitting);
  for (int k = 0; k < 10; ++k) {
    ASSERT_TRUE(b->Get(1, "v-hot-" + std::to_string(k), &v));
    EXPECT_EQ(v, std::to_string(18 * 65536 / 10 + (k < 18 * 65536 % 10 ? 1 : 0)));
  }
  ASSERT_TRUE(b->Get(1, "v12345", &v));
  EXPECT_EQ(v, "1");
}

TEST_F(CachingBackendTest, ZeroCapacityIsNoCache) {
  BackendOptions o;
  o.local_dir = (dir_ / "z").string();
  o.key_groups = {0, 127};
  auto b = OpenRocksDbBackend(o, {}, (dir_ / "chk").string());
  ASSERT_TRUE(b.ok());
  auto* raw = b.value().get();
  auto c = NewCachingBackend(std::move(b).value(), 0);
  EXPECT_EQ(c.get(), raw);
  CacheStats s;
  EXPECT_FALSE(GetCacheStats(*c, &s));
}

}  // namespace
}  // namespace weir::state
