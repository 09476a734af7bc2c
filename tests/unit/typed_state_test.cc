// Typed keyed state (value, list, map, reducing, aggregating) and timers over both backends:
// round trips, map isolation between keys, checkpoint/restore, restore by key-group range
// (rescale), the name table, and the timer service.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "weir/key_groups.h"
#include "weir/state/backend.h"
#include "weir/state/typed_state.h"

namespace weir::state {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kMaxParallelism = 128;
const KeyGroupRange kAll{0, kMaxParallelism - 1};

enum class Kind { kRocksDb, kHeap };
std::string KindName(Kind k) { return k == Kind::kRocksDb ? "RocksDb" : "Heap"; }
Kind Other(Kind k) { return k == Kind::kRocksDb ? Kind::kHeap : Kind::kRocksDb; }

std::string Key(int i) { return "k" + std::to_string(i); }
int GroupOf(std::string_view key) { return KeyGroupForHash(StableHash(key), kMaxParallelism); }

class TypedStateTest : public ::testing::TestWithParam<Kind> {
 public:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = fs::temp_directory_path() / ("weir-typed-state-test-" + std::to_string(getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    root_ = (dir_ / "checkpoints").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<std::unique_ptr<KeyedStateStore>> Open(Kind kind, KeyGroupRange range,
                                                const std::vector<proto::KeyedStateHandle>& restore = {}) {
    BackendOptions o;
    o.local_dir = (dir_ / "local" / std::to_string(next_local_++)).string();
    o.max_parallelism = kMaxParallelism;
    o.key_groups = range;
    std::unique_ptr<SnapshottableBackend> backend;
    if (kind == Kind::kRocksDb) {
      WEIR_ASSIGN_OR_RETURN(backend, OpenRocksDbBackend(o, restore, root_));
    } else {
      WEIR_ASSIGN_OR_RETURN(backend, OpenHeapBackend(o, restore, root_));
    }
    return KeyedStateStore::Create(std::move(backend), range);
  }
  std::unique_ptr<KeyedStateStore> MustOpen(Kind kind, KeyGroupRange range,
                                            const std::vector<proto::KeyedStateHandle>& restore = {}) {
    auto s = Open(kind, range, restore);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  proto::KeyedStateHandle Checkpoint(KeyedStateStore& s, int64_t id) {
    auto upload = s.Snapshot(id);
    EXPECT_TRUE(upload.ok()) << upload.status().ToString();
    if (!upload.ok()) return {};
    auto handle = (*upload)->Upload({root_, "chk-" + std::to_string(id) + "/op-" +
                                                std::to_string(next_excl_++), true});
    EXPECT_TRUE(handle.ok()) << handle.status().ToString();
    return handle.ok() ? *handle : proto::KeyedStateHandle{};
  }

  fs::path dir_;
  std::string root_;
  int next_local_ = 0;
  int next_excl_ = 0;
};

void SetKey(KeyedStateStore& s, const std::string& key) {
  ASSERT_TRUE(s.SetCurrentKey(GroupOf(key), key).ok());
}

std::string Get(const ValueState& v) {
  std::string out;
  return v.Get(&out) ? out : "<none>";
}

std::map<std::string, std::string> MapContents(const MapState& m) {
  std::map<std::string, std::string> out;
  auto it = m.Iterate();
  std::string prev;
  bool first = true;
  for (; it.Valid(); it.Next()) {
    const std::string k(it.user_key());
    EXPECT_TRUE(first || prev < k) << "not in order: " << prev << " then " << k;
    first = false;
    prev = k;
    out[k] = std::string(it.value());
  }
  EXPECT_TRUE(it.status().ok()) << it.status().ToString();
  return out;
}

std::vector<std::string> ListContents(const ListState& l) {
  std::vector<std::string> out;
  Status st = l.Get(&out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST_P(TypedStateTest, ValueStateRoundTripAndKeyIsolation) {
  auto s = MustOpen(GetParam(), kAll);
  ASSERT_NE(s, nullptr);
  auto v = s->GetValueState("v");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto other = s->GetValueState("other");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(v->id(), other->id());
  SetKey(*s, "k1");
  EXPECT_EQ(Get(*v), "<none>");
  ASSERT_TRUE(v->Put("one").ok());
  ASSERT_TRUE(other->Put("not v").ok());
  SetKey(*s, "k2");
  EXPECT_EQ(Get(*v), "<none>");
  ASSERT_TRUE(v->Put(std::string("\0two\xff", 5)).ok());
  SetKey(*s, "k1");
  EXPECT_EQ(Get(*v), "one");
  EXPECT_EQ(Get(*other), "not v");
  ASSERT_TRUE(v->Clear().ok());
  EXPECT_EQ(Get(*v), "<none>");
  EXPECT_EQ(Get(*other), "not v");
  SetKey(*s, "k2");
  EXPECT_EQ(Get(*v), std::string("\0two\xff", 5));
  // The same name again is the same state.
  auto again = s->GetValueState("v");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id(), v->id());
  EXPECT_EQ(Get(*again), std::string("\0two\xff", 5));

  // Typed access.
  ASSERT_TRUE(v->PutAs<int64_t>(-42).ok());
  auto i = v->GetAs<int64_t>();
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(**i, -42);
  ASSERT_TRUE(v->PutAs<double>(2.5).ok());
  EXPECT_EQ(**v->GetAs<double>(), 2.5);
  ASSERT_TRUE(v->PutAs<std::string>("s").ok());
  EXPECT_EQ(**v->GetAs<std::string>(), "s");
  // Wrong width for an int64: an error, not garbage.
  EXPECT_EQ(v->GetAs<int64_t>().status().code(), StatusCode::kDataLoss);
  for (const Value& x : {Value(), Value::Bool(true), Value::Int64(7), Value::Double(-0.5),
                         Value::String("str"), Value::Bytes(std::string("\0b", 2)),
                         Value::Timestamp(1700000000000)}) {
    ASSERT_TRUE(v->PutAs<Value>(x).ok());
    auto got = v->GetAs<Value>();
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(**got, x) << x.ToString();
  }
  SetKey(*s, "never");
  EXPECT_FALSE(v->GetAs<int64_t>()->has_value());

  // Every key of the state, and only of this state.
  std::map<std::string, std::string> all;
  ASSERT_TRUE(v->ForEachKey([&](int kg, std::string_view key, std::string_view value) {
                 EXPECT_EQ(kg, GroupOf(key));
                 all[std::string(key)] = std::string(value);
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(all.size(), 1u);
  EXPECT_EQ(all.count("k2"), 1u);
}

TEST_P(TypedStateTest, ListState) {
  auto s = MustOpen(GetParam(), kAll);
  ASSERT_NE(s, nullptr);
  auto l = s->GetListState("l");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  SetKey(*s, "a");
  EXPECT_TRUE(l->IsEmpty());
  EXPECT_TRUE(ListContents(*l).empty());
  ASSERT_TRUE(l->Add("x").ok());
  ASSERT_TRUE(l->Add("").ok());
  ASSERT_TRUE(l->Add(std::string(300, 'y')).ok());  // a two-byte length
  ASSERT_TRUE(l->AddAll({"p", "q"}).ok());
  ASSERT_TRUE(l->AddAs<int64_t>(5).ok());
  SetKey(*s, "b");
  ASSERT_TRUE(l->Add("other key").ok());
  SetKey(*s, "a");
  std::string five;
  Codec<int64_t>::Encode(5, &five);
  EXPECT_THAT(ListContents(*l), ElementsAre("x", "", std::string(300, 'y'), "p", "q", five));
  EXPECT_FALSE(l->IsEmpty());
  ASSERT_TRUE(l->Update({"only"}).ok());
  ASSERT_TRUE(l->Add("then").ok());
  EXPECT_THAT(ListContents(*l), ElementsAre("only", "then"));
  ASSERT_TRUE(l->Clear().ok());
  EXPECT_TRUE(l->IsEmpty());
  ASSERT_TRUE(l->Add("after clear").ok());
  EXPECT_THAT(ListContents(*l), ElementsAre("after clear"));
  SetKey(*s, "b");
  EXPECT_THAT(ListContents(*l), ElementsAre("other key"));
  ASSERT_TRUE(l->Update({}).ok());
  EXPECT_TRUE(l->IsEmpty());
}

TEST_P(TypedStateTest, MapStateIsolationBetweenKeysThatArePrefixesOfEachOther) {
  auto s = MustOpen(GetParam(), kAll);
  ASSERT_NE(s, nullptr);
  auto m = s->GetMapState("m");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto m2 = s->GetMapState("m2");
  ASSERT_TRUE(m2.ok());
  // Keys that are prefixes of each other, a key that is empty, a key ending in 0x00 / 0xff, and
  // keys of the same key group (a key group holds many keys).
  const std::vector<std::string> keys = {"a", "ab", "abc", "", std::string("a\0", 2),
                                         std::string("a\xff", 2), "b"};
  // Same-group keys: every key's entries are distinct even when their groups match.
  std::map<std::string, std::map<std::string, std::string>> expected;
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(s->SetCurrentKey(7, keys[i]).ok());  // all in one key group on purpose
    for (size_t j = 0; j <= i; ++j) {
      const std::string uk = j == 0 ? "" : keys[j] + "#" + std::to_string(j);
      const std::string val = "v" + std::to_string(i) + "." + std::to_string(j);
      ASSERT_TRUE(m->Put(uk, val).ok());
      expected[keys[i]][uk] = val;
    }
    ASSERT_TRUE(m2->Put("same user key", "in m2").ok());
  }
  for (const auto& k : keys) {
    ASSERT_TRUE(s->SetCurrentKey(7, k).ok());
    EXPECT_EQ(MapContents(*m), expected[k]) << "key '" << k << "'";
    EXPECT_EQ(MapContents(*m2).size(), 1u);
  }
  ASSERT_TRUE(s->SetCurrentKey(8, "a").ok());  // same key, other group: its own map
  EXPECT_TRUE(m->IsEmpty());

  ASSERT_TRUE(s->SetCurrentKey(7, "ab").ok());
  std::string v;
  EXPECT_TRUE(m->Contains("ab#1"));
  EXPECT_TRUE(m->Get("ab#1", &v));
  EXPECT_EQ(v, "v1.1");
  EXPECT_FALSE(m->Contains("abc#2"));  // key "abc"'s entry
  ASSERT_TRUE(m->Remove("ab#1").ok());
  EXPECT_FALSE(m->Contains("ab#1"));
  expected["ab"].erase("ab#1");
  ASSERT_TRUE(m->Put("", "overwritten").ok());
  expected["ab"][""] = "overwritten";
  EXPECT_EQ(MapContents(*m), expected["ab"]);

  // Removing entries while iterating.
  ASSERT_TRUE(s->SetCurrentKey(7, "b").ok());
  {
    auto it = m->Iterate();
    int n = 0;
    for (; it.Valid(); it.Next()) {
      ASSERT_TRUE(m->Remove(std::string(it.user_key())).ok());
      ++n;
    }
    EXPECT_EQ(n, static_cast<int>(expected["b"].size()));
  }
  EXPECT_TRUE(m->IsEmpty());
  expected["b"].clear();

  // RemovePrefix takes exactly this key's entries with that prefix: "abc" has "ab#1" and
  // "abc#2" (and ""); "ab" removes both, and no other key's.
  ASSERT_TRUE(s->SetCurrentKey(7, "abc").ok());
  ASSERT_TRUE(m->RemovePrefix("ab").ok());
  expected["abc"].erase("ab#1");
  expected["abc"].erase("abc#2");
  EXPECT_EQ(MapContents(*m), expected["abc"]);
  ASSERT_EQ(expected["abc"].size(), 1u);
  for (const auto& k : keys) {
    ASSERT_TRUE(s->SetCurrentKey(7, k).ok());
    EXPECT_EQ(MapContents(*m), expected[k]) << "key '" << k << "'";
  }

  // Clear takes exactly this key's entries.
  ASSERT_TRUE(s->SetCurrentKey(7, "a").ok());
  ASSERT_TRUE(m->Clear().ok());
  EXPECT_TRUE(m->IsEmpty());
  expected["a"].clear();
  for (const auto& k : keys) {
    ASSERT_TRUE(s->SetCurrentKey(7, k).ok());
    EXPECT_EQ(MapContents(*m), expected[k]) << "key '" << k << "'";
    EXPECT_EQ(MapContents(*m2).size(), 1u) << "key '" << k << "'";
  }

  // All entries of all keys.
  std::map<std::string, std::map<std::string, std::string>> all;
  ASSERT_TRUE(m->ForEachEntry([&](int kg, std::string_view key, std::string_view uk,
                                  std::string_view value) {
                 EXPECT_EQ(kg, 7);
                 all[std::string(key)][std::string(uk)] = std::string(value);
                 return Status::Ok();
               }).ok());
  for (auto it = expected.begin(); it != expected.end();) {
    it = it->second.empty() ? expected.erase(it) : std::next(it);
  }
  EXPECT_EQ(all, expected);
}

TEST_P(TypedStateTest, ReducingAndAggregatingState) {
  auto s = MustOpen(GetParam(), kAll);
  ASSERT_NE(s, nullptr);
  auto sum = s->GetReducingState("sum", TypedReduce<int64_t>([](const int64_t& a, const int64_t& b) {
                                   return a + b;
                                 }));
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  auto concat = s->GetReducingState("concat", [](std::string_view a, std::string_view b,
                                                 std::string* out) {
    out->assign(a);
    out->append("|");
    out->append(b);
    return Status::Ok();
  });
  ASSERT_TRUE(concat.ok());

  // count and max of int64 inputs, accumulator "count,max" as text.
  class CountMax : public AggregateFunction<int64_t> {
   public:
    Status Add(const int64_t& in, bool present, std::string* acc) override {
      long long n = 0, mx = in;
      if (present && sscanf(acc->c_str(), "%lld,%lld", &n, &mx) != 2) {
        return Status::DataLoss("bad acc");
      }
      if (!present) mx = in;
      *acc = std::to_string(n + 1) + "," + std::to_string(std::max<long long>(mx, in));
      return Status::Ok();
    }
  } fn;
  auto agg = s->GetAggregatingState<int64_t>("agg", &fn);
  ASSERT_TRUE(agg.ok());

  for (int i = 1; i <= 10; ++i) {
    SetKey(*s, i % 2 == 0 ? "even" : "odd");
    ASSERT_TRUE(sum->AddAs<int64_t>(i).ok());
    ASSERT_TRUE(concat->Add(std::to_string(i)).ok());
    ASSERT_TRUE(agg->Add(i).ok());
  }
  SetKey(*s, "even");
  EXPECT_EQ(**sum->GetAs<int64_t>(), 30);
  std::string v;
  ASSERT_TRUE(concat->Get(&v));
  EXPECT_EQ(v, "2|4|6|8|10");
  ASSERT_TRUE(agg->Get(&v));
  EXPECT_EQ(v, "5,10");
  SetKey(*s, "odd");
  EXPECT_EQ(**sum->GetAs<int64_t>(), 25);
  ASSERT_TRUE(agg->Get(&v));
  EXPECT_EQ(v, "5,9");
  ASSERT_TRUE(sum->Clear().ok());
  EXPECT_FALSE(sum->GetAs<int64_t>()->has_value());
  ASSERT_TRUE(agg->Clear().ok());
  EXPECT_FALSE(agg->Get(&v));
  ASSERT_TRUE(agg->Add(3).ok());
  ASSERT_TRUE(agg->Get(&v));
  EXPECT_EQ(v, "1,3");

  // A failing function fails the add and leaves the state as it was.
  auto failing = s->GetReducingState("failing", [](std::string_view, std::string_view, std::string*) {
    return Status::InvalidArgument("no");
  });
  ASSERT_TRUE(failing.ok());
  ASSERT_TRUE(failing->Add("first").ok());  // the first value is stored without the function
  EXPECT_FALSE(failing->Add("second").ok());
  ASSERT_TRUE(failing->Get(&v));
  EXPECT_EQ(v, "first");
}

TEST_P(TypedStateTest, NamesAreCheckedAndReserved) {
  auto s = MustOpen(GetParam(), kAll);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->GetValueState("x").ok());
  auto wrong = s->GetMapState("x");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.status().message(), HasSubstr("'x' is a value state"));
  EXPECT_FALSE(s->GetValueState("").ok());
  EXPECT_FALSE(s->GetValueState(std::string(201, 'n')).ok());
  auto reserved = s->GetListState("_timers/x/event");
  ASSERT_FALSE(reserved.ok());
  EXPECT_THAT(reserved.status().message(), HasSubstr("reserved"));
  EXPECT_FALSE(s->GetReducingState("r", nullptr).ok());
  // Without a current key, writes are errors and reads find nothing.
  auto v = s->GetValueState("y");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Put("z").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get(*v), "<none>");
  // A key group outside the store's range is refused with the reason.
  auto half = MustOpen(GetParam(), {0, 63});
  ASSERT_NE(half, nullptr);
  Status st = half->SetCurrentKey(64, "k");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("hash-partitioned"));
  // At most 250 states.
  auto many = MustOpen(GetParam(), {0, 0});
  ASSERT_NE(many, nullptr);
  for (int i = 0; i < 250; ++i) ASSERT_TRUE(many->GetValueState("s" + std::to_string(i)).ok()) << i;
  EXPECT_EQ(many->GetValueState("one too many").status().code(), StatusCode::kResourceExhausted);
}

// Every kind of state (and a timer service) of one store; Write() fills them for a key, and
// Describe() renders what a key holds, for comparison after restores.
struct AllStates {
  ValueState value;
  ListState list;
  MapState map;
  ReducingState sum;
  AggregatingState<int64_t> agg;
  InternalTimerService* timers = nullptr;
};

class CountAgg : public AggregateFunction<int64_t> {
 public:
  Status Add(const int64_t& in, bool present, std::string* acc) override {
    int64_t n = 0;
    if (present && !Codec<int64_t>::Decode(*acc, &n)) return Status::DataLoss("bad");
    Codec<int64_t>::Encode(n + in, acc);
    return Status::Ok();
  }
};

AllStates Register(KeyedStateStore& s, CountAgg* fn, bool reverse_order = false) {
  AllStates a;
  auto reg = [&](int which) {
    switch (which) {
      case 0: a.value = *s.GetValueState("value"); break;
      case 1: a.list = *s.GetListState("list"); break;
      case 2: a.map = *s.GetMapState("map"); break;
      case 3:
        a.sum = *s.GetReducingState("sum", TypedReduce<int64_t>([](const int64_t& x,
                                                                   const int64_t& y) {
          return x + y;
        }));
        break;
      case 4: a.agg = *s.GetAggregatingState<int64_t>("agg", fn); break;
      case 5: a.timers = *s.GetTimerService("t"); break;
    }
  };
  for (int i = 0; i < 6; ++i) reg(reverse_order ? 5 - i : i);
  return a;
}

void Write(KeyedStateStore& s, AllStates& a, const std::string& key, int i) {
  SetKey(s, key);
  ASSERT_TRUE(a.value.Put("value-" + std::to_string(i)).ok());
  ASSERT_TRUE(a.list.Add("e1-" + std::to_string(i)).ok());
  ASSERT_TRUE(a.list.Add("e2").ok());
  ASSERT_TRUE(a.map.Put("uk1", std::to_string(i)).ok());
  ASSERT_TRUE(a.map.Put("uk2-" + std::to_string(i), "x").ok());
  ASSERT_TRUE(a.sum.AddAs<int64_t>(i).ok());
  ASSERT_TRUE(a.sum.AddAs<int64_t>(1).ok());
  ASSERT_TRUE(a.agg.Add(i).ok());
  ASSERT_TRUE(a.timers->RegisterEventTimeTimer(1000 + i, "ns").ok());
  ASSERT_TRUE(a.timers->RegisterProcessingTimeTimer(5000 + i).ok());
}

std::string Describe(KeyedStateStore& s, AllStates& a, const std::string& key) {
  SetKey(s, key);
  std::string out = "value=" + Get(a.value) + " list=";
  for (const auto& e : ListContents(a.list)) out += e + ",";
  out += " map=";
  for (const auto& [k, v] : MapContents(a.map)) out += k + ":" + v + ",";
  auto sum = a.sum.GetAs<int64_t>();
  out += " sum=" + (sum.ok() && sum->has_value() ? std::to_string(**sum) : "-");
  std::string acc;
  int64_t n = -1;
  out += " agg=" + (a.agg.Get(&acc) && Codec<int64_t>::Decode(acc, &n) ? std::to_string(n) : "-");
  return out;
}

std::string Expected(int i) {
  return "value=value-" + std::to_string(i) + " list=e1-" + std::to_string(i) + ",e2, map=uk1:" +
         std::to_string(i) + ",uk2-" + std::to_string(i) + ":x, sum=" + std::to_string(i + 1) +
         " agg=" + std::to_string(i);
}
const std::string kEmpty = "value=<none> list= map= sum=- agg=-";

// Fires all timers of the store and returns them as "ts:key:ns" in firing order.
std::vector<std::string> FireAll(InternalTimerService& t, bool event_time) {
  std::vector<std::string> fired;
  auto fn = [&](const InternalTimerService::Timer& timer) {
    fired.push_back(std::to_string(timer.timestamp) + ":" + std::string(timer.key) + ":" +
                    std::string(timer.ns));
    EXPECT_EQ(timer.key_group, GroupOf(timer.key));
    return Status::Ok();
  };
  Status st = event_time ? t.AdvanceWatermark(kMaxParallelism * 1000000LL, fn)
                         : t.AdvanceProcessingTime(kMaxParallelism * 1000000LL, fn);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return fired;
}

TEST_P(TypedStateTest, EveryKindSurvivesCheckpointAndRestore) {
  proto::KeyedStateHandle handle;
  {
    auto s = MustOpen(GetParam(), kAll);
    ASSERT_NE(s, nullptr);
    CountAgg fn;
    AllStates a = Register(*s, &fn);
    for (int i = 0; i < 200; ++i) Write(*s, a, "key-" + std::to_string(i), i);
    handle = Checkpoint(*s, 1);
    // Not in the checkpoint.
    Write(*s, a, "key-late", 999);
    Write(*s, a, "key-0", 999);
  }
  for (Kind kind : {GetParam(), Other(GetParam())}) {
    auto s = MustOpen(kind, kAll, {handle});
    ASSERT_NE(s, nullptr);
    CountAgg fn;
    // Registered in another order: the restored ids are kept.
    AllStates a = Register(*s, &fn, /*reverse_order=*/true);
    for (int i = 0; i < 200; i += 7) {
      EXPECT_EQ(Describe(*s, a, "key-" + std::to_string(i)), Expected(i)) << KindName(kind);
    }
    EXPECT_EQ(Describe(*s, a, "key-late"), kEmpty);
    EXPECT_EQ(a.timers->num_event_time_timers(), 200u);
    EXPECT_EQ(a.timers->num_processing_time_timers(), 200u);
    auto fired = FireAll(*a.timers, true);
    ASSERT_EQ(fired.size(), 200u);
    EXPECT_EQ(fired.front(), "1000:key-0:ns");
    EXPECT_EQ(fired.back(), "1199:key-199:ns");
    EXPECT_EQ(FireAll(*a.timers, false).size(), 200u);
  }
}

// Two old subtasks (halves of the key groups) with every kind of state, restored into
// `parallelism` new ones of kind `to`: each sees exactly the keys and timers of its groups.
void RescaleCase(TypedStateTest& t, Kind from, Kind to, int parallelism) {
  constexpr int kKeys = 600;
  std::vector<proto::KeyedStateHandle> handles;
  for (int old = 0; old < 2; ++old) {
    const KeyGroupRange r = KeyGroupRangeFor(old, kMaxParallelism, 2);
    auto s = t.MustOpen(from, r);
    ASSERT_NE(s, nullptr);
    CountAgg fn;
    AllStates a = Register(*s, &fn);
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "key-" + std::to_string(i);
      if (r.Contains(GroupOf(key))) Write(*s, a, key, i);
    }
    handles.push_back(t.Checkpoint(*s, 3));
  }
  int seen_keys = 0;
  size_t seen_timers = 0;
  for (int i = 0; i < parallelism; ++i) {
    const KeyGroupRange r = KeyGroupRangeFor(i, kMaxParallelism, parallelism);
    auto s = t.MustOpen(to, r, handles);
    ASSERT_NE(s, nullptr);
    CountAgg fn;
    AllStates a = Register(*s, &fn);
    for (int k = 0; k < kKeys; ++k) {
      const std::string key = "key-" + std::to_string(k);
      if (!r.Contains(GroupOf(key))) continue;
      EXPECT_EQ(Describe(*s, a, key), Expected(k)) << key << " in subtask " << i;
      ++seen_keys;
    }
    // Whole-state scans see only our groups.
    int n = 0;
    ASSERT_TRUE(a.value.ForEachKey([&](int kg, std::string_view, std::string_view) {
                     EXPECT_TRUE(r.Contains(kg));
                     ++n;
                     return Status::Ok();
                   }).ok());
    int expected_here = 0;
    for (int k = 0; k < kKeys; ++k) expected_here += r.Contains(GroupOf("key-" + std::to_string(k)));
    EXPECT_EQ(n, expected_here);
    auto fired = FireAll(*a.timers, true);
    EXPECT_EQ(fired.size(), static_cast<size_t>(expected_here));
    for (const auto& f : fired) {
      const std::string key = f.substr(f.find(':') + 1, f.rfind(':') - f.find(':') - 1);
      EXPECT_TRUE(r.Contains(GroupOf(key))) << f;
    }
    EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));  // same-width timestamps
    seen_timers += fired.size();
    EXPECT_EQ(FireAll(*a.timers, false).size(), static_cast<size_t>(expected_here));
  }
  EXPECT_EQ(seen_keys, kKeys);
  EXPECT_EQ(seen_timers, static_cast<size_t>(kKeys));
}

