// The nexmark source: java.util.Random's published values, the model's proportions and ids,
// determinism per seed, the same event sequence at any parallelism, restore mid-stream at
// another parallelism, and bad configs refused naming the field.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nexmark_generator.h"
#include "weir/builtins.h"
#include "weir/config.h"
#include "weir/operator.h"

namespace weir {
namespace {

using nexmark::EventSet;
using nexmark::Generator;
using nexmark::GeneratorConfig;
using nexmark::JavaRandom;

TEST(NexmarkRandom, FollowsJavaUtilRandom) {
  // Values every Java runtime gives for these seeds.
  EXPECT_EQ(JavaRandom(0).NextInt(), -1155484576);
  EXPECT_EQ(JavaRandom(42).NextInt(), -1170105035);
  EXPECT_DOUBLE_EQ(JavaRandom(0).NextDouble(), 0.730967787376657);
  EXPECT_EQ(JavaRandom(0).NextLong(), -4962768465676381896LL);
  JavaRandom r(7);
  for (int i = 0; i < 1000; ++i) {
    int32_t v = r.NextInt(13);
    ASSERT_GE(v, 0);
    ASSERT_LT(v, 13);
  }
}

std::vector<Row> Events(Generator& g, int64_t from, int64_t to) {
  std::vector<Row> rows;
  for (int64_t n = from; n < to; ++n) {
    if (!nexmark::InSet(g.set(), nexmark::KindOf(n))) continue;
    Row r(g.schema().size());
    g.Generate(n, r);
    rows.push_back(r);
  }
  return rows;
}

TEST(NexmarkGenerator, ProportionsIdsAndRanges) {
  Generator g(GeneratorConfig{}, EventSet::kAll);
  std::map<int64_t, int> kinds;
  int64_t last_person = 999, last_auction = 999;
  double extra_bytes = 0;
  int bids = 0;
  for (const Row& r : Events(g, 0, 50000)) {
    ++kinds[r[0].i];
    if (r[0].i == 0) {
      EXPECT_EQ(r[g.schema().IndexOf("person_id")].i, last_person + 1);
      last_person = r[g.schema().IndexOf("person_id")].i;
      EXPECT_TRUE(r[g.schema().IndexOf("bid_price")].is_null());
    } else if (r[0].i == 1) {
      int64_t id = r[g.schema().IndexOf("auction_id")].i;
      EXPECT_EQ(id, last_auction + 1);
      last_auction = id;
      int64_t cat = r[g.schema().IndexOf("auction_category")].i;
      EXPECT_GE(cat, 10);
      EXPECT_LT(cat, 15);
      EXPECT_GT(r[g.schema().IndexOf("auction_expires")].i, r[1].i);
      EXPECT_GE(r[g.schema().IndexOf("auction_reserve")].i,
                r[g.schema().IndexOf("auction_initialBid")].i);
    } else {
      int64_t price = r[g.schema().IndexOf("bid_price")].i;
      EXPECT_GE(price, 100);
      EXPECT_LE(price, 100000000);
      // Bids name auctions and people that exist or are about to (the model's lead of 10).
      EXPECT_LE(r[g.schema().IndexOf("bid_auction")].i, last_auction + 10);
      EXPECT_LE(r[g.schema().IndexOf("bid_bidder")].i, last_person + 10);
      const std::string& url = r[g.schema().IndexOf("bid_url")].s;
      EXPECT_EQ(url.rfind("https://www.nexmark.com/", 0), 0u) << url;
      extra_bytes += static_cast<double>(r[g.schema().IndexOf("bid_extra")].s.size());
      ++bids;
    }
  }
  EXPECT_EQ(kinds[0], 1000);
  EXPECT_EQ(kinds[1], 3000);
  EXPECT_EQ(kinds[2], 46000);
  // Padding brings a bid (32 bytes of numbers) to 100 bytes on average.
  EXPECT_NEAR(extra_bytes / bids, 68.0, 1.0);
  // Event time: 10,000 events/s from 2024-01-01.
  EXPECT_EQ(g.TimestampOf(0), 1704067200000);
  EXPECT_EQ(g.TimestampOf(12345), 1704067200000 + 1234);
}

TEST(NexmarkGenerator, DeterministicPerSeed) {
  GeneratorConfig c;
  Generator a(c, EventSet::kBid), b(c, EventSet::kBid);
  EXPECT_EQ(Events(a, 0, 2000), Events(b, 0, 2000));
  c.seed = 7;
  Generator other(c, EventSet::kBid);
  EXPECT_NE(Events(a, 0, 2000), Events(other, 0, 2000));
  // One kind alone is the same rows as that kind's columns of `all`.
  Generator all(GeneratorConfig{}, EventSet::kAll);
  Row wide(all.schema().size()), bid(a.schema().size());
  all.Generate(4, wide);
  a.Generate(4, bid);
  EXPECT_EQ(wide[all.schema().IndexOf("bid_extra")].s, bid[a.schema().IndexOf("extra")].s);
  EXPECT_EQ(wide[all.schema().IndexOf("bid_url")].s, bid[a.schema().IndexOf("url")].s);
}

Config Parse(const std::string& text) {
  auto c = Config::Parse(text, "vertices[0].config");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.value();
}

std::string ValidateError(const std::string& text) {
  const OperatorFactory* f = BuiltinOperators().Find("nexmark");
  auto s = f->Validate(Parse(text), Schema());
  return s.ok() ? "ok" : s.status().message();
}

TEST(NexmarkSource, BadConfigNamesTheField) {
  EXPECT_EQ(ValidateError("{events: bid}"), "ok");
  EXPECT_NE(ValidateError("{events: bids}")
                .find("vertices[0].config.events: unknown event kind "
                      "'bids'"),
            std::string::npos);
  EXPECT_NE(ValidateError("{events_per_second: -5}").find("vertices[0].config.events_per_second"),
            std::string::npos);
  EXPECT_NE(ValidateError("{total: -1}").find("vertices[0].config.total"), std::string::npos);
  EXPECT_NE(ValidateError("{rows_per_second: -1}").find("vertices[0].config.rows_per_second"),
            std::string::npos);
  EXPECT_NE(ValidateError("{base_time: yesterday}").find("vertices[0].config.base_time"),
            std::string::npos);
  EXPECT_NE(ValidateError("{hot_auction_ratio: 0}").find("vertices[0].config.hot_auction_ratio"),
            std::string::npos);
  EXPECT_NE(ValidateError("{evnts: bid}").find("evnts"), std::string::npos);
}

std::unique_ptr<SourceOperator> OpenSource(const std::string& config, int subtask, int parallelism,
                                           const RestoredState* restored = nullptr) {
  const OperatorFactory* f = BuiltinOperators().Find("nexmark");
  auto src = f->CreateSource(Parse(config));
  EXPECT_TRUE(src.ok());
  OperatorContext ctx;
  ctx.vertex_id = "bids";
  ctx.subtask = subtask;
  ctx.parallelism = parallelism;
  ctx.restored = restored;
  EXPECT_TRUE(src.value()->Open(ctx).ok());
  return std::move(src).value();
}

// Polls until the end (or `polls` batches), appending each row's text.
bool Drain(SourceOperator& src, std::vector<std::string>* out, int polls = 1 << 30) {
  RowBatch batch;
  for (int i = 0; i < polls; ++i) {
    batch.Clear();
    auto r = src.Poll(batch, 100);
    EXPECT_TRUE(r.ok());
    for (size_t k = 0; k < batch.size(); ++k) out->push_back(batch[k].ToString());
    if (r.value() == PollResult::kEnd) return true;
  }
  return false;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

constexpr char kConfig[] = "{events: bid, total: 5000}";

TEST(NexmarkSource, SameEventsAtAnyParallelism) {
  std::vector<std::string> one;
  ASSERT_TRUE(Drain(*OpenSource(kConfig, 0, 1), &one));
  EXPECT_EQ(one.size(), 4600u);
  for (int p : {2, 3, 7}) {
    std::vector<std::string> all;
    for (int i = 0; i < p; ++i) ASSERT_TRUE(Drain(*OpenSource(kConfig, i, p), &all));
    EXPECT_EQ(Sorted(all), Sorted(one)) << "parallelism " << p;
  }
}

TEST(NexmarkSource, RestoreMidStreamAtAnotherParallelism) {
  std::vector<std::string> one;
  ASSERT_TRUE(Drain(*OpenSource(kConfig, 0, 1), &one));
  // Two subtasks emit a few batches, snapshot; three restored subtasks take the splits
  // round-robin (as the job manager redistributes SPLIT lists) and finish.
  std::vector<std::string> seen;
  std::vector<proto::NamedList> lists;
  for (int i = 0; i < 2; ++i) {
    auto src = OpenSource(kConfig, i, 2);
    ASSERT_FALSE(Drain(*src, &seen, 3 + i));
    OperatorSnapshot snap;
    ASSERT_TRUE(src->Snapshot(1, &snap).ok());
    for (auto& l : snap.operator_state) {
      if (l.name().rfind("splits@", 0) == 0) lists.push_back(l);
    }
  }
  ASSERT_EQ(lists.size(), 2u);
  // Every restored subtask gets the list, with its share of the entries (maybe none: it then
  // has nothing left to do).
  std::vector<RestoredState> restored(3);
  for (RestoredState& r : restored) {
    r.operator_state.push_back(lists[0]);
    r.operator_state.back().clear_entries();
  }
  int k = 0;
  for (const proto::NamedList& l : lists) {
    for (const std::string& e : l.entries()) restored[k++ % 3].operator_state[0].add_entries(e);
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Drain(*OpenSource(kConfig, i, 3, &restored[i]), &seen));
  EXPECT_EQ(Sorted(seen), Sorted(one));
}

}  // namespace
}  // namespace weir
