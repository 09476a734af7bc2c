// window_aggregate driven directly through the Operator API (Process, OnWatermark, Snapshot,
// Finish) on both state backends: window contents, out-of-order and late records, allowed
// lateness, count_distinct, and snapshot/restore (also rescaled) mid-window against an
// uninterrupted run. Also keyed_aggregate's restore, and the other event-time keyed operators
// (dedup, top_n), through the same path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "keyed_operator_test.h"
#include "weir/builtins.h"
#include "weir/config.h"
#include "weir/job_graph.h"
#include "weir/key_groups.h"
#include "weir/operator.h"

namespace weir {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

using testing_keyed::Collect;
using testing_keyed::GroupOfKey;
using testing_keyed::kMaxParallelism;

// One input event: a row (key, ts, v) or a watermark.
struct Event {
  bool watermark = false;
  std::string key;
  int64_t ts = 0;
  int64_t v = 0;
};
Event Rec(std::string key, int64_t ts, int64_t v = 1) {
  return {false, std::move(key), ts, v};
}
Event Wm(int64_t ts) {
  return {true, "", ts, 0};
}

Schema InputSchema() {
  Schema s;
  s.Add("k", Type::kString);
  s.Add("ts", Type::kTimestamp);
  s.Add("v", Type::kInt64);
  return s;
}

class WindowAggregateTest : public testing_keyed::KeyedOperatorTest {
 protected:
  WindowAggregateTest() : KeyedOperatorTest("weir-window-test-") {}

  std::unique_ptr<Operator> Make(const std::string& type, const std::string& yaml,
                                 KeyGroupRange range = {0, kMaxParallelism - 1},
                                 const RestoredState* restored = nullptr, Output* late = nullptr,
                                 size_t state_cache_bytes = 32 << 20) {
    auto config = Config::Parse(yaml, "vertex 'w': config");
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    const OperatorFactory* f = BuiltinOperators().Find(type);
    EXPECT_NE(f, nullptr);
    auto op = f->Create(*config, InputSchema());
    EXPECT_TRUE(op.ok()) << op.status().ToString();
    OperatorContext ctx = Context("w", range, restored);
    ctx.state_cache_bytes = state_cache_bytes;
    if (late != nullptr) {  // as the task wires a side output an edge takes
      ctx.side_outputs = {late};
      ctx.side_output_names = {"late"};
    }
    Status st = (*op)->Open(ctx);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return std::move(op).value();
  }

  // Feeds events (records in batches between watermarks); returns the rows emitted, and checks
  // that records alone never produce output unless `allow_output_on_records`.
  void Feed(Operator& op, const std::vector<Event>& events, Collect& out,
            bool allow_output_on_records = false) {
    RowBatch batch;
    auto flush = [&] {
      if (batch.empty()) return;
      const size_t before = out.rows.size();
      Status st = op.Process(batch, out);
      ASSERT_TRUE(st.ok()) << st.ToString();
      if (!allow_output_on_records) {
        EXPECT_EQ(out.rows.size(), before) << "output before a watermark";
      }
      batch.Clear();
    };
    for (const Event& e : events) {
      if (e.watermark) {
        flush();
        Status st = op.OnWatermark(e.ts, out);
        ASSERT_TRUE(st.ok()) << st.ToString();
      } else {
        Row& r = batch.Append(3);
        r[0].SetString(e.key);
        r[1].SetTimestamp(e.ts);
        r[2].SetInt64(e.v);
      }
    }
    flush();
  }