TEST_P(TypedStateTest, RescaleUpTo3) { RescaleCase(*this, GetParam(), GetParam(), 3); }
TEST_P(TypedStateTest, RescaleDownTo1) { RescaleCase(*this, GetParam(), GetParam(), 1); }
TEST_P(TypedStateTest, RescaleIntoOtherBackend) { RescaleCase(*this, GetParam(), Other(GetParam()), 3); }

TEST_P(TypedStateTest, InconsistentIdsAcrossOldSubtasksAreRefused) {
  std::vector<proto::KeyedStateHandle> handles;
  for (int old = 0; old < 2; ++old) {
    auto s = MustOpen(GetParam(), KeyGroupRangeFor(old, kMaxParallelism, 2));
    ASSERT_NE(s, nullptr);
    // Subtask 0 registers a then b, subtask 1 b then a.
    ASSERT_TRUE(s->GetValueState(old == 0 ? "a" : "b").ok());
    ASSERT_TRUE(s->GetValueState(old == 0 ? "b" : "a").ok());
    handles.push_back(Checkpoint(*s, 1));
  }
  // Each half alone restores fine.
  EXPECT_TRUE(Open(GetParam(), KeyGroupRangeFor(0, kMaxParallelism, 2), handles).ok());
  auto merged = Open(GetParam(), kAll, handles);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(merged.status().message(), HasSubstr("inconsistent"));
}

