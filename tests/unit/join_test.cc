// join, interval_join and window_join driven directly through the Operator API (ProcessInput,
// OnWatermark, OnProcessingTime, Snapshot, Finish) on both state backends, against a
// brute-force join of the same stream: output, null padding of left joins, TTL expiry, late
// rows, config errors, and snapshot/restore (also rescaled to two subtasks) mid-stream.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "aggregation.h"  // OpenKeyedStateStore and the rows' time encoding (legacy state)
#include "keyed_operator_test.h"
#include "weir/builtins.h"
#include "weir/config.h"
#include "weir/key_groups.h"
#include "weir/operator.h"

namespace weir {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

using testing_keyed::Collect;
using testing_keyed::GroupOfKey;
using testing_keyed::kMaxParallelism;

// Both inputs: (k string, ts timestamp, v int64); the output renames the right side's
// colliding fields right_k, right_ts, right_v.
Schema Side() {
  Schema s;
  s.Add("k", Type::kString);
  s.Add("ts", Type::kTimestamp);
  s.Add("v", Type::kInt64);
  return s;
}

struct Event {
  int side = 0;  // 0 left, 1 right, -1 watermark
  std::string key;
  int64_t ts = 0;
  int64_t v = 0;
};

// Rows of keys a..e, both sides, times rising with up to 2 s of disorder, a watermark every 25
// events 3 s behind the largest time (so no row is late).
std::vector<Event> Stream(size_t n = 600) {
  std::vector<Event> out;
  uint64_t x = 12345;
  auto next = [&x] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  int64_t max_ts = 0;
  for (size_t i = 0; i < n; ++i) {
    Event e;
    e.side = static_cast<int>(next() % 2);
    e.key = std::string(1, static_cast<char>('a' + next() % 5));
    e.ts = static_cast<int64_t>(i) * 100 + static_cast<int64_t>(next() % 2000);
    e.v = static_cast<int64_t>(i);
    max_ts = std::max(max_ts, e.ts);
    out.push_back(e);
    if (i % 25 == 24) out.push_back({-1, "", max_ts - 3000, 0});
  }
  return out;
}

std::string Joined(const Event& l, const Event& r, bool window = false, int64_t start = 0,
                   int64_t size = 0) {
  Row row(window ? 8 : 6);
  row[0].SetString(l.key);
  row[1].SetTimestamp(l.ts);
  row[2].SetInt64(l.v);
  if (r.side >= 0) {
    row[3].SetString(r.key);
    row[4].SetTimestamp(r.ts);
    row[5].SetInt64(r.v);
  }
  if (window) {
    row[6].SetTimestamp(start);
    row[7].SetTimestamp(start + size);
  }
  return row.ToString();
}

// Compares as multisets (gmock's UnorderedElementsAreArray is quadratic: too slow for the
// tens of thousands of rows a regular join of this stream gives).
std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Writes interval_join state as it was before each row had its own timer: left rows of key
// "a" (kInterval's layout: [time][sequence] -> [flags][row]), one event-time timer per key and
// time with the namespace "L", the sequence counter past them.
class LegacyIntervalState : public KeyedStateOperator {
 public:
  explicit LegacyIntervalState(std::vector<int64_t> times) : times_(std::move(times)) {}
  Status Open(const OperatorContext& ctx) override {
    WEIR_ASSIGN_OR_RETURN(store_, OpenKeyedStateStore(ctx, "keyed"));
    constexpr auto kUncached = state::KeyedStateStore::Caching::kUncached;
    WEIR_ASSIGN_OR_RETURN(auto left, store_->GetMapState("left", 1, kUncached));
    WEIR_ASSIGN_OR_RETURN(auto right, store_->GetMapState("right", 1, kUncached));
    WEIR_ASSIGN_OR_RETURN(auto* timers, store_->GetTimerService("join"));
    Schema key_schema;
    key_schema.Add("k", Type::kString);
    KeyExtractor keys({0}, key_schema);
    Row row(3);
    row[0].SetString("a");
    keys.Extract(row, kMaxParallelism);
    WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(keys.key_group(), keys.key()));
    for (size_t i = 0; i < times_.size(); ++i) {
      row[1].SetTimestamp(times_[i]);
      row[2].SetInt64(static_cast<int64_t>(100 + i));
      std::string user_key;
      EncodeOrderedTime(times_[i], &user_key);
      EncodeOrderedTime(static_cast<int64_t>(i ^ (uint64_t{1} << 63)), &user_key);
      ByteBuffer value;
      *value.Reserve(1) = 0;
      value.Commit(1);
      SerializeRow(row, Side(), value);
      WEIR_RETURN_IF_ERROR(left.Put(
          user_key, std::string_view(reinterpret_cast<const char*>(value.data()), value.size())));
      // kept until the watermark passes l.ts - lower (lower: -1s)
      WEIR_RETURN_IF_ERROR(timers->RegisterEventTimeTimer(times_[i] + 1000 + 1, "L"));
    }
    return Status::Ok();
  }
  Status Process(RowBatch&, Output&) override { return Status::Ok(); }
  Status Snapshot(int64_t id, OperatorSnapshot* out) override {
    WEIR_RETURN_IF_ERROR(SnapshotStore(id, out));
    out->operator_state.push_back(UnionInt64List("sequence", static_cast<int64_t>(times_.size())));
    return Status::Ok();
  }