  void SnapshotAndRestore(const char* config, const char* type = "window_aggregate",
                          bool windowed = false);
  void RestoreRescaled(const char* config, const char* type = "window_aggregate",
                       bool windowed = false);
};

const char kConfig[] =
    "{key: [k], time_field: ts, size: 10s, aggregations: [{fn: count, as: n}, "
    "{fn: sum, field: v, as: s}, {fn: min, field: v, as: lo}, {fn: max, field: v, as: hi}, "
    "{fn: avg, field: v, as: mean}]}";

// Sliding windows of 10 s every 5 s, and sessions with a gap of 10 s, with kConfig's aggregates.
const char kSliding[] =
    "{key: [k], time_field: ts, size: 10s, slide: 5s, aggregations: [{fn: count, as: n}, "
    "{fn: sum, field: v, as: s}, {fn: min, field: v, as: lo}, {fn: max, field: v, as: hi}, "
    "{fn: avg, field: v, as: mean}]}";
const char kSession[] =
    "{key: [k], time_field: ts, session_gap: 10s, aggregations: [{fn: count, as: n}, "
    "{fn: sum, field: v, as: s}, {fn: min, field: v, as: lo}, {fn: max, field: v, as: hi}, "
    "{fn: avg, field: v, as: mean}]}";

// Row::ToString of an output row: k, window_start, window_end, n, s, lo, hi, mean.
std::string Out(const std::string& k, int64_t start, int64_t end, int64_t n, int64_t s, int64_t lo,
                int64_t hi) {
  Row r(8);
  r[0].SetString(k);
  r[1].SetTimestamp(start);
  r[2].SetTimestamp(end);
  r[3].SetInt64(n);
  r[4].SetInt64(s);
  r[5].SetInt64(lo);
  r[6].SetInt64(hi);
  r[7].SetDouble(static_cast<double>(s) / static_cast<double>(n));
  return r.ToString();
}
// A 10 s window starting at `start`.
std::string Out(const std::string& k, int64_t start, int64_t n, int64_t s, int64_t lo, int64_t hi) {
  return Out(k, start, start + 10000, n, s, lo, hi);
}

TEST_P(WindowAggregateTest, SchemaAndConfigErrors) {
  const OperatorFactory* f = BuiltinOperators().Find("window_aggregate");
  ASSERT_NE(f, nullptr);
  auto schema = f->Validate(*Config::Parse(kConfig, "c"), InputSchema());
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(schema->ToString(),
            "k:string, window_start:timestamp, window_end:timestamp, n:int64, s:int64, "
            "lo:int64, hi:int64, mean:double");
  EXPECT_EQ(f->RequiredInputKey(*Config::Parse(kConfig, "c")), std::vector<std::string>{"k"});
  auto err = [&](const std::string& yaml) {
    auto r = f->Validate(*Config::Parse(yaml, "vertex 'w': config"), InputSchema());
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_THAT(err("{key: [k], size: 1s, aggregations: [{fn: count}]}"), HasSubstr("time_field"));
  EXPECT_THAT(err("{key: [k], time_field: k, size: 1s, aggregations: [{fn: count}]}"),
              HasSubstr("config.time_field: 'k' must be a timestamp or int64"));
  EXPECT_THAT(err("{key: [k], time_field: nope, size: 1s, aggregations: [{fn: count}]}"),
              HasSubstr("config.time_field: unknown field 'nope'"));
  EXPECT_THAT(err("{key: [k], time_field: ts, aggregations: [{fn: count}]}"), HasSubstr("size"));
  EXPECT_THAT(err("{key: [k], time_field: ts, size: 0s, aggregations: [{fn: count}]}"),
              HasSubstr("config.size: must be positive"));
  EXPECT_THAT(err("{key: [k], time_field: ts, size: 1s, allowed_lateness: -5, aggregations: [{fn: "
                  "count}]}"),
              HasSubstr("config.allowed_lateness"));
  EXPECT_THAT(err("{key: [], time_field: ts, size: 1s, aggregations: [{fn: count}]}"),
              HasSubstr("config.key"));
  EXPECT_THAT(err("{key: [k], time_field: ts, size: 1s, aggregations: [{fn: median, field: v}]}"),
              HasSubstr("unknown aggregate 'median'"));
  EXPECT_THAT(err("{key: [k], time_field: ts, size: 1s, window: 3, aggregations: [{fn: count}]}"),
              HasSubstr("window"));

  // The job graph requires a hash input by the key.
  auto spec = ParseJobFile(R"Y(
vertices:
  - {id: gen, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"}, {name: ts, expr: "to_timestamp(id * 1000)"}]}}
  - {id: w, type: window_aggregate, config: {key: [k], time_field: ts, size: 5s, aggregations: [{fn: count}]}}
  - {id: out, type: blackhole}
edges:
  - {from: gen, to: w}
  - {from: w, to: out}
)Y");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  auto plan = BuildPlan(*spec, BuiltinOperators());
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("hash-partitioned"));
}

TEST_P(WindowAggregateTest, EmitsEachWindowOnceWhenTheWatermarkPassesItsEnd) {
  auto op = Make("window_aggregate", kConfig);
  Collect out;
  Feed(*op,
       {Rec("a", 1000, 5), Rec("b", 2000, 7), Rec("a", 9999, 1), Rec("a", 10000, 100),
        // Out of order, but not late: the watermark is still before the window's end.
        Rec("a", 3000, 3), Rec("b", -1, 4)},
       out);
  EXPECT_TRUE(out.rows.empty());
  Feed(*op, {Wm(9998)}, out);
  // [0, 10000) ends at 9999; [-10000, 0) at -1.
  EXPECT_THAT(out.rows, ElementsAre(Out("b", -10000, 1, 4, 4, 4)));
  out.rows.clear();
  Feed(*op, {Wm(9999)}, out);
  EXPECT_THAT(out.rows,
              UnorderedElementsAreArray({Out("a", 0, 3, 9, 1, 5), Out("b", 0, 1, 7, 7, 7)}));
  out.rows.clear();
  Feed(*op, {Wm(9999), Wm(15000), Rec("a", 19999, 1)}, out);
  EXPECT_TRUE(out.rows.empty());  // fired windows do not fire again
  Feed(*op, {Wm(25000)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 10000, 2, 101, 1, 100)));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
  // Nothing left: the end of input emits nothing more.
  out.rows.clear();
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_TRUE(out.rows.empty());
  ASSERT_TRUE(op->Close().ok());
}

TEST_P(WindowAggregateTest, LateRecordsAreDroppedAndCounted) {
  auto op = Make("window_aggregate", kConfig);
  Collect out;
  Feed(*op, {Rec("a", 1000, 5), Wm(10500), Rec("a", 9000, 1), Rec("b", 0, 1), Rec("a", 10001, 2)},
       out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 0, 1, 5, 5, 5)));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 2);
  out.rows.clear();
  // End of input: the open window fires (Finish acts as the final watermark).
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 10000, 1, 2, 2, 2)));
}

TEST_P(WindowAggregateTest, LateRecordsGoToTheLateSideOutputUnchanged) {
  Collect late;
  auto op = Make("window_aggregate", kConfig, {0, kMaxParallelism - 1}, nullptr, &late);
  Collect out;
  Feed(*op, {Rec("a", 1000, 5), Wm(10500), Rec("a", 9000, 7), Rec("b", 0, 3), Rec("a", 10001, 2)},
       out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 0, 1, 5, 5, 5)));
  Schema in = InputSchema();
  RowBatch expect;
  for (auto [k, ts, v] : {std::tuple<const char*, int64_t, int64_t>{"a", 9000, 7}, {"b", 0, 3}}) {
    Row& r = expect.Append(3);
    r[0].SetString(k);
    r[1].SetTimestamp(ts);
    r[2].SetInt64(v);
  }
  EXPECT_THAT(late.rows, ElementsAre(expect[0].ToString(), expect[1].ToString()));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 2);
  // The side output is declared with the input's schema, and the job graph wires it.
  const OperatorFactory* f = BuiltinOperators().Find("window_aggregate");
  auto config = Config::Parse(kConfig, "vertex 'w': config");
  ASSERT_TRUE(config.ok());
  auto outs = f->SideOutputs(*config, in);
  ASSERT_TRUE(outs.ok());
  ASSERT_EQ(outs->size(), 1u);
  EXPECT_EQ((*outs)[0].name, "late");
  EXPECT_EQ((*outs)[0].schema.ToString(), in.ToString());
  ASSERT_TRUE(op->Close().ok());
}

TEST_P(WindowAggregateTest, RowsWithoutAUsableTimeAreDropped) {
  auto op = Make("window_aggregate", kConfig);
  Collect out;
  RowBatch batch;
  for (int i = 0; i < 3; ++i) {
    Row& r = batch.Append(3);
    r[0].SetString("a");
    if (i == 0) r[1].SetNull();
    if (i == 1) r[1].SetTimestamp(std::numeric_limits<int64_t>::min());
    if (i == 2) r[1].SetTimestamp(5);
    r[2].SetInt64(1);
  }
  ASSERT_TRUE(op->Process(batch, out).ok());
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 0, 1, 1, 1, 1)));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
}