TEST_P(TypedStateTest, StateWithoutNameTableIsRefused) {
  // Raw entries, as keyed_aggregate wrote them before typed state.
  BackendOptions o;
  o.local_dir = (dir_ / "raw").string();
  o.max_parallelism = kMaxParallelism;
  o.key_groups = kAll;
  auto b = GetParam() == Kind::kRocksDb ? OpenRocksDbBackend(o, {}, root_)
                                        : OpenHeapBackend(o, {}, root_);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Put(3, "\x01key", "acc").ok());
  auto upload = (*b)->Snapshot(1);
  ASSERT_TRUE(upload.ok());
  auto handle = (*upload)->Upload({root_, "chk-1/raw", true});
  ASSERT_TRUE(handle.ok());
  auto s = Open(GetParam(), kAll, {*handle});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("no state name table"));
}

TEST_P(TypedStateTest, NewStateAfterRestoreGetsAFreshId) {
  proto::KeyedStateHandle handle;
  uint8_t old_id = 0;
  {
    auto s = MustOpen(GetParam(), kAll);
    ASSERT_NE(s, nullptr);
    auto v = s->GetValueState("old");
    ASSERT_TRUE(v.ok());
    old_id = v->id();
    SetKey(*s, "k");
    ASSERT_TRUE(v->Put("x").ok());
    handle = Checkpoint(*s, 1);
  }
  auto s = MustOpen(GetParam(), kAll, {handle});
  ASSERT_NE(s, nullptr);
  auto fresh = s->GetValueState("new");  // registered before "old" this time
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->id(), old_id);
  auto v = s->GetValueState("old");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->id(), old_id);
  SetKey(*s, "k");
  EXPECT_EQ(Get(*v), "x");
  EXPECT_EQ(Get(*fresh), "<none>");
  EXPECT_FALSE(s->GetListState("old").ok());  // the restored kind is enforced
}

