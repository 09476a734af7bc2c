#include "nexmark_source.h"

#include <string>
#include <utility>

#include "generator_splits.h"
#include "nexmark_generator.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

using nexmark::EventSet;
using nexmark::GeneratorConfig;

// config: events (person | auction | bid | all; default all), total (events of all kinds;
// unbounded without it), rows_per_second (wall-clock limit on events of all kinds, whole
// vertex; 0 = none), seed, events_per_second (event time), base_time (ISO-8601), and the
// model's knobs (docs/nexmark.md).
struct NexmarkPlan {
  EventSet set = EventSet::kAll;
  int64_t total = -1;
  double rows_per_second = 0;
  GeneratorConfig gen;
};

Status RangeError(const Config& config, const std::string& key, int64_t lo, int64_t hi) {
  return Status::InvalidArgument(config.path() + "." + key + ": must be between " +
                                 std::to_string(lo) + " and " + std::to_string(hi));
}

Status GetRanged(const Config& config, const std::string& key, int64_t lo, int64_t hi,
                 int64_t* out) {
  WEIR_ASSIGN_OR_RETURN(*out, config.GetInt(key, *out));
  if (*out < lo || *out > hi) return RangeError(config, key, lo, hi);
  return Status::Ok();
}

Result<NexmarkPlan> PlanNexmark(const Config& config) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys(
      {"events", "total", "rows_per_second", "seed", "events_per_second", "base_time",
       "avg_person_bytes", "avg_auction_bytes", "avg_bid_bytes", "hot_auction_ratio",
       "hot_sellers_ratio", "hot_bidders_ratio", "num_in_flight_auctions", "num_active_people"}));
  NexmarkPlan plan;
  WEIR_ASSIGN_OR_RETURN(std::string events, config.GetString("events", std::string("all")));
  if (events == "person") {
    plan.set = EventSet::kPerson;
  } else if (events == "auction") {
    plan.set = EventSet::kAuction;
  } else if (events == "bid") {
    plan.set = EventSet::kBid;
  } else if (events != "all") {
    return Status::InvalidArgument(config.path() + ".events: unknown event kind '" + events +
                                   "' (person, auction, bid or all)");
  }
  if (config.Has("total")) {
    WEIR_ASSIGN_OR_RETURN(plan.total, config.GetInt("total"));
    if (plan.total < 0) return Status::InvalidArgument(config.path() + ".total: must be >= 0");
  }
  WEIR_ASSIGN_OR_RETURN(plan.rows_per_second, config.GetDouble("rows_per_second", 0.0));
  if (!(plan.rows_per_second >= 0)) {
    return Status::InvalidArgument(config.path() + ".rows_per_second: must be >= 0");
  }
  GeneratorConfig& g = plan.gen;
  WEIR_ASSIGN_OR_RETURN(g.seed, config.GetInt("seed", g.seed));
  constexpr int64_t kInt32Max = 2147483647;
  WEIR_RETURN_IF_ERROR(GetRanged(config, "events_per_second", 1, 1000000000, &g.events_per_second));
  if (config.Has("base_time")) {
    WEIR_ASSIGN_OR_RETURN(std::string text, config.GetString("base_time"));
    Status st = ParseIsoTimestamp(text, &g.base_time_ms);
    if (!st.ok()) return st.WithContext(config.path() + ".base_time");
  }
  WEIR_RETURN_IF_ERROR(GetRanged(config, "avg_person_bytes", 0, 1 << 20, &g.avg_person_bytes));
  WEIR_RETURN_IF_ERROR(GetRanged(config, "avg_auction_bytes", 0, 1 << 20, &g.avg_auction_bytes));
  WEIR_RETURN_IF_ERROR(GetRanged(config, "avg_bid_bytes", 0, 1 << 20, &g.avg_bid_bytes));
  WEIR_RETURN_IF_ERROR(GetRanged(config, "hot_auction_ratio", 1, kInt32Max, &g.hot_auction_ratio));
  WEIR_RETURN_IF_ERROR(GetRanged(config, "hot_sellers_ratio", 1, kInt32Max, &g.hot_sellers_ratio));
  WEIR_RETURN_IF_ERROR(GetRanged(config, "hot_bidders_ratio", 1, kInt32Max, &g.hot_bidders_ratio));
  WEIR_RETURN_IF_ERROR(
      GetRanged(config, "num_in_flight_auctions", 1, 1000000000, &g.num_in_flight_auctions));
  WEIR_RETURN_IF_ERROR(GetRanged(config, "num_active_people", 1, 1000000000, &g.num_active_people));
  return plan;
}

// Event numbers are the generator's numbers; one kind alone may take up to 50 events per row.
class NexmarkSource : public GeneratorSource {
 public:
  explicit NexmarkSource(const NexmarkPlan& plan)
      : GeneratorSource("nexmark", plan.total, plan.total >= 0, plan.rows_per_second,
                        nexmark::kProportionDenominator),
        set_(plan.set),
        gen_(plan.gen, plan.set) {}

 private:
  int64_t Fill(GeneratorSplits::Split& sp, RowBatch& batch, size_t max_rows,
               int64_t budget) override {
    const size_t width = gen_.schema().size();
    int64_t consumed = 0;
    while (consumed < budget && batch.size() < max_rows && Wants(sp.next)) {
      const int64_t n = sp.next;
      sp.next += sp.stride;
      ++consumed;
      if (nexmark::InSet(set_, nexmark::KindOf(n))) gen_.Generate(n, batch.Append(width));
    }
    return consumed;
  }

  const EventSet set_;
  nexmark::Generator gen_;
};

class NexmarkFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSource; }
  Result<Schema> Validate(const Config& config, const Schema&) const override {
    WEIR_ASSIGN_OR_RETURN(NexmarkPlan plan, PlanNexmark(config));
    return nexmark::SchemaFor(plan.set);
  }
  Result<std::unique_ptr<SourceOperator>> CreateSource(const Config& config) const override {
    WEIR_ASSIGN_OR_RETURN(NexmarkPlan plan, PlanNexmark(config));
    return std::unique_ptr<SourceOperator>(std::make_unique<NexmarkSource>(plan));
  }
};

}  // namespace

std::unique_ptr<OperatorFactory> MakeNexmarkSourceFactory() {
  return std::make_unique<NexmarkFactory>();
}

}  // namespace weir