TEST_P(WindowAggregateTest, AllowedLatenessUpdatesAFiredWindowUntilCleanup) {
  auto op = Make("window_aggregate",
                 "{key: [k], time_field: ts, size: 10s, allowed_lateness: 5s, aggregations: "
                 "[{fn: count, as: n}, {fn: sum, field: v, as: s}, {fn: min, field: v, as: lo}, "
                 "{fn: max, field: v, as: hi}, {fn: avg, field: v, as: mean}]}");
  Collect out;
  Feed(*op, {Rec("a", 1000, 5), Wm(12000)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 0, 1, 5, 5, 5)));
  out.rows.clear();
  // Within the lateness: the window's updated result goes out at once.
  Feed(*op, {Rec("a", 2000, 1)}, out, /*allow_output_on_records=*/true);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 0, 2, 6, 1, 5)));
  out.rows.clear();
  // A window that had nothing yet, already past its end but within the lateness: one row now,
  // none again at the next watermark.
  Feed(*op, {Rec("b", 3000, 9)}, out, true);
  EXPECT_THAT(out.rows, ElementsAre(Out("b", 0, 1, 9, 9, 9)));
  out.rows.clear();
  Feed(*op, {Wm(13000)}, out);
  EXPECT_TRUE(out.rows.empty());
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
  // Past window end - 1 + lateness: the state is gone and records for it are late.
  Feed(*op, {Wm(14999), Rec("a", 4000, 1)}, out);
  EXPECT_TRUE(out.rows.empty());
  EXPECT_EQ(metrics_.late_records_dropped.load(), 1);
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_TRUE(out.rows.empty());
}

TEST_P(WindowAggregateTest, SlidingWindowsTakeEachRowInEveryWindowHoldingIt) {
  Collect late;
  auto op = Make("window_aggregate", kSliding, {0, kMaxParallelism - 1}, nullptr, &late);
  Collect out;
  // 1000 is in [-5000, 5000) and [0, 10000); 7000 in [0, 10000) and [5000, 15000).
  Feed(*op, {Rec("a", 1000, 5), Rec("a", 7000, 1), Rec("b", 5000, 2)}, out);
  Feed(*op, {Wm(4999)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", -5000, 1, 5, 5, 5)));
  out.rows.clear();
  Feed(*op, {Wm(9999)}, out);
  EXPECT_THAT(out.rows,
              UnorderedElementsAreArray({Out("a", 0, 2, 6, 1, 5), Out("b", 0, 1, 2, 2, 2)}));
  out.rows.clear();
  // 8000: [0, 10000) has fired (late for it), [5000, 15000) not: the row counts there only.
  // 4000: both its windows have fired: a late record.
  Feed(*op, {Rec("a", 8000, 3), Rec("a", 4000, 9)}, out);
  EXPECT_EQ(metrics_.late_records_dropped.load(), 1);
  ASSERT_EQ(late.rows.size(), 1u);
  EXPECT_THAT(late.rows[0], HasSubstr("9)"));
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows,
              UnorderedElementsAreArray({Out("a", 5000, 2, 4, 1, 3), Out("b", 5000, 1, 2, 2, 2)}));
}

TEST_P(WindowAggregateTest, SlidingWindowsNeedNotDivideTheSize) {
  // size 10 s, slide 3 s: windows start at multiples of 3 s; 0 is in the 4 windows starting
  // at -9000, -6000, -3000 and 0; 1000 in 3 of them (not the one starting at -9000).
  auto op = Make("window_aggregate",
                 "{key: [k], time_field: ts, size: 10s, slide: 3s, aggregations: [{fn: count, "
                 "as: n}, {fn: sum, field: v, as: s}, {fn: min, field: v, as: lo}, {fn: max, "
                 "field: v, as: hi}, {fn: avg, field: v, as: mean}]}");
  Collect out;
  Feed(*op, {Rec("a", 0, 1), Rec("a", 1000, 2)}, out);
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows, ElementsAre(Out("a", -9000, 1000, 1, 1, 1, 1), Out("a", -6000, 2, 3, 1, 2),
                                    Out("a", -3000, 2, 3, 1, 2), Out("a", 0, 2, 3, 1, 2)));
}

TEST_P(WindowAggregateTest, SessionWindowsMergeAcrossBatches) {
  auto op = Make("window_aggregate", kSession);
  Collect out;
  Feed(*op, {Rec("a", 1000, 5), Rec("b", 0, 4), Rec("a", 5000, 1), Rec("a", 30000, 7)}, out);
  Feed(*op, {Wm(14998)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("b", 0, 10000, 1, 4, 4, 4)));
  out.rows.clear();
  Feed(*op, {Wm(14999)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 1000, 15000, 2, 6, 1, 5)));
  out.rows.clear();
  // Two stored sessions [50000, 60000) and [70000, 82000), then a row that touches both: one
  // session [50000, 82000) with the accumulators of all four rows; the merged-away windows'
  // timers are gone (nothing fires at 59999).
  // (The min and max of the merged session come from the window merged into the first.)
  Feed(*op, {Rec("a", 50000, 3), Rec("a", 70000, 1), Rec("a", 72000, 9)}, out);
  Feed(*op, {Rec("a", 60000, 2)}, out);
  Feed(*op, {Wm(59999)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 30000, 40000, 1, 7, 7, 7)));
  out.rows.clear();
  Feed(*op, {Wm(81998)}, out);
  EXPECT_TRUE(out.rows.empty());
  Feed(*op, {Wm(81999)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 50000, 82000, 4, 15, 1, 9)));
  out.rows.clear();
  // A row before a stored session's start, within the gap: the session starts earlier.
  Feed(*op, {Rec("c", 100000, 1), Rec("c", 95000, 2)}, out);
  Feed(*op, {Rec("c", 91000, 4)}, out);
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows, ElementsAre(Out("c", 91000, 110000, 3, 7, 1, 4)));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
}

TEST_P(WindowAggregateTest, SessionWindowsAllowedLatenessAndLateRecords) {
  Collect late;
  auto op = Make("window_aggregate",
                 "{key: [k], time_field: ts, session_gap: 10s, allowed_lateness: 5s, "
                 "aggregations: [{fn: count, as: n}, {fn: sum, field: v, as: s}, {fn: min, "
                 "field: v, as: lo}, {fn: max, field: v, as: hi}, {fn: avg, field: v, as: mean}]}",
                 {0, kMaxParallelism - 1}, nullptr, &late);
  Collect out;
  Feed(*op, {Rec("a", 1000, 5), Wm(11000)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 1000, 11000, 1, 5, 5, 5)));
  out.rows.clear();
  // Extends the fired session to [1000, 12000): not passed yet, so it fires at 11999.
  Feed(*op, {Rec("a", 2000, 1)}, out);
  EXPECT_TRUE(out.rows.empty());
  Feed(*op, {Wm(11999)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 1000, 12000, 2, 6, 1, 5)));
  out.rows.clear();
  // Merges into the fired session without moving its end: a late firing at once.
  Feed(*op, {Rec("a", 500, 2)}, out, /*allow_output_on_records=*/true);
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 500, 12000, 3, 8, 1, 5)));
  out.rows.clear();
  // Past the session's cleanup (11999 + 5000): late, to the side output.
  Feed(*op, {Wm(20000), Rec("a", 3000, 9)}, out);
  EXPECT_TRUE(out.rows.empty());
  EXPECT_EQ(metrics_.late_records_dropped.load(), 1);
  EXPECT_EQ(late.rows.size(), 1u);
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_TRUE(out.rows.empty());
}