 private:
  std::vector<int64_t> times_;
};

// Counts each side's rows in a join's restored state.
class StoredRows : public KeyedStateOperator {
 public:
  Status Open(const OperatorContext& ctx) override {
    WEIR_ASSIGN_OR_RETURN(store_, OpenKeyedStateStore(ctx, "keyed"));
    constexpr auto kUncached = state::KeyedStateStore::Caching::kUncached;
    const char* names[2] = {"left", "right"};
    for (int side = 0; side < 2; ++side) {
      WEIR_ASSIGN_OR_RETURN(auto rows, store_->GetMapState(names[side], 1, kUncached));
      WEIR_RETURN_IF_ERROR(rows.ForEachEntry(
          [&](int, std::string_view, std::string_view, std::string_view) -> Status {
            ++count[side];
            return Status::Ok();
          }));
    }
    return Status::Ok();
  }
  Status Process(RowBatch&, Output&) override { return Status::Ok(); }
  size_t count[2] = {0, 0};
};

class JoinTest : public testing_keyed::KeyedOperatorTest {
 protected:
  JoinTest() : KeyedOperatorTest("weir-join-test-") {}

  // `late`: the side outputs late_left and late_right, as the task wires them when edges take
  // them.
  std::unique_ptr<Operator> Make(const std::string& type, const std::string& yaml,
                                 KeyGroupRange range = {0, kMaxParallelism - 1},
                                 const RestoredState* restored = nullptr, Collect* late = nullptr) {
    auto config = Config::Parse(yaml, "vertex 'j': config");
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    const OperatorFactory* f = BuiltinOperators().Find(type);
    EXPECT_NE(f, nullptr);
    auto op = f->CreateWithInputs(*config, {Side(), Side()});
    EXPECT_TRUE(op.ok()) << op.status().ToString();
    OperatorContext ctx = Context("j", range, restored);
    if (late != nullptr) {
      ctx.side_outputs = {&late[0], &late[1]};
      ctx.side_output_names = {"late_left", "late_right"};
    }
    Status st = (*op)->Open(ctx);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return std::move(op).value();
  }

  // Records go in one batch per run of the same side; watermarks between.
  void Feed(Operator& op, const std::vector<Event>& events, Collect& out) {
    RowBatch batch;
    int side = -1;
    auto flush = [&] {
      if (batch.empty()) return;
      Status st = op.ProcessInput(side, batch, out);
      ASSERT_TRUE(st.ok()) << st.ToString();
      batch.Clear();
    };
    for (const Event& e : events) {
      if (e.side != side) flush();
      side = e.side;
      if (e.side < 0) {
        Status st = op.OnWatermark(e.ts, out);
        ASSERT_TRUE(st.ok()) << st.ToString();
        continue;
      }
      Row& r = batch.Append(3);
      r[0].SetString(e.key);
      r[1].SetTimestamp(e.ts);
      r[2].SetInt64(e.v);
    }
    flush();
  }

