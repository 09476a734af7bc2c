// Watermark trackers, per-split watermarks and the valve that combines input channels.
#include <gtest/gtest.h>

#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/watermark.h"

namespace weir {
namespace {

TEST(WatermarkTracker, BoundedOutOfOrdernessIsMaxMinusBoundMinusOne) {
  WatermarkTracker t(100);
  EXPECT_EQ(t.watermark(), kMinWatermark);
  t.OnEvent(1000, 0);
  EXPECT_EQ(t.watermark(), 899);
  t.OnEvent(950, 0);  // out of order: the maximum stays
  EXPECT_EQ(t.watermark(), 899);
  t.OnEvent(2000, 0);
  EXPECT_EQ(t.watermark(), 1899);
}

TEST(WatermarkTracker, SaturatesForTinyEventTimes) {
  WatermarkTracker t(1000);
  t.OnEvent(kMinWatermark + 5, 0);
  EXPECT_EQ(t.watermark(), kMinWatermark);
}

TEST(SplitWatermarks, MinimumOverActiveSplitsAndIdleSplitsLeftOut) {
  WatermarkStrategy s;
  s.idle_timeout_ms = 1000;
  SplitWatermarks w(s);
  w.AddSplit("t/0", 0);
  w.AddSplit("t/1", 0);
  w.OnEvent("t/0", 5000, 10);
  // t/1 has no event yet and is not idle: it holds everything back.
  EXPECT_EQ(w.Current(500).watermark, kMinWatermark);
  EXPECT_FALSE(w.Current(500).idle);
  // After the idle timeout only t/0 counts.
  w.OnEvent("t/0", 6000, 1200);
  EXPECT_EQ(w.Current(1200).watermark, 5999);
  // t/1 comes back behind: it holds the subtask back again (the valve downstream keeps the
  // output from going back).
  w.OnEvent("t/1", 3000, 1300);
  EXPECT_EQ(w.Current(1300).watermark, 2999);
  // Everything idle: the subtask is idle.
  EXPECT_TRUE(w.Current(5000).idle);
}

TEST(SplitWatermarks, NoSplitsWithoutIdleTimeoutHoldsBack) {
  WatermarkStrategy s;
  SplitWatermarks w(s);
  EXPECT_FALSE(w.Current(0).idle);
  EXPECT_EQ(w.Current(0).watermark, kMinWatermark);
}

TEST(WatermarkValve, OutputIsMinimumAndMonotonic) {
  WatermarkValve v(3);
  EXPECT_FALSE(v.OnWatermark(0, 10));
  EXPECT_FALSE(v.OnWatermark(1, 20));
  EXPECT_EQ(v.OnWatermark(2, 5), std::optional<int64_t>(5));
  EXPECT_EQ(v.OnWatermark(2, 30), std::optional<int64_t>(10));
  EXPECT_FALSE(v.OnWatermark(0, 9));  // a channel going back changes nothing
  EXPECT_EQ(v.current(), 10);
  EXPECT_EQ(v.OnWatermark(0, 25), std::optional<int64_t>(20));
}

TEST(WatermarkValve, IdleChannelsAreLeftOutUntilTheyCatchUp) {
  WatermarkValve v(2);
  v.OnWatermark(0, 100);
  bool changed = false;
  // Channel 1 never sent a watermark; once idle, channel 0 alone decides.
  EXPECT_EQ(v.OnIdle(1, true, &changed), std::optional<int64_t>(100));
  EXPECT_FALSE(changed);
  EXPECT_FALSE(v.idle());
  EXPECT_EQ(v.OnWatermark(0, 200), std::optional<int64_t>(200));
  // Channel 1 active again but behind: not counted until it reaches the output.
  EXPECT_FALSE(v.OnIdle(1, false, &changed));
  EXPECT_EQ(v.OnWatermark(0, 300), std::optional<int64_t>(300));
  EXPECT_FALSE(v.OnWatermark(1, 250));
  EXPECT_EQ(v.current(), 300);
  EXPECT_FALSE(v.OnWatermark(1, 350));  // caught up: counted again
  EXPECT_EQ(v.OnWatermark(0, 400), std::optional<int64_t>(350));
}

TEST(WatermarkValve, AllIdleMakesTheTaskIdleAndEndedChannelsDoNotHoldBack) {
  WatermarkValve v(2);
  bool changed = false;
  v.OnIdle(0, true, &changed);
  EXPECT_FALSE(changed);
  v.OnIdle(1, true, &changed);
  EXPECT_TRUE(changed);
  EXPECT_TRUE(v.idle());
  v.OnIdle(0, false, &changed);
  EXPECT_TRUE(changed);
  EXPECT_FALSE(v.idle());
  EXPECT_EQ(v.OnWatermark(0, 7), std::optional<int64_t>(7));
  WatermarkValve e(2);
  e.OnWatermark(0, 50);
  EXPECT_EQ(e.OnEnd(1), std::optional<int64_t>(50));
}

TEST(WatermarkStrategyParse, ErrorsNameTheKey) {
  auto c = Config::Parse("{event_time_field: ts, max_out_of_orderness: -5}", "vertex 'g': watermarks");
  ASSERT_TRUE(c.ok());
  auto s = ParseWatermarkStrategy(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("vertex 'g': watermarks.max_out_of_orderness"),
            std::string::npos)
      << s.status().message();
  c = Config::Parse("{event_time_field: ts, idle: 5s}", "vertex 'g': watermarks");
  s = ParseWatermarkStrategy(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("idle"), std::string::npos) << s.status().message();
  c = Config::Parse("{event_time_field: ts, max_out_of_orderness: 2s, idle_timeout: 1m}", "w");
  s = ParseWatermarkStrategy(*c);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->max_out_of_orderness_ms, 2000);
  EXPECT_EQ(s->idle_timeout_ms, 60000);
}

TEST(WatermarkJobFile, FieldMustExistAndBeATime) {
  auto build = [](const std::string& wm) {
    auto spec = ParseJobFile(R"Y(
vertices:
  - {id: gen, type: datagen, config: {total: 10, fields: [{name: ts, expr: "id * 1000"}, {name: s, expr: "'x'"}]},
     watermarks: )Y" + wm + R"Y(}
  - {id: out, type: blackhole}
edges:
  - {from: gen, to: out}
)Y");
    if (!spec.ok()) return spec.status();
    return BuildPlan(std::move(spec).value(), BuiltinOperators()).status();
  };
  EXPECT_TRUE(build("{event_time_field: ts}").ok());
  Status st = build("{event_time_field: nope}");
  EXPECT_NE(st.message().find("vertex 'gen': watermarks.event_time_field: unknown field 'nope'"),
            std::string::npos)
      << st.message();
  st = build("{event_time_field: s}");
  EXPECT_NE(st.message().find("must be a timestamp or an integer"), std::string::npos)
      << st.message();
  // Round trip through the protobuf form keeps the strategy.
  auto spec = ParseJobFile(R"Y(
vertices:
  - {id: gen, type: datagen, config: {total: 10}, watermarks: {event_time_field: id, max_out_of_orderness: 3s, idle_timeout: 10s, interval: 50ms}}
  - {id: out, type: blackhole}
edges: [{from: gen, to: out}]
)Y");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  proto::JobGraph g;
  ToProto(*spec, &g);
  auto back = FromProto(g);
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(back->vertices[0].watermarks.has_value());
  EXPECT_EQ(back->vertices[0].watermarks->max_out_of_orderness_ms, 3000);
  EXPECT_EQ(back->vertices[0].watermarks->idle_timeout_ms, 10000);
  EXPECT_EQ(back->vertices[0].watermarks->emit_interval_ms, 50);
  EXPECT_FALSE(back->vertices[1].watermarks.has_value());
}

}  // namespace
}  // namespace weir