TEST_P(WindowAggregateTest, ProcessingTimeWindowsFireByTheClockAndSurviveARestore) {
  const char cfg[] =
      "{key: [k], time: processing, size: 10s, aggregations: [{fn: count, as: n}, {fn: sum, "
      "field: v, as: s}, {fn: min, field: v, as: lo}, {fn: max, field: v, as: hi}, {fn: avg, "
      "field: v, as: mean}]}";
  Collect out;
  RestoredState restored;
  {
    auto op = Make("window_aggregate", cfg);
    ASSERT_TRUE(op->OnProcessingTime(1000, out).ok());
    // Event times and watermarks do not matter.
    Feed(*op, {Rec("a", 99999999, 1), Rec("a", 0, 2), Wm(kMaxWatermark - 1), Rec("b", 5, 3)}, out);
    ASSERT_TRUE(op->OnProcessingTime(9998, out).ok());
    EXPECT_TRUE(out.rows.empty());
    ASSERT_TRUE(op->OnProcessingTime(9999, out).ok());
    EXPECT_THAT(out.rows,
                UnorderedElementsAreArray({Out("a", 0, 2, 3, 1, 2), Out("b", 0, 1, 3, 3, 3)}));
    out.rows.clear();
    ASSERT_TRUE(op->OnProcessingTime(12000, out).ok());
    Feed(*op, {Rec("a", 0, 4)}, out);
    restored = TakeSnapshot(*op, 1);
  }
  auto op = Make("window_aggregate", cfg, {0, kMaxParallelism - 1}, &restored);
  ASSERT_TRUE(op->OnProcessingTime(15000, out).ok());
  Feed(*op, {Rec("a", 0, 6)}, out);
  ASSERT_TRUE(op->OnProcessingTime(20000, out).ok());
  EXPECT_THAT(out.rows, ElementsAre(Out("a", 10000, 2, 10, 4, 6)));
  out.rows.clear();
  ASSERT_TRUE(op->OnProcessingTime(21000, out).ok());
  Feed(*op, {Rec("b", 0, 1)}, out);
  ASSERT_TRUE(op->Finish(out).ok());  // the open window fires at the end of input
  EXPECT_THAT(out.rows, ElementsAre(Out("b", 20000, 1, 1, 1, 1)));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 0);
}

TEST_P(WindowAggregateTest, WindowKindConfigErrorsNameTheField) {
  const OperatorFactory* f = BuiltinOperators().Find("window_aggregate");
  auto err = [&](const std::string& yaml) {
    auto r = f->Validate(*Config::Parse(yaml, "vertex 'w': config"), InputSchema());
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? std::string() : r.status().message();
  };
  const std::string aggs = ", aggregations: [{fn: count}]}";
  const std::pair<const char*, const char*> cases[] = {
      {"{key: [k], time_field: ts, session_gap: 0s", "config.session_gap: must be positive"},
      {"{key: [k], time_field: ts, session_gap: -3s", "config.session_gap"},
      {"{key: [k], time_field: ts, size: 10s, slide: 0s", "config.slide: must be positive"},
      {"{key: [k], time_field: ts, size: 10s, slide: 11s",
       "config.slide: 11000 ms is more than size (10000 ms)"},
      {"{key: [k], time_field: ts, slide: 1s", "config.size: required"},
      {"{key: [k], time_field: ts, session_gap: 1s, slide: 1s",
       "config.slide: not with session_gap"},
      {"{key: [k], time_field: ts, session_gap: 1s, size: 1s", "config.size: not with session_gap"},
      {"{key: [k], time: processing, time_field: ts, size: 1s",
       "config.time_field: not with time: processing"},
      {"{key: [k], time: processing, size: 1s, allowed_lateness: 1s",
       "config.allowed_lateness: not with time: processing"},
      {"{key: [k], time: processing, session_gap: 1s",
       "config.session_gap: not with time: processing"},
      {"{key: [k], time: wall, size: 1s", "config.time: expected event or processing, got 'wall'"},
  };
  for (const auto& [yaml, want] : cases) EXPECT_THAT(err(yaml + aggs), HasSubstr(want));
  // Accepted: slide == size (tumbling), processing time without time_field.
  for (const char* ok :
       {"{key: [k], time_field: ts, size: 10s, slide: 10s, aggregations: [{fn: count}]}",
        "{key: [k], time: processing, size: 10s, aggregations: [{fn: count}]}"}) {
    auto r = f->Validate(*Config::Parse(ok, "c"), InputSchema());
    EXPECT_TRUE(r.ok()) << ok << ": " << r.status().ToString();
  }
}

// A stream of records and watermarks over several keys and windows, out of order within 3 s.
std::vector<Event> Stream() {
  std::vector<Event> events;
  for (int i = 0; i < 600; ++i) {
    const int64_t ts = i * 200 - (i % 7) * 400;  // up to 2.4 s out of order
    // A pause of 16 s in every 64 s, so that sessions (gap 10 s) end and fire mid-stream.
    if ((i / 80) % 4 == 3) {
      if (i % 25 == 24) events.push_back(Wm(i * 200 - 3000));
      continue;
    }
    events.push_back(Rec("key-" + std::to_string(i % 13), ts, i));
    if (i % 25 == 24) events.push_back(Wm(i * 200 - 3000));
    if (i % 97 == 0) events.push_back(Rec("late", i * 200 - 20000, 1));  // late after the start
  }
  return events;
}

// Stream() with each record's time moved up to the end of its 10 s window, as top_n's input
// (rows of one key and window share a partition).
std::vector<Event> Windowed(std::vector<Event> events) {
  for (Event& e : events) {
    if (!e.watermark) e.ts = e.ts - ((e.ts % 10000) + 10000) % 10000 + 10000;
  }
  return events;
}