  std::vector<std::string> Run(const std::string& type, const std::string& config,
                               const std::vector<Event>& events) {
    Collect out;
    auto op = Make(type, config);
    Feed(*op, events, out);
    EXPECT_TRUE(op->OnWatermark(kMaxWatermark, out).ok());
    EXPECT_TRUE(op->Finish(out).ok());
    return out.rows;
  }

  // The rows each side has in state: a snapshot restored into a counting operator.
  std::vector<size_t> StoredRowCounts(Operator& op, int64_t checkpoint_id) {
    const RestoredState snapshot = TakeSnapshot(op, checkpoint_id);
    StoredRows stored;
    Status st = stored.Open(Context("j", {0, kMaxParallelism - 1}, &snapshot));
    EXPECT_TRUE(st.ok()) << st.ToString();
    return {stored.count[0], stored.count[1]};
  }

  // A snapshot after `cut` events, then a restore (into one subtask, or split over two by key
  // group) fed the rest, gives what an uninterrupted run gives.
  void CheckRestore(const std::string& type, const std::string& config,
                    const std::vector<Event>& events = Stream()) {
    SCOPED_TRACE(type + " " + config);
    const std::vector<std::string> expected = Run(type, config, events);
    ASSERT_GT(expected.size(), 50u);
    for (size_t cut : {size_t{151}, size_t{400}}) {
      for (int parts : {1, 2}) {
        Collect got;
        RestoredState restored;
        {
          auto op = Make(type, config);
          Feed(*op, std::vector<Event>(events.begin(), events.begin() + cut), got);
          restored = TakeSnapshot(*op, 1);
          ASSERT_TRUE(op->Close().ok());
        }
        for (int sub = 0; sub < parts; ++sub) {
          const KeyGroupRange r = KeyGroupRangeFor(sub, kMaxParallelism, parts);
          auto op = Make(type, config, r, &restored);
          std::vector<Event> mine;
          for (size_t i = cut; i < events.size(); ++i) {
            if (events[i].side < 0 || r.Contains(GroupOfKey(events[i].key))) {
              mine.push_back(events[i]);
            }
          }
          Feed(*op, mine, got);
          ASSERT_TRUE(op->OnWatermark(kMaxWatermark, got).ok());
          ASSERT_TRUE(op->Finish(got).ok());
        }
        EXPECT_EQ(Sorted(got.rows), Sorted(expected))
            << "cut at " << cut << ", " << parts << " subtask(s)";
      }
    }
  }

};

const char kInner[] = "{left_key: [k], right_key: [k], state_ttl: 1h}";
const char kLeft[] = "{left_key: [k], right_key: [k], kind: left, state_ttl: 1h}";
const char kInterval[] =
    "{left_key: [k], right_key: [k], left_time: ts, right_time: ts, lower: -1s, upper: 2s}";
// A per-row upper bound: the right row's v (as milliseconds), l.ts <= r.v.
const char kPerRow[] =
    "{left_key: [k], right_key: [k], left_time: ts, right_time: ts, lower: -1s, upper_field: v}";
// Stream() with each right row's v an upper bound 0..4 s after its time.
std::vector<Event> PerRowStream() {
  std::vector<Event> events = Stream();
  for (Event& e : events) {
    if (e.side == 1) e.v = e.ts + (e.v * 37) % 4000;
  }
  return events;
}
const char kTumbling[] = "{left_key: [k], right_key: [k], left_time: ts, right_time: ts, size: 5s}";
const char kSliding[] =
    "{left_key: [k], right_key: [k], left_time: ts, right_time: ts, size: 5s, slide: 2s}";