// A state's value version is kept in the name table: the same version restores; another is
// refused when the state is registered, naming the state and both versions; a version-1 state
// writes no version (its entries are as before versions), and reads back as version 1.
TEST_P(TypedStateTest, ValueVersionsRestoreOrAreRefusedByName) {
  proto::KeyedStateHandle handle;
  {
    auto s = MustOpen(GetParam(), kAll);
    ASSERT_NE(s, nullptr);
    auto v2 = s->GetValueState("acc", 2);
    ASSERT_TRUE(v2.ok()) << v2.status().ToString();
    auto v1 = s->GetMapState("plain");
    ASSERT_TRUE(v1.ok());
    SetKey(*s, "k");
    ASSERT_TRUE(v2->Put("two").ok());
    ASSERT_TRUE(v1->Put("u", "one").ok());
    // In this store too, another version of a registered name is an error.
    auto again = s->GetValueState("acc", 3);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(s->GetValueState("zero", 0).ok());
    // The name-table entry of a version-1 state is the 3 bytes written before versions.
    std::string entry;
    const std::string key = std::string(1, '\0') + "plain";
    ASSERT_TRUE(s->backend().Get(GroupOf("k"), key, &entry));
    EXPECT_EQ(entry.size(), 3u);
    handle = Checkpoint(*s, 1);
  }
  {
    auto s = MustOpen(GetParam(), kAll, {handle});
    ASSERT_NE(s, nullptr);
    auto v2 = s->GetValueState("acc", 2);
    ASSERT_TRUE(v2.ok()) << v2.status().ToString();
    auto v1 = s->GetMapState("plain", 1);
    ASSERT_TRUE(v1.ok()) << v1.status().ToString();
    SetKey(*s, "k");
    EXPECT_EQ(Get(*v2), "two");
    EXPECT_EQ(MapContents(*v1), (std::map<std::string, std::string>{{"u", "one"}}));
  }
  for (uint32_t other : {1u, 3u}) {
    auto s = MustOpen(GetParam(), kAll, {handle});
    ASSERT_NE(s, nullptr);
    auto v = s->GetValueState("acc", other);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_THAT(v.status().message(), HasSubstr("'acc' has values of version 2"));
    EXPECT_THAT(v.status().message(),
                HasSubstr("this operator reads version " + std::to_string(other)));
    auto plain = s->GetMapState("plain", 2);
    ASSERT_FALSE(plain.ok());
    EXPECT_THAT(plain.status().message(), HasSubstr("'plain' has values of version 1"));
  }
}