TEST_P(WindowAggregateTest, SnapshotAndRestoreMidWindowGivesTheSameOutput) {
  for (const char* config : {kConfig, kSliding, kSession}) SnapshotAndRestore(config);
}

TEST_P(WindowAggregateTest, RestoreIntoTwoSubtasksSplitsWindowsByKeyGroup) {
  for (const char* config : {kConfig, kSliding, kSession}) RestoreRescaled(config);
}

void WindowAggregateTest::SnapshotAndRestore(const char* kConfig, const char* type, bool windowed) {
  SCOPED_TRACE(kConfig);
  const std::vector<Event> events = windowed ? Windowed(Stream()) : Stream();
  const bool eager = std::string(type) == "dedup";  // keep first emits on records
  Collect expected;
  {
    auto op = Make(type, kConfig);
    Feed(*op, events, expected, eager);
    ASSERT_TRUE(op->Finish(expected).ok());
  }
  ASSERT_GT(expected.rows.size(), 20u);
  const int64_t late = metrics_.late_records_dropped.exchange(0);
  EXPECT_GT(late, 0);

  for (size_t cut : {size_t{137}, size_t{301}, events.size() - 1}) {
    Collect got;
    RestoredState restored;
    {
      auto op = Make(type, kConfig);
      Feed(*op, std::vector<Event>(events.begin(), events.begin() + cut), got, eager);
      restored = TakeSnapshot(*op, 1);
      // Work after the snapshot is lost with the failure.
      Collect lost;
      Feed(*op, std::vector<Event>(events.begin() + cut, events.end()), lost, eager);
      ASSERT_TRUE(op->Close().ok());
    }
    auto op = Make(type, kConfig, {0, kMaxParallelism - 1}, &restored);
    Feed(*op, std::vector<Event>(events.begin() + cut, events.end()), got, eager);
    ASSERT_TRUE(op->Finish(got).ok());
    EXPECT_EQ(got.rows, expected.rows) << "cut at " << cut;
  }
  (void)late;
}

void WindowAggregateTest::RestoreRescaled(const char* kConfig, const char* type, bool windowed) {
  SCOPED_TRACE(kConfig);
  const std::vector<Event> events = windowed ? Windowed(Stream()) : Stream();
  const bool eager = std::string(type) == "dedup";
  Collect expected;
  {
    auto op = Make(type, kConfig);
    Feed(*op, events, expected, eager);
    ASSERT_TRUE(op->Finish(expected).ok());
  }
  const size_t cut = 280;
  Collect got;
  RestoredState restored;
  {
    auto op = Make(type, kConfig);
    Feed(*op, std::vector<Event>(events.begin(), events.begin() + cut), got, eager);
    restored = TakeSnapshot(*op, 1);
  }
  for (int sub = 0; sub < 2; ++sub) {
    const KeyGroupRange r = KeyGroupRangeFor(sub, kMaxParallelism, 2);
    auto op = Make(type, kConfig, r, &restored);
    // As a hash edge would: this subtask's keys, and every watermark.
    std::vector<Event> mine;
    for (size_t i = cut; i < events.size(); ++i) {
      const Event& e = events[i];
      // top_n's partition is (k, ts).
      const int group = windowed ? KeyGroupForHash(HashValue(Value::Timestamp(e.ts),
                                                             HashValue(Value::String(e.key), 0)),
                                                   kMaxParallelism)
                                 : GroupOfKey(e.key);
      if (e.watermark || r.Contains(group)) mine.push_back(e);
    }
    Feed(*op, mine, got, eager);
    ASSERT_TRUE(op->Finish(got).ok());
  }
  EXPECT_THAT(got.rows, UnorderedElementsAreArray(expected.rows));
}

TEST_P(WindowAggregateTest, KeyedAggregateRestoresItsTypedState) {
  const char cfg[] =
      "{key: [k], emit: final, aggregations: [{fn: count, as: n}, {fn: sum, field: v, as: s}]}";
  RestoredState restored;
  {
    auto op = Make("keyed_aggregate", cfg);
    Collect ignored;
    Feed(*op, {Rec("a", 0, 1), Rec("b", 0, 2), Rec("a", 0, 3)}, ignored, true);
    restored = TakeSnapshot(*op, 1);
  }
  Collect out;
  for (int sub = 0; sub < 2; ++sub) {
    const KeyGroupRange r = KeyGroupRangeFor(sub, kMaxParallelism, 2);
    auto op = Make("keyed_aggregate", cfg, r, &restored);
    std::vector<Event> mine;
    for (const Event& e : {Rec("a", 0, 10), Rec("c", 0, 5)}) {
      if (r.Contains(GroupOfKey(e.key))) mine.push_back(e);
    }
    Feed(*op, mine, out, true);
    ASSERT_TRUE(op->Finish(out).ok());
  }
  EXPECT_THAT(out.rows, UnorderedElementsAreArray({"(a, 3, 14)", "(b, 1, 2)", "(c, 1, 5)"}));
}

TEST_P(WindowAggregateTest, KeyedAggregateStateTtlForgetsIdleKeys) {
  const char cfg[] = "{key: [k], state_ttl: 10s, aggregations: [{fn: count, as: n}]}";
  Collect out;
  Collect ignored;
  auto feed = [&](Operator& op, int64_t now, std::vector<Event> events) {
    ASSERT_TRUE(op.OnProcessingTime(now, ignored).ok());
    EXPECT_TRUE(ignored.rows.empty());
    Feed(op, events, out, /*allow_output_on_records=*/true);
  };
  RestoredState restored;
  {
    auto op = Make("keyed_aggregate", cfg);
    feed(*op, 1000, {Rec("a", 0), Rec("b", 0)});
    feed(*op, 6000, {Rec("a", 0)});
    // 11000: both keys' timers (set at 1000) fire; b was idle for 10 s, a only for 5 s.
    feed(*op, 11000, {Rec("b", 0), Rec("a", 0)});
    EXPECT_THAT(out.rows, ElementsAre("(a, 1)", "(b, 1)", "(a, 2)", "(b, 1)", "(a, 3)"));
    out.rows.clear();
    restored = TakeSnapshot(*op, 1);
  }
  // The TTL timers are restored with the state: a (last seen at 11000) is still there at 20999
  // (its timer at 16000 was set again); by 31000 both a (last seen 20999) and b (11000) are
  // gone.
  auto op = Make("keyed_aggregate", cfg, {0, kMaxParallelism - 1}, &restored);
  feed(*op, 20999, {Rec("a", 0)});
  feed(*op, 31000, {Rec("b", 0)});
  feed(*op, 31001, {Rec("a", 0)});
  EXPECT_THAT(out.rows, ElementsAre("(a, 4)", "(b, 1)", "(a, 1)"));

  const OperatorFactory* f = BuiltinOperators().Find("keyed_aggregate");
  auto bad = f->Validate(*Config::Parse("{key: [k], state_ttl: 0s, aggregations: [{fn: count}]}",
                                        "vertex 'agg': config"),
                         InputSchema());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("vertex 'agg': config.state_ttl: must be positive"));
}