TEST_P(JoinTest, RegularInnerJoinEmitsEveryMatchingPairOnce) {
  const auto events = Stream();
  std::vector<std::string> expected;
  for (const Event& l : events) {
    for (const Event& r : events) {
      if (l.side == 0 && r.side == 1 && l.key == r.key) expected.push_back(Joined(l, r));
    }
  }
  EXPECT_EQ(Sorted(Run("join", kInner, events)), Sorted(expected));
}

TEST_P(JoinTest, LeftJoinPadsLeftRowsThatNeverMatchedAtTheEnd) {
  const std::vector<Event> events = {
      {0, "a", 1, 1}, {0, "b", 2, 2}, {1, "a", 3, 3}, {0, "a", 4, 4}, {1, "c", 5, 5}};
  const Event none{-1, "", 0, 0};
  EXPECT_THAT(Run("join", kLeft, events),
              UnorderedElementsAreArray({Joined(events[0], events[2]), Joined(events[3], events[2]),
                                         Joined(events[1], none)}));
}

TEST_P(JoinTest, StateTtlExpiresRowsAndPadsUnmatchedLeftRowsThen) {
  Collect out;
  auto op = Make("join", "{left_key: [k], right_key: [k], kind: left, state_ttl: 10s}");
  ASSERT_TRUE(op->OnProcessingTime(1'000'000, out).ok());
  Feed(*op, {{0, "a", 1, 1}, {0, "b", 2, 2}, {1, "b", 3, 3}}, out);
  ASSERT_EQ(out.rows.size(), 1u);  // (b, b)
  ASSERT_TRUE(op->OnProcessingTime(1'009'999, out).ok());
  EXPECT_EQ(out.rows.size(), 1u) << "nothing expires before the TTL";
  ASSERT_TRUE(op->OnProcessingTime(1'010'000, out).ok());
  ASSERT_EQ(out.rows.size(), 2u);
  EXPECT_EQ(out.rows[1], Joined({0, "a", 1, 1}, {-1, "", 0, 0}));
  // Expired rows match nothing and are not padded twice.
  Feed(*op, {{1, "a", 5, 5}, {1, "b", 6, 6}}, out);
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_EQ(out.rows.size(), 2u);
}

TEST_P(JoinTest, IntervalJoinMatchesTheBruteForceJoin) {
  const auto events = Stream();
  std::vector<std::string> expected;
  for (const Event& l : events) {
    for (const Event& r : events) {
      if (l.side == 0 && r.side == 1 && l.key == r.key && r.ts - 1000 <= l.ts &&
          l.ts <= r.ts + 2000) {
        expected.push_back(Joined(l, r));
      }
    }
  }
  ASSERT_GT(expected.size(), 50u);
  EXPECT_EQ(Sorted(Run("interval_join", kInterval, events)), Sorted(expected));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
}

TEST_P(JoinTest, IntervalJoinWithAPerRowUpperBoundMatchesTheBruteForceJoin) {
  const auto events = PerRowStream();
  std::vector<std::string> expected;
  for (const Event& l : events) {
    for (const Event& r : events) {
      if (l.side == 0 && r.side == 1 && l.key == r.key && r.ts - 1000 <= l.ts && l.ts <= r.v) {
        expected.push_back(Joined(l, r));
      }
    }
  }
  ASSERT_GT(expected.size(), 50u);
  EXPECT_EQ(Sorted(Run("interval_join", kPerRow, events)), Sorted(expected));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
}

// A right row is kept exactly until the watermark passes its own bound.
TEST_P(JoinTest, PerRowUpperBoundKeepsARightRowUntilItsBound) {
  Collect out;
  auto op = Make("interval_join", kPerRow);
  Feed(*op,
       {{1, "a", 1'000, 20'000}, {1, "a", 1'000, 5'000}, {-1, "", 5'000, 0}, {0, "a", 5'000, 1}},
       out);
  EXPECT_EQ(out.rows.size(), 2u) << "a bid at the bound itself matches";
  Feed(*op, {{-1, "", 5'001, 0}, {0, "a", 5'001, 2}}, out);
  EXPECT_EQ(out.rows.size(), 3u) << "only the row bounded at 20000 is left";
  Feed(*op, {{-1, "", 20'001, 0}, {0, "a", 20'001, 3}}, out);
  EXPECT_EQ(out.rows.size(), 3u);
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
}