// ---- timers

std::vector<std::string> Advance(InternalTimerService& t, int64_t wm, KeyedStateStore* s = nullptr,
                                 std::function<void(const InternalTimerService::Timer&)> also = {}) {
  std::vector<std::string> fired;
  Status st = t.AdvanceWatermark(wm, [&](const InternalTimerService::Timer& timer) {
    fired.push_back(std::to_string(timer.timestamp) + ":" + std::string(timer.key) +
                    (timer.ns.empty() ? "" : ":" + std::string(timer.ns)));
    if (s != nullptr) {
      EXPECT_EQ(s->current_key(), timer.key);  // the timer's key is current
    }
    if (also) also(timer);
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return fired;
}

TEST_P(TypedStateTest, TimersFireInOrderOnceAndCanBeDeleted) {
  auto s = MustOpen(GetParam(), kAll);
  ASSERT_NE(s, nullptr);
  auto t = s->GetTimerService("w");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  InternalTimerService& timers = **t;
  SetKey(*s, "b");
  ASSERT_TRUE(timers.RegisterEventTimeTimer(30).ok());
  ASSERT_TRUE(timers.RegisterEventTimeTimer(10).ok());
  ASSERT_TRUE(timers.RegisterEventTimeTimer(10).ok());        // dedupe
  ASSERT_TRUE(timers.RegisterEventTimeTimer(10, "ns").ok());  // another namespace
  ASSERT_TRUE(timers.RegisterEventTimeTimer(-5).ok());        // negative times order right
  SetKey(*s, "a");
  ASSERT_TRUE(timers.RegisterEventTimeTimer(20).ok());
  ASSERT_TRUE(timers.RegisterEventTimeTimer(10).ok());
  ASSERT_TRUE(timers.RegisterEventTimeTimer(40).ok());
  ASSERT_TRUE(timers.DeleteEventTimeTimer(40).ok());
  ASSERT_TRUE(timers.DeleteEventTimeTimer(41).ok());  // not there: fine
  ASSERT_TRUE(timers.RegisterProcessingTimeTimer(10).ok());  // separate queue
  EXPECT_EQ(timers.num_event_time_timers(), 6u);
  EXPECT_EQ(timers.next_event_time(), -5);
  EXPECT_EQ(timers.next_processing_time(), 10);

  EXPECT_TRUE(Advance(timers, -10, s.get()).empty());
  auto fired = Advance(timers, 15, s.get());
  // Same timestamp: by key group, then key, then namespace.
  std::vector<std::string> tens = {"10:a", "10:b", "10:b:ns"};
  if (GroupOf("b") < GroupOf("a")) tens = {"10:b", "10:b:ns", "10:a"};
  std::vector<std::string> want = {"-5:b"};
  want.insert(want.end(), tens.begin(), tens.end());
  EXPECT_EQ(fired, want);
  EXPECT_EQ(timers.current_watermark(), 15);
  // A lower watermark changes nothing; fired timers never fire again.
  EXPECT_TRUE(Advance(timers, 12, s.get()).empty());
  EXPECT_EQ(timers.current_watermark(), 15);

  // A callback may register timers: one at or before the watermark fires in the same call.
  fired = Advance(timers, 25, s.get(), [&](const InternalTimerService::Timer& timer) {
    if (timer.timestamp == 20) {
      EXPECT_TRUE(timers.RegisterEventTimeTimer(22, "chained").ok());
      EXPECT_TRUE(timers.RegisterEventTimeTimer(100, "later").ok());
    }
  });
  EXPECT_EQ(fired, (std::vector<std::string>{"20:a", "22:a:chained"}));
  // Registering a timer at or before the watermark: it fires at the next advance.
  SetKey(*s, "c");
  ASSERT_TRUE(timers.RegisterEventTimeTimer(1).ok());
  EXPECT_EQ(Advance(timers, 25, s.get()), (std::vector<std::string>{"1:c"}));

  std::vector<std::string> proc;
  ASSERT_TRUE(timers.AdvanceProcessingTime(9, [&](const auto&) {
                      proc.push_back("x");
                      return Status::Ok();
                    }).ok());
  EXPECT_TRUE(proc.empty());
  ASSERT_TRUE(timers.AdvanceProcessingTime(10, [&](const InternalTimerService::Timer& timer) {
                      proc.push_back(std::string(timer.key));
                      return Status::Ok();
                    }).ok());
  EXPECT_EQ(proc, (std::vector<std::string>{"a"}));

  // An error from the callback stops the advance and is returned (the task then fails and
  // restores; the timer that failed was already taken: 30:b).
  Status st = timers.AdvanceWatermark(1000, [](const auto&) { return Status::Internal("boom"); });
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(Advance(timers, 1000, s.get()), (std::vector<std::string>{"100:a:later"}));
  EXPECT_EQ(timers.num_event_time_timers(), 0u);
}

TEST_P(TypedStateTest, TimersAreStoredDeletedWhenFiredAndRebuiltOnRestore) {
  proto::KeyedStateHandle before_fire, after_fire;
  {
    auto s = MustOpen(GetParam(), kAll);
    ASSERT_NE(s, nullptr);
    InternalTimerService& timers = **s->GetTimerService("w");
    InternalTimerService& other = **s->GetTimerService("other");
    for (int i = 0; i < 50; ++i) {
      SetKey(*s, "k" + std::to_string(i));
      ASSERT_TRUE(timers.RegisterEventTimeTimer(100 - i, "n").ok());
      ASSERT_TRUE(timers.RegisterProcessingTimeTimer(i).ok());
      ASSERT_TRUE(other.RegisterEventTimeTimer(7).ok());
    }
    SetKey(*s, "k0");
    ASSERT_TRUE(timers.DeleteEventTimeTimer(100, "n").ok());
    before_fire = Checkpoint(*s, 1);
    EXPECT_EQ(Advance(timers, 75).size(), 25u);  // 51..75 = k49..k25
    after_fire = Checkpoint(*s, 2);
  }
  {
    auto s = MustOpen(GetParam(), kAll, {before_fire});
    ASSERT_NE(s, nullptr);
    InternalTimerService& timers = **s->GetTimerService("w");
    EXPECT_EQ(timers.num_event_time_timers(), 49u);
    EXPECT_EQ(timers.num_processing_time_timers(), 50u);
    EXPECT_EQ((**s->GetTimerService("other")).num_event_time_timers(), 50u);
    auto fired = Advance(timers, 1000, s.get());
    ASSERT_EQ(fired.size(), 49u);
    EXPECT_EQ(fired.front(), "51:k49:n");
    EXPECT_EQ(fired.back(), "99:k1:n");
  }
  {
    auto s = MustOpen(GetParam(), kAll, {after_fire});
    ASSERT_NE(s, nullptr);
    InternalTimerService& timers = **s->GetTimerService("w");
    EXPECT_EQ(timers.num_event_time_timers(), 24u);  // fired timers are gone from the state
    EXPECT_EQ(timers.next_event_time(), 76);
  }
}

TEST_P(TypedStateTest, SnapshotWithPendingListMergesRestoresIntoEitherBackend) {
  // RocksDB: list adds are merge operands until compaction; a restore that reads entries (the
  // other backend, or several handles) must see merged lists.
  proto::KeyedStateHandle h1, h2;
  for (int half = 0; half < 2; ++half) {
    auto s = MustOpen(GetParam(), KeyGroupRangeFor(half, kMaxParallelism, 2));
    ASSERT_NE(s, nullptr);
    ListState l = *s->GetListState("l");
    for (int i = 0; i < 100; ++i) {
      const std::string key = Key(i);
      if (!s->key_groups().Contains(GroupOf(key))) continue;
      SetKey(*s, key);
      for (int j = 0; j < 5; ++j) ASSERT_TRUE(l.Add(std::to_string(j)).ok());
    }
    (half == 0 ? h1 : h2) = Checkpoint(*s, 1);
  }
  for (Kind kind : {Kind::kRocksDb, Kind::kHeap}) {
    auto s = MustOpen(kind, kAll, {h1, h2});
    ASSERT_NE(s, nullptr);
    ListState l = *s->GetListState("l");
    for (int i = 0; i < 100; ++i) {
      SetKey(*s, Key(i));
      EXPECT_THAT(ListContents(l), ElementsAre("0", "1", "2", "3", "4")) << KindName(kind);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, TypedStateTest, ::testing::Values(Kind::kRocksDb, Kind::kHeap),
                         [](const auto& info) { return KindName(info.param); });

}  // namespace
}  // namespace weir::state