TEST_P(WindowAggregateTest, KeyedAggregateStateTtlEmitFinalSkipsExpiredKeys) {
  auto op = Make("keyed_aggregate",
                 "{key: [k], emit: final, state_ttl: 1s, aggregations: [{fn: count, as: n}]}");
  Collect out;
  ASSERT_TRUE(op->OnProcessingTime(100, out).ok());
  Feed(*op, {Rec("old", 0)}, out);
  ASSERT_TRUE(op->OnProcessingTime(900, out).ok());
  Feed(*op, {Rec("new", 0)}, out);
  ASSERT_TRUE(op->OnProcessingTime(1099, out).ok());
  EXPECT_TRUE(out.rows.empty());
  ASSERT_TRUE(op->OnProcessingTime(1100, out).ok());  // old: idle since 100
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows, ElementsAre("(new, 1)"));
}

TEST_P(WindowAggregateTest, KeyedAggregateAvgOverNullKeepsLaterAggregatesInPlace) {
  // Before the aggregations moved to aggregation.cc, an avg over a null value left the next
  // aggregate reading the avg's count slot.
  auto op = Make("keyed_aggregate",
                 "{key: [k], aggregations: [{fn: avg, field: v, as: mean}, {fn: count, as: n}, "
                 "{fn: sum, field: v, as: s}]}");
  Collect out;
  RowBatch batch;
  for (int i = 0; i < 3; ++i) {
    Row& r = batch.Append(3);
    r[0].SetString("a");
    r[1].SetTimestamp(0);
    if (i == 1) {
      r[2].SetNull();
    } else {
      r[2].SetInt64(i == 0 ? 4 : 8);
    }
  }
  ASSERT_TRUE(op->Process(batch, out).ok());
  EXPECT_THAT(out.rows, ElementsAre("(a, 4, 1, 4)", "(a, 4, 2, 4)", "(a, 6, 3, 12)"));
}

// ---- count_distinct

TEST_P(WindowAggregateTest, CountDistinctCountsNonNullValuesPerWindow) {
  auto op = Make("window_aggregate",
                 "{key: [k], time_field: ts, size: 10s, aggregations: [{fn: count, as: n}, "
                 "{fn: count_distinct, field: v, as: d}]}");
  Collect out;
  RowBatch batch;
  auto row = [&](const char* k, int64_t ts, std::optional<int64_t> v) {
    Row& r = batch.Append(3);
    r[0].SetString(k);
    r[1].SetTimestamp(ts);
    if (v) {
      r[2].SetInt64(*v);
    } else {
      r[2].SetNull();
    }
  };
  row("a", 1000, 5);
  row("a", 2000, 5);
  row("a", 3000, std::nullopt);  // not counted, as SQL's COUNT(DISTINCT v)
  row("a", 4000, 6);
  row("b", 4000, 5);
  row("b", 5000, std::nullopt);
  ASSERT_TRUE(op->Process(batch, out).ok());
  batch.Clear();
  row("a", 5000, 6);  // a later batch: seen in state
  row("a", 6000, 7);
  row("a", 12000, 5);  // the next window counts 5 again
  ASSERT_TRUE(op->Process(batch, out).ok());
  ASSERT_TRUE(op->OnWatermark(9999, out).ok());
  auto want = [](const char* k, int64_t start, int64_t n, int64_t d) {
    Row r(5);
    r[0].SetString(k);
    r[1].SetTimestamp(start);
    r[2].SetTimestamp(start + 10000);
    r[3].SetInt64(n);
    r[4].SetInt64(d);
    return r.ToString();
  };
  EXPECT_THAT(out.rows, UnorderedElementsAre(want("a", 0, 6, 3), want("b", 0, 2, 1)));
  out.rows.clear();
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows, ElementsAre(want("a", 10000, 1, 1)));
}