// Each input's own watermark: a row the other input can no longer match is not stored, and a
// row before its own input's watermark is late.
TEST_P(JoinTest, IntervalJoinUsesEachInputsOwnWatermark) {
  Collect out;
  auto op = Make("interval_join", kInterval);  // r.ts - 1s <= l.ts <= r.ts + 2s
  op->OnInputWatermark(1, 20'000);             // the right input runs ahead
  Feed(*op, {{0, "a", 19'500, 1}, {0, "a", 10'000, 2}, {1, "a", 20'000, 3}}, out);
  ASSERT_EQ(out.rows.size(), 1u);  // 19500 was kept for the right row at 20000
  EXPECT_EQ(out.rows[0], Joined({0, "a", 19'500, 1}, {1, "a", 20'000, 3}));
  // 10000 could only match right rows up to 11000, before the right input's watermark: such
  // a row is late, dropped and counted (and 10000 was never stored).
  Feed(*op, {{1, "a", 10'500, 4}}, out);
  EXPECT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(metrics_.late_records_dropped.load(), 1);
}

TEST_P(JoinTest, IntervalJoinDropsAndCountsLateRowsAndCleansState) {
  Collect out;
  auto op = Make("interval_join", kInterval);
  Feed(*op, {{0, "a", 10'000, 1}, {-1, "", 9'000, 0}, {1, "a", 8'500, 2}, {1, "a", 9'000, 3}}, out);
  EXPECT_EQ(metrics_.late_records_dropped.load(), 1);  // 8500 < watermark 9000
  ASSERT_EQ(out.rows.size(), 1u);                      // 9000 - 1000 <= 10000 <= 9000 + 2000
  // Watermark past 10000 + 1000: the left row is gone, a right row at 11000 (which would
  // match it) is not late and finds nothing.
  Feed(*op, {{-1, "", 11'001, 0}, {1, "a", 11'001, 4}}, out);
  EXPECT_EQ(out.rows.size(), 1u);
}

// State saved before per-row timers still joins and is still removed on time.
TEST_P(JoinTest, IntervalJoinRestoresTimersOfTheOlderLayout) {
  RestoredState restored;
  {
    LegacyIntervalState legacy({10'000, 10'500});
    ASSERT_TRUE(legacy.Open(Context("j", {0, kMaxParallelism - 1}, nullptr)).ok());
    restored = TakeSnapshot(legacy, 1);
    ASSERT_TRUE(legacy.Close().ok());
  }
  Collect out;
  auto op = Make("interval_join", kInterval, {0, kMaxParallelism - 1}, &restored);
  Feed(*op, {{1, "a", 9'000, 1}}, out);  // r - 1s <= l <= r + 2s: both
  EXPECT_EQ(out.rows.size(), 2u);
  // 10000's timer fires at 11001 and removes it; a new-layout row is stored beside 10500.
  Feed(*op, {{-1, "", 11'001, 0}, {0, "a", 12'000, 7}, {1, "a", 11'001, 2}}, out);
  ASSERT_EQ(out.rows.size(), 4u);  // 10500 and 12000
  EXPECT_EQ(out.rows[2], Joined({0, "a", 10'500, 101}, {1, "a", 11'001, 2}));
  EXPECT_EQ(out.rows[3], Joined({0, "a", 12'000, 7}, {1, "a", 11'001, 2}));
  // Past 10500 + 1s: only 12000 is left; past 13000: nothing.
  Feed(*op, {{-1, "", 11'501, 0}, {1, "a", 11'501, 3}}, out);
  ASSERT_EQ(out.rows.size(), 5u);
  EXPECT_EQ(out.rows[4], Joined({0, "a", 12'000, 7}, {1, "a", 11'501, 3}));
  Feed(*op, {{-1, "", 13'001, 0}, {1, "a", 13'001, 4}}, out);
  EXPECT_EQ(out.rows.size(), 5u);
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
  // Left: none; right: 11001, 11501 and 13001, each kept 2 s.
  EXPECT_EQ(StoredRowCounts(*op, 2), (std::vector<size_t>{0, 3}));
}

// A side with no stored rows is not read; once it stores one, the other side finds it, and
// once its timers have removed them all, finds nothing again.
TEST_P(JoinTest, IntervalJoinReadsASideOnlyWhileItHasRows) {
  Collect out;
  auto op = Make("interval_join", kInterval);                // r.ts - 1s <= l.ts <= r.ts + 2s
  Feed(*op, {{0, "a", 5'000, 1}, {0, "b", 5'000, 2}}, out);  // nothing on the right yet
  EXPECT_EQ(out.rows.size(), 0u);
  Feed(*op, {{1, "a", 4'000, 3}, {1, "a", 9'000, 4}}, out);  // 4000 matches, both are stored
  ASSERT_EQ(out.rows.size(), 1u);
  Feed(*op, {{0, "a", 5'500, 5}, {0, "b", 8'500, 6}}, out);  // a: 4000 (not 9000); b: none
  ASSERT_EQ(out.rows.size(), 2u);
  EXPECT_EQ(out.rows[1], Joined({0, "a", 5'500, 5}, {1, "a", 4'000, 3}));
  // Past 9000 + 2s every right row is gone: a left row that would match them finds none.
  Feed(*op, {{-1, "", 11'001, 0}, {0, "a", 11'001, 7}}, out);
  EXPECT_EQ(out.rows.size(), 2u);
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
  // Each row's timer removed exactly it: left 11001 (kept until 12001) is all that is left.
  EXPECT_EQ(StoredRowCounts(*op, 1), (std::vector<size_t>{1, 0}));
}

Row SideRow(const Event& e) {
  Row r(3);
  r[0].SetString(e.key);
  r[1].SetTimestamp(e.ts);
  r[2].SetInt64(e.v);
  return r;
}

// Late rows of each side go unchanged to that side's output, and are counted.
TEST_P(JoinTest, LateRowsGoToTheirSidesOutput) {
  for (const char* type : {"interval_join", "window_join"}) {
    SCOPED_TRACE(type);
    metrics_.late_records_dropped = 0;
    Collect out, late[2];
    auto op = Make(type, std::string(type) == "interval_join" ? kInterval : kTumbling,
                   {0, kMaxParallelism - 1}, nullptr, late);
    const Event l_late{0, "a", 1'000, 1}, r_late{1, "b", 2'000, 2};
    Feed(*op, {{0, "a", 12'000, 0}, {-1, "", 10'000, 0}, l_late, r_late, {1, "a", 12'500, 3}}, out);
    EXPECT_EQ(late[0].rows, std::vector<std::string>{SideRow(l_late).ToString()});
    EXPECT_EQ(late[1].rows, std::vector<std::string>{SideRow(r_late).ToString()});
    EXPECT_EQ(metrics_.late_records_dropped.load(), 2);
    ASSERT_TRUE(op->OnWatermark(kMaxWatermark, out).ok());
    EXPECT_EQ(out.rows.size(), 1u);  // 12000 with 12500 (the same window for window_join)
  }
}

TEST_P(JoinTest, WindowJoinMatchesTheBruteForceJoin) {
  const auto events = Stream();
  for (const auto& [config, slide] :
       std::vector<std::pair<const char*, int64_t>>{{kTumbling, 5000}, {kSliding, 2000}}) {
    std::vector<std::string> expected;
    for (const Event& l : events) {
      for (const Event& r : events) {
        if (l.side != 0 || r.side != 1 || l.key != r.key) continue;
        for (int64_t start = (std::min(l.ts, r.ts) / slide - 3) * slide;
             start <= std::max(l.ts, r.ts); start += slide) {
          if (start <= l.ts && l.ts < start + 5000 && start <= r.ts && r.ts < start + 5000) {
            expected.push_back(Joined(l, r, true, start, 5000));
          }
        }
      }
    }
    EXPECT_EQ(Sorted(Run("window_join", config, events)), Sorted(expected)) << config;
  }
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
}

TEST_P(JoinTest, WindowJoinDropsRowsOfFiredWindows) {
  Collect out;
  auto op = Make("window_join", kTumbling);
  Feed(*op, {{0, "a", 1000, 1}, {1, "a", 2000, 2}, {-1, "", 4999, 0}, {1, "a", 3000, 3}}, out);
  EXPECT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(metrics_.late_records_dropped.load(), 1);
}

TEST_P(JoinTest, SnapshotAndRestoreGiveTheUninterruptedOutput) {
  CheckRestore("join", kInner);
  CheckRestore("join", kLeft);
  CheckRestore("interval_join", kInterval);
  CheckRestore("interval_join", kPerRow, PerRowStream());
  CheckRestore("window_join", kSliding);
}

TEST_P(JoinTest, ConfigErrorsNameTheField) {
  auto error = [](const std::string& type, const std::string& yaml, Schema right = Side()) {
    auto config = Config::Parse(yaml, "vertex 'j': config");
    EXPECT_TRUE(config.ok());
    auto r = BuiltinOperators().Find(type)->ValidateInputs(*config, {Side(), right});
    return r.ok() ? std::string("ok") : r.status().message();
  };
  Schema ints;
  ints.Add("k", Type::kInt64);
  EXPECT_THAT(error("join", kInner, ints),
              HasSubstr("right_key: field 'k' is int64 but left_key field 'k' is string"));
  EXPECT_THAT(error("join", "{left_key: [k, v], right_key: [k], state_ttl: 1h}"),
              HasSubstr("right_key: 1 field(s), but left_key has 2"));
  EXPECT_THAT(error("join", "{left_key: [x], right_key: [k], state_ttl: 1h}"),
              HasSubstr("left_key: unknown field 'x'"));
  EXPECT_THAT(error("join", "{left_key: [k], right_key: [k]}"), HasSubstr("state_ttl: required"));
  EXPECT_THAT(error("join", "{left_key: [k], right_key: [k], kind: full, state_ttl: 1h}"),
              HasSubstr("kind: expected inner or left"));
  EXPECT_THAT(error("interval_join",
                    "{left_key: [k], right_key: [k], left_time: ts, right_time: ts, lower: 2s, "
                    "upper: -1s}"),
              HasSubstr("lower: must not exceed upper"));
  EXPECT_THAT(error("interval_join",
                    "{left_key: [k], right_key: [k], left_time: k, right_time: ts, lower: 0, "
                    "upper: 1s}"),
              HasSubstr("left_time: field 'k' must be a timestamp"));
  EXPECT_THAT(error("interval_join",
                    "{left_key: [k], right_key: [k], left_time: ts, right_time: ts, lower: 0, "
                    "upper: 1s, upper_field: ts}"),
              HasSubstr("upper_field: give upper or upper_field, not both"));
  EXPECT_THAT(error("interval_join",
                    "{left_key: [k], right_key: [k], left_time: ts, right_time: ts, lower: 0, "
                    "upper_field: k}"),
              HasSubstr("upper_field: field 'k' must be a timestamp"));
  EXPECT_EQ(error("interval_join", kPerRow), "ok");
  EXPECT_THAT(error("window_join",
                    "{left_key: [k], right_key: [k], left_time: ts, right_time: ts, "
                    "size: 5s, slide: 6s}"),
              HasSubstr("slide: must be positive and at most size"));
  EXPECT_THAT(
      error("window_join", "{left_key: [k], right_key: [k], left_time: ts, right_time: ts}"),
      HasSubstr("size: required"));
  EXPECT_EQ(error("window_join", kTumbling), "ok");
}

INSTANTIATE_TEST_SUITE_P(Backends, JoinTest, ::testing::Values("rocksdb", "heap"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace weir