// count_distinct keeps the values it has seen per (key, window) in memory, bounded by the state
// cache budget: with a budget too small for them (dropped again and again mid-window) the
// counts are the same, and both match a brute-force count.
TEST_P(WindowAggregateTest, CountDistinctIsExactWhateverItsMemoryBudget) {
  const char* config =
      "{key: [k], time_field: ts, size: 10s, slide: 5s, aggregations: [{fn: count, as: n}, "
      "{fn: count_distinct, field: v, as: d}]}";
  struct Window {
    int64_t n = 0;
    std::set<int64_t> values;
  };
  std::map<std::pair<std::string, int64_t>, Window> want;  // (key, start)
  auto run = [&](size_t budget) {
    want.clear();
    auto op = Make("window_aggregate", config, {0, kMaxParallelism - 1}, nullptr, nullptr, budget);
    Collect out;
    RowBatch batch;
    for (int64_t i = 0; i < 3000; ++i) {
      const std::string k = i % 3 == 0 ? "a" : "b";
      const int64_t ts = i * 10, v = (i * 7919) % 211;
      Row& r = batch.Append(3);
      r[0].SetString(k);
      r[1].SetTimestamp(ts);
      r[2].SetInt64(v);
      for (int64_t start = ts / 5000 * 5000; start > ts - 10000; start -= 5000) {
        Window& w = want[{k, start}];
        ++w.n;
        w.values.insert(v);
      }
      if (i % 97 == 96) {  // batches of 97 rows, the watermark 2 s behind
        EXPECT_TRUE(op->Process(batch, out).ok());
        batch.Clear();
        EXPECT_TRUE(op->OnWatermark(ts - 2000, out).ok());
      }
    }
    EXPECT_TRUE(op->Process(batch, out).ok());
    EXPECT_TRUE(op->OnWatermark(kMaxWatermark, out).ok());
    EXPECT_TRUE(op->Finish(out).ok());
    std::sort(out.rows.begin(), out.rows.end());
    return out.rows;
  };
  const auto roomy = run(32 << 20);
  const auto tiny = run(300);
  std::vector<std::string> expected;
  for (const auto& [kw, w] : want) {
    Row r(5);
    r[0].SetString(kw.first);
    r[1].SetTimestamp(kw.second);
    r[2].SetTimestamp(kw.second + 10000);
    r[3].SetInt64(w.n);
    r[4].SetInt64(static_cast<int64_t>(w.values.size()));
    expected.push_back(r.ToString());
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_GT(expected.size(), 10u);
  EXPECT_EQ(roomy, expected);
  EXPECT_EQ(tiny, expected);
}

const char kDistinct[] =
    "{key: [k], time_field: ts, size: 10s, slide: 5s, allowed_lateness: 2s, aggregations: "
    "[{fn: count, as: n}, {fn: count_distinct, field: v, as: d}, {fn: avg, field: v, as: m}]}";

TEST_P(WindowAggregateTest, CountDistinctSurvivesRestoreAndRescale) {
  SnapshotAndRestore(kDistinct);
  RestoreRescaled(kDistinct);
}

TEST_P(WindowAggregateTest, CountDistinctConfigErrorsNameTheField) {
  Schema in = InputSchema();
  in.Add("x", Type::kDouble);
  auto err = [&](const char* type, const std::string& yaml) {
    const OperatorFactory* f = BuiltinOperators().Find(type);
    auto r = f->Validate(*Config::Parse(yaml, "vertex 'w': config"), in);
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_THAT(err("window_aggregate",
                  "{key: [k], time_field: ts, size: 1s, aggregations: "
                  "[{fn: count_distinct, field: x}]}"),
              HasSubstr("config.aggregations[0].field: count_distinct needs"));
  EXPECT_THAT(err("window_aggregate",
                  "{key: [k], time_field: ts, session_gap: 1s, "
                  "aggregations: [{fn: count_distinct, field: v}]}"),
              HasSubstr("config.aggregations: count_distinct only with event-time tumbling"));
  EXPECT_THAT(err("keyed_aggregate", "{key: [k], aggregations: [{fn: count_distinct, field: v}]}"),
              HasSubstr("config.aggregations: count_distinct only in window_aggregate"));
  EXPECT_THAT(err("window_aggregate",
                  "{key: [k], time_field: ts, size: 1s, aggregations: "
                  "[{fn: count_distinct}]}"),
              HasSubstr("field"));
}

// ---- dedup

std::string In(const std::string& k, int64_t ts, int64_t v) {
  Row r(3);
  r[0].SetString(k);
  r[1].SetTimestamp(ts);
  r[2].SetInt64(v);
  return r.ToString();
}

TEST_P(WindowAggregateTest, DedupKeepFirstEmitsAtOnceAndDropsTheRestOfTheScope) {
  Collect late;
  auto op = Make("dedup", "{key: [k], time_field: ts, ttl: 10s}", {0, kMaxParallelism - 1}, nullptr,
                 &late);
  Collect out;
  Feed(*op, {Rec("a", 1000, 1), Rec("a", 500, 2), Rec("b", 3000, 3), Rec("a", 12000, 4)}, out,
       true);
  EXPECT_THAT(out.rows, ElementsAre(In("a", 1000, 1), In("b", 3000, 3), In("a", 12000, 4)));
  out.rows.clear();
  Feed(*op, {Wm(9000), Rec("a", 9500, 5), Rec("b", 19000, 6)}, out, true);
  EXPECT_THAT(out.rows, ElementsAre(In("b", 19000, 6)));  // a's scope [0, 10 s) is still open
  out.rows.clear();
  Feed(*op, {Wm(9999), Rec("a", 9999, 7), Rec("a", 15000, 8), Rec("c", 20000, 9)}, out, true);
  EXPECT_THAT(out.rows, ElementsAre(In("c", 20000, 9)));
  EXPECT_THAT(late.rows, ElementsAre(In("a", 9999, 7)));  // its scope ended
  EXPECT_EQ(metrics_.late_records_dropped.load(), 1);
  out.rows.clear();
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_TRUE(out.rows.empty());
}

TEST_P(WindowAggregateTest, DedupKeepLastEmitsTheLatestRowWhenTheScopeEnds) {
  auto op = Make("dedup", "{key: [k], time_field: ts, ttl: 10s, keep: last}");
  Collect out;
  Feed(*op, {Rec("a", 1000, 1), Rec("a", 3000, 2), Rec("a", 2000, 3), Rec("b", 1000, 4)}, out);
  // A later batch: an equal time replaces (the last to arrive), an earlier one does not.
  Feed(*op, {Rec("a", 3000, 5), Rec("a", 2500, 6), Rec("a", 10000, 7)}, out);
  EXPECT_TRUE(out.rows.empty());
  Feed(*op, {Wm(9999)}, out);
  EXPECT_THAT(out.rows, UnorderedElementsAre(In("a", 3000, 5), In("b", 1000, 4)));
  out.rows.clear();
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows, ElementsAre(In("a", 10000, 7)));
}

TEST_P(WindowAggregateTest, DedupAndTopNConfigErrorsNameTheField) {
  Schema in = InputSchema();
  in.Add("flag", Type::kBool);
  auto err = [&](const char* type, const std::string& yaml) {
    const OperatorFactory* f = BuiltinOperators().Find(type);
    EXPECT_NE(f, nullptr);
    auto r = f->Validate(*Config::Parse(yaml, "vertex 'w': config"), in);
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_THAT(err("dedup", "{key: [k], time_field: ts, ttl: 0s}"),
              HasSubstr("config.ttl: must be positive"));
  EXPECT_THAT(err("dedup", "{key: [k], time_field: ts}"), HasSubstr("config.ttl: required"));
  EXPECT_THAT(err("dedup", "{key: [k], time_field: ts, ttl: 1s, keep: middle}"),
              HasSubstr("config.keep: expected first or last"));
  EXPECT_THAT(err("dedup", "{key: [k], time_field: ts, ttl: 1s, time: processing}"),
              HasSubstr("config.time: only event"));
  EXPECT_THAT(err("dedup", "{key: [nope], time_field: ts, ttl: 1s}"),
              HasSubstr("config.key: unknown field 'nope'"));
  EXPECT_THAT(err("dedup", "{key: [k], time_field: k, ttl: 1s}"),
              HasSubstr("config.time_field: 'k' must be a timestamp"));
  EXPECT_THAT(err("dedup", "{key: [k], time_field: ts, ttl: 1s, size: 3}"), HasSubstr("size"));
  const char* ok = "{partition_by: [k, ts], time_field: ts, order_by: v, n: 3";
  EXPECT_THAT(err("top_n", "{partition_by: [k, ts], time_field: ts, order_by: v, n: 0}"),
              HasSubstr("config.n: must be from 1"));
  EXPECT_THAT(err("top_n", "{partition_by: [k, ts], time_field: ts, order_by: [v up], n: 1}"),
              HasSubstr("config.order_by: 'v up': expected a field, then asc or desc"));
  EXPECT_THAT(err("top_n", "{partition_by: [k, ts], time_field: ts, order_by: [v, v desc], n: 1}"),
              HasSubstr("config.order_by: 'v' is listed twice"));
  EXPECT_THAT(err("top_n", "{partition_by: [k, ts], time_field: ts, order_by: flag, n: 1}"),
              HasSubstr("config.order_by: 'flag' must be an int64, double, timestamp or string"));
  EXPECT_THAT(err("top_n", "{partition_by: [k], time_field: ts, order_by: v, n: 1}"),
              HasSubstr("config.time_field: 'ts' must be one of partition_by"));
  EXPECT_THAT(err("top_n", "{partition_by: [k, ts], order_by: v, n: 1}"),
              HasSubstr("config.time_field: unknown field 'window_end'"));
  EXPECT_THAT(err("top_n",
                  "{partition_by: [k, ts], time_field: ts, order_by: v, n: 1, "
                  "order: up}"),
              HasSubstr("config.order: expected asc or desc"));
  EXPECT_THAT(err("top_n",
                  "{partition_by: [k, ts], time_field: ts, order_by: v, n: 1, "
                  "rank_field: v}"),
              HasSubstr("config.rank_field: 'v' must be a new"));
  EXPECT_THAT(err("top_n", "{partition_by: [k, ts], time_field: ts, order_by: v, n: 1, top: 2}"),
              HasSubstr("top"));
  const OperatorFactory* f = BuiltinOperators().Find("top_n");
  auto schema = f->Validate(*Config::Parse(std::string(ok) + ", rank_field: r}", "c"), in);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(schema->ToString(), "k:string, ts:timestamp, v:int64, flag:bool, r:int64");
  EXPECT_EQ(f->RequiredInputKey(*Config::Parse(std::string(ok) + "}", "c")),
            (std::vector<std::string>{"k", "ts"}));
}

// ---- top_n

const char kTopN[] = "{partition_by: [k, ts], time_field: ts, order_by: v, n: 2, rank_field: r}";

std::string Ranked(const std::string& k, int64_t ts, int64_t v, int64_t rank) {
  Row r(4);
  r[0].SetString(k);
  r[1].SetTimestamp(ts);
  r[2].SetInt64(v);
  r[3].SetInt64(rank);
  return r.ToString();
}

TEST_P(WindowAggregateTest, TopNEmitsTheBestRowsOfAPartitionWhenItEnds) {
  Collect late;
  auto op = Make("top_n", kTopN, {0, kMaxParallelism - 1}, nullptr, &late);
  Collect out;
  Feed(*op, {Rec("a", 10000, 5), Rec("a", 10000, 9), Rec("b", 10000, 1), Rec("a", 20000, 4)}, out);
  Feed(*op, {Rec("a", 10000, 7), Rec("a", 10000, 8), Rec("a", 10000, 2)}, out);
  Feed(*op, {Wm(9999)}, out);
  EXPECT_THAT(out.rows, UnorderedElementsAre(Ranked("a", 10000, 9, 1), Ranked("a", 10000, 8, 2),
                                             Ranked("b", 10000, 1, 1)));
  out.rows.clear();
  Feed(*op, {Rec("a", 10000, 100)}, out);  // its partition has ended: late
  EXPECT_THAT(late.rows, ElementsAre(In("a", 10000, 100)));
  EXPECT_EQ(metrics_.late_records_dropped.load(), 1);
  ASSERT_TRUE(op->Finish(out).ok());
  EXPECT_THAT(out.rows, ElementsAre(Ranked("a", 20000, 4, 1)));
}

TEST_P(WindowAggregateTest, TopNWithTiesKeepsEveryRowEqualToTheLast) {
  auto op = Make("top_n",
                 "{partition_by: [ts], time_field: ts, order_by: v, order: asc, n: 1, "
                 "with_ties: true, rank_field: r}");
  Collect out;
  Feed(*op, {Rec("c", 10000, 3), Rec("a", 10000, 3), Rec("b", 10000, 5)}, out);
  Feed(*op, {Rec("d", 10000, 3), Rec("e", 10000, 4), Wm(9999)}, out);
  // Tied rows in the order of their other fields (k), all of rank 1.
  EXPECT_THAT(out.rows, ElementsAre(Ranked("a", 10000, 3, 1), Ranked("c", 10000, 3, 1),
                                    Ranked("d", 10000, 3, 1)));
}

// order_by as SQL's ORDER BY: several fields, each with its direction; ties are ties in all.
TEST_P(WindowAggregateTest, TopNOrdersBySeveralFieldsWithDirections) {
  auto op = Make("top_n",
                 "{partition_by: [ts], time_field: ts, order_by: [v asc, k desc], n: 2, "
                 "rank_field: r}");
  Collect out;
  Feed(*op,
       {Rec("c", 10000, 3), Rec("a", 10000, 3), Rec("b", 10000, 5), Rec("d", 10000, 3), Wm(9999)},
       out);
  EXPECT_THAT(out.rows, ElementsAre(Ranked("d", 10000, 3, 1), Ranked("c", 10000, 3, 2)));
  op = Make("top_n",
            "{partition_by: [ts], time_field: ts, order_by: [v, k asc], order: asc, n: 1, "
            "with_ties: true, rank_field: r}");
  out.rows.clear();
  Feed(*op, {Rec("c", 20000, 3), Rec("a", 20000, 3), Rec("b", 20000, 5), Wm(19999)}, out);
  EXPECT_THAT(out.rows, ElementsAre(Ranked("a", 20000, 3, 1)));
}

TEST_P(WindowAggregateTest, DedupAndTopNSurviveRestoreAndRescale) {
  for (const char* config : {"{key: [k], time_field: ts, ttl: 10s}",
                             "{key: [k], time_field: ts, ttl: 7s, keep: last}"}) {
    SnapshotAndRestore(config, "dedup");
    RestoreRescaled(config, "dedup");
  }
  SnapshotAndRestore(kTopN, "top_n", /*windowed=*/true);
  RestoreRescaled(kTopN, "top_n", /*windowed=*/true);
}

INSTANTIATE_TEST_SUITE_P(Backends, WindowAggregateTest, ::testing::Values("rocksdb", "heap"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace weir
