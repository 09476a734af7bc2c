#include "aggregate_plan.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string_view>

#include "weir/key_groups.h"
#include "weir/operators.h"

namespace weir {
namespace {

bool Less(const Value& a, const Value& b) {
  switch (a.type) {
    case Type::kDouble:
      return a.d < b.d;
    case Type::kString:
      return a.s < b.s;
    default:
      return a.i < b.i;
  }
}

// `key:` (or `name`; required, non-empty, fields of `input`, none named in `reserved`): their
// indices, and each field appended to `key_schema` and `output`.
Status ParseKey(const Config& config, const Schema& input,
                std::initializer_list<std::string_view> reserved, std::vector<int>* key_idx,
                Schema* key_schema, Schema* output, const std::string& name = "key") {
  const std::string at = config.path() + "." + name;
  WEIR_ASSIGN_OR_RETURN(auto keys, config.GetStringList(name));
  if (keys.empty()) return Status::InvalidArgument(at + ": required, non-empty");
  for (const auto& k : keys) {
    const int i = input.IndexOf(k);
    if (i < 0) {
      return Status::InvalidArgument(at + ": unknown field '" + k +
                                     "' (input fields: " + input.FieldNames() + ")");
    }
    if (key_schema->IndexOf(k) >= 0) {
      return Status::InvalidArgument(at + ": field '" + k + "' named twice");
    }
    for (std::string_view r : reserved) {
      if (k == r) {
        return Status::InvalidArgument(at + ": field '" + k +
                                       "' clashes with the output field of the same name");
      }
    }
    key_idx->push_back(i);
    key_schema->Add(k, input.field(i).type);
    output->Add(k, input.field(i).type);
  }
  return Status::Ok();
}

// An event-time field of `input` named by `key` (default `def`): timestamp or int64 ms.
Result<int> TimeField(const Config& config, const Schema& input, const std::string& key,
                      std::optional<std::string> def = std::nullopt) {
  WEIR_ASSIGN_OR_RETURN(std::string name, config.GetString(key, def));
  const int i = input.IndexOf(name);
  if (i < 0) {
    return Status::InvalidArgument(config.path() + "." + key + ": unknown field '" + name +
                                   "' (input fields: " + input.FieldNames() + ")");
  }
  const Type t = input.field(i).type;
  if (t != Type::kTimestamp && t != Type::kInt64) {
    return Status::InvalidArgument(config.path() + "." + key + ": '" + name +
                                   "' must be a timestamp or int64 (ms) field; it is " +
                                   TypeName(t));
  }
  return i;
}

}  // namespace

Result<Aggregations> ParseAggregations(const Config& config, const Schema& input, Schema* output) {
  Aggregations plan;
  WEIR_ASSIGN_OR_RETURN(auto aggs, config.GetMapList("aggregations"));
  if (aggs.empty()) {
    return Status::InvalidArgument(config.path() + ".aggregations: required, non-empty");
  }
  for (const Config& a : aggs) {
    WEIR_RETURN_IF_ERROR(a.CheckKeys({"fn", "field", "as"}));
    Agg agg;
    WEIR_ASSIGN_OR_RETURN(std::string fn, a.GetString("fn"));
    if (fn == "count")
      agg.fn = AggFn::kCount;
    else if (fn == "sum")
      agg.fn = AggFn::kSum;
    else if (fn == "min")
      agg.fn = AggFn::kMin;
    else if (fn == "max")
      agg.fn = AggFn::kMax;
    else if (fn == "avg")
      agg.fn = AggFn::kAvg;
    else if (fn == "count_distinct")
      agg.fn = AggFn::kCountDistinct;
    else {
      return Status::InvalidArgument(a.path() + ".fn: unknown aggregate '" + fn +
                                     "' (expected count, sum, min, max, avg, count_distinct)");
    }
    if (agg.fn != AggFn::kCount) {
      WEIR_ASSIGN_OR_RETURN(std::string field, a.GetString("field"));
      agg.field = input.IndexOf(field);
      if (agg.field < 0) {
        return Status::InvalidArgument(a.path() + ".field: unknown field '" + field +
                                       "' (input fields: " + input.FieldNames() + ")");
      }
      agg.in_type = input.field(agg.field).type;
      const bool numeric = agg.in_type == Type::kInt64 || agg.in_type == Type::kDouble;
      if ((agg.fn == AggFn::kSum || agg.fn == AggFn::kAvg) && !numeric) {
        return Status::InvalidArgument(a.path() + ".field: " + fn + " needs a numeric field; '" +
                                       field + "' is " + TypeName(agg.in_type));
      }
      if ((agg.fn == AggFn::kMin || agg.fn == AggFn::kMax) && !numeric &&
          agg.in_type != Type::kTimestamp && agg.in_type != Type::kString) {
        return Status::InvalidArgument(a.path() + ".field: " + fn +
                                       " needs a numeric, string or "
                                       "timestamp field; '" +
                                       field + "' is " + TypeName(agg.in_type));
      }
      if (agg.fn == AggFn::kCountDistinct && agg.in_type == Type::kDouble) {
        // Equal doubles can differ in their bits (0.0 and -0.0, NaNs): not counted reliably.
        return Status::InvalidArgument(a.path() +
                                       ".field: count_distinct needs a bool, int64, "
                                       "string, bytes or timestamp field; '" +
                                       field + "' is double");
      }
      agg.out_type = agg.fn == AggFn::kAvg             ? Type::kDouble
                     : agg.fn == AggFn::kCountDistinct ? Type::kInt64
                                                       : agg.in_type;
      if (agg.fn == AggFn::kCountDistinct) plan.distinct = true;
    }
    WEIR_ASSIGN_OR_RETURN(
        agg.as, a.GetString("as", fn + (agg.field >= 0 ? "_" + input.field(agg.field).name : "")));
    if (output->IndexOf(agg.as) >= 0) {
      return Status::InvalidArgument(a.path() + ".as: duplicate output field '" + agg.as + "'");
    }
    output->Add(agg.as, agg.out_type);
    switch (agg.fn) {
      case AggFn::kCount:
      case AggFn::kCountDistinct:
        plan.acc_schema.Add(agg.as, Type::kInt64);
        break;
      case AggFn::kSum:
      case AggFn::kMin:
      case AggFn::kMax:
        plan.acc_schema.Add(agg.as, agg.in_type);
        break;
      case AggFn::kAvg:
        plan.acc_schema.Add(agg.as + ".sum", Type::kDouble);
        plan.acc_schema.Add(agg.as + ".n", Type::kInt64);
        break;
    }
    plan.aggs.push_back(std::move(agg));
  }
  return plan;
}

void UpdateAccumulators(const Aggregations& plan, const Row& row, Row& acc_row) {
  size_t a = 0;
  for (const Agg& agg : plan.aggs) {
    Value& acc = acc_row[a];
    switch (agg.fn) {
      case AggFn::kCount:
        acc.SetInt64(acc.is_null() ? 1 : acc.i + 1);
        break;
      case AggFn::kSum: {
        const Value& v = row[agg.field];
        if (v.is_null()) break;
        if (acc.is_null()) {
          acc.CopyFrom(v);
        } else if (v.type == Type::kInt64) {
          acc.i += v.i;
        } else {
          acc.d += v.d;
        }
        break;
      }
      case AggFn::kMin:
      case AggFn::kMax: {
        const Value& v = row[agg.field];
        if (v.is_null()) break;
        if (acc.is_null() || (agg.fn == AggFn::kMin ? Less(v, acc) : Less(acc, v))) {
          acc.CopyFrom(v);
        }
        break;
      }
      case AggFn::kAvg: {
        const Value& v = row[agg.field];
        Value& n = acc_row[a + 1];
        ++a;
        if (v.is_null()) break;
        double x = v.type == Type::kInt64 ? static_cast<double>(v.i) : v.d;
        acc.SetDouble(acc.is_null() ? x : acc.d + x);
        n.SetInt64(n.is_null() ? 1 : n.i + 1);
        break;
      }
      case AggFn::kCountDistinct:  // the window operator counts values new to its state
        break;
    }
    ++a;
  }
}

void MergeAccumulators(const Aggregations& plan, const Row& from, Row& into) {
  size_t a = 0;
  for (const Agg& agg : plan.aggs) {
    const size_t slots = agg.fn == AggFn::kAvg ? 2 : 1;
    for (size_t k = a; k < a + slots; ++k) {
      const Value& v = from[k];
      Value& acc = into[k];
      if (v.is_null()) continue;
      if (acc.is_null()) {
        acc.CopyFrom(v);
        continue;
      }
      switch (agg.fn) {
        case AggFn::kMin:
          if (Less(v, acc)) acc.CopyFrom(v);
          break;
        case AggFn::kMax:
          if (Less(acc, v)) acc.CopyFrom(v);
          break;
        default:  // count, sum, avg's sum (double) and count: add
          if (v.type == Type::kDouble) {
            acc.d += v.d;
          } else {
            acc.i += v.i;
          }
          break;
      }
    }
    a += slots;
  }
}

void WriteAggregates(const Aggregations& plan, const Row& acc, Row& out, size_t i) {
  size_t a = 0;
  for (const Agg& agg : plan.aggs) {
    if (agg.fn == AggFn::kAvg) {
      const Value& sum = acc[a];
      const Value& n = acc[a + 1];
      if (sum.is_null() || n.is_null() || n.i == 0) {
        out[i].SetNull();
      } else {
        out[i].SetDouble(sum.d / static_cast<double>(n.i));
      }
      a += 2;
    } else if (agg.fn == AggFn::kCountDistinct && acc[a].is_null()) {
      out[i].SetInt64(0);  // no non-null value seen
      ++a;
    } else {
      out[i].CopyFrom(acc[a]);
      ++a;
    }
    ++i;
  }
}

void KeyExtractor::Extract(const Row& row, int max_parallelism) {
  uint64_t h = 0;
  key_row_.fields.resize(key_idx_.size());
  for (size_t k = 0; k < key_idx_.size(); ++k) {
    h = HashValue(row[key_idx_[k]], h);
    key_row_[k].CopyFrom(row[key_idx_[k]]);
  }
  key_group_ = KeyGroupForHash(h, max_parallelism);
  buf_.Clear();
  SerializeRow(key_row_, key_schema_, buf_);
}

bool KeyExtractor::Decode(std::string_view key, Row& out) const {
  const auto* p = reinterpret_cast<const uint8_t*>(key.data());
  return DeserializeRow(&p, p + key.size(), key_schema_, out) &&
         p == reinterpret_cast<const uint8_t*>(key.data()) + key.size();
}

Result<AggPlan> PlanAggregate(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"key", "aggregations", "emit", "state_ttl"}));
  AggPlan plan;
  WEIR_RETURN_IF_ERROR(ParseKey(config, input, {}, &plan.key_idx, &plan.key_schema, &plan.output));
  WEIR_ASSIGN_OR_RETURN(std::string emit, config.GetString("emit", std::string("updates")));
  if (emit != "updates" && emit != "final") {
    return Status::InvalidArgument(config.path() + ".emit: expected updates or final, got '" +
                                   emit + "'");
  }
  plan.emit_final = emit == "final";
  if (config.Has("state_ttl")) {
    WEIR_ASSIGN_OR_RETURN(plan.ttl_ms, config.GetDurationMs("state_ttl"));
    if (plan.ttl_ms <= 0) {
      return Status::InvalidArgument(config.path() + ".state_ttl: must be positive, got " +
                                     std::to_string(plan.ttl_ms) + " ms");
    }
  }
  WEIR_ASSIGN_OR_RETURN(plan.aggs, ParseAggregations(config, input, &plan.output));
  if (plan.aggs.distinct) {
    return Status::InvalidArgument(config.path() +
                                   ".aggregations: count_distinct only in window_aggregate (its "
                                   "set of values is kept per window and dropped with it)");
  }
  return plan;
}

Result<WindowPlan> PlanWindow(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"key", "time", "time_field", "size", "slide",
                                         "session_gap", "aggregations", "allowed_lateness"}));
  WindowPlan plan;
  const std::string& at = config.path();
  WEIR_RETURN_IF_ERROR(ParseKey(config, input, {"window_start", "window_end"}, &plan.key_idx,
                                &plan.key_schema, &plan.output));
  WEIR_ASSIGN_OR_RETURN(std::string time, config.GetString("time", std::string("event")));
  if (time != "event" && time != "processing") {
    return Status::InvalidArgument(at + ".time: expected event or processing, got '" + time + "'");
  }
  plan.processing_time = time == "processing";
  if (plan.processing_time) {
    for (const char* field : {"time_field", "slide", "session_gap", "allowed_lateness"}) {
      if (config.Has(field)) {
        return Status::InvalidArgument(at + "." + field +
                                       ": not with time: processing (processing-time windows are " +
                                       "tumbling windows of the task manager's clock: only size)");
      }
    }
  } else {
    WEIR_ASSIGN_OR_RETURN(plan.time_idx, TimeField(config, input, "time_field"));
  }
  if (config.Has("session_gap")) {
    for (const char* field : {"size", "slide"}) {
      if (config.Has(field)) {
        return Status::InvalidArgument(at + "." + field +
                                       ": not with session_gap (a session window has no fixed "
                                       "size; give either session_gap, or size and maybe slide)");
      }
    }
    plan.kind = WindowKind::kSession;
    WEIR_ASSIGN_OR_RETURN(plan.gap_ms, config.GetDurationMs("session_gap"));
    if (plan.gap_ms <= 0) {
      return Status::InvalidArgument(at + ".session_gap: must be positive, got " +
                                     std::to_string(plan.gap_ms) + " ms");
    }
  } else {
    if (!config.Has("size")) {
      return Status::InvalidArgument(at + ".size: required (or session_gap for session windows)");
    }
    WEIR_ASSIGN_OR_RETURN(plan.size_ms, config.GetDurationMs("size"));
    if (plan.size_ms <= 0) {
      return Status::InvalidArgument(at + ".size: must be positive, got " +
                                     std::to_string(plan.size_ms) + " ms");
    }
    plan.slide_ms = plan.size_ms;
    if (config.Has("slide")) {
      plan.kind = WindowKind::kSliding;
      WEIR_ASSIGN_OR_RETURN(plan.slide_ms, config.GetDurationMs("slide"));
      if (plan.slide_ms <= 0) {
        return Status::InvalidArgument(at + ".slide: must be positive, got " +
                                       std::to_string(plan.slide_ms) + " ms");
      }
      if (plan.slide_ms > plan.size_ms) {
        // Flink's SlidingEventTimeWindows accepts it and silently skips the records that fall
        // between two windows; here a record never vanishes unseen.
        return Status::InvalidArgument(
            at + ".slide: " + std::to_string(plan.slide_ms) + " ms is more than size (" +
            std::to_string(plan.size_ms) + " ms): records between windows would belong to no " +
            "window (Flink accepts it and drops them silently; refused here)");
      }
    }
  }
  WEIR_ASSIGN_OR_RETURN(plan.lateness_ms, config.GetDurationMs("allowed_lateness", 0));
  if (plan.lateness_ms < 0) {
    return Status::InvalidArgument(at + ".allowed_lateness: must not be negative");
  }
  plan.output.Add("window_start", Type::kTimestamp);
  plan.output.Add("window_end", Type::kTimestamp);
  WEIR_ASSIGN_OR_RETURN(plan.aggs, ParseAggregations(config, input, &plan.output));
  if (plan.aggs.distinct && (plan.kind == WindowKind::kSession || plan.processing_time)) {
    return Status::InvalidArgument(
        at +
        ".aggregations: count_distinct only with event-time tumbling or sliding windows "
        "(not session_gap or time: processing)");
  }
  return plan;
}

Result<DedupPlan> PlanDedup(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"key", "keep", "ttl", "time", "time_field"}));
  DedupPlan plan;
  const std::string& at = config.path();
  Schema unused;
  WEIR_RETURN_IF_ERROR(ParseKey(config, input, {}, &plan.key_idx, &plan.key_schema, &unused));
  WEIR_ASSIGN_OR_RETURN(std::string keep, config.GetString("keep", std::string("first")));
  if (keep != "first" && keep != "last") {
    return Status::InvalidArgument(at + ".keep: expected first or last, got '" + keep + "'");
  }
  plan.keep_last = keep == "last";
  WEIR_ASSIGN_OR_RETURN(std::string time, config.GetString("time", std::string("event")));
  if (time != "event") {
    return Status::InvalidArgument(
        at +
        ".time: only event (dedup scopes are windows of event time, so that the rows "
        "kept do not depend on arrival order or parallelism), got '" +
        time + "'");
  }
  WEIR_ASSIGN_OR_RETURN(plan.time_idx, TimeField(config, input, "time_field"));
  if (!config.Has("ttl")) return Status::InvalidArgument(at + ".ttl: required (a duration)");
  WEIR_ASSIGN_OR_RETURN(plan.ttl_ms, config.GetDurationMs("ttl"));
  if (plan.ttl_ms <= 0) {
    return Status::InvalidArgument(at + ".ttl: must be positive, got " +
                                   std::to_string(plan.ttl_ms) + " ms");
  }
  plan.output = input;
  return plan;
}

Result<TopNPlan> PlanTopN(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys(
      {"partition_by", "time_field", "order_by", "order", "n", "with_ties", "rank_field"}));
  TopNPlan plan;
  const std::string& at = config.path();
  Schema unused;
  WEIR_RETURN_IF_ERROR(
      ParseKey(config, input, {}, &plan.key_idx, &plan.key_schema, &unused, "partition_by"));
  WEIR_ASSIGN_OR_RETURN(plan.time_idx,
                        TimeField(config, input, "time_field", std::string("window_end")));
  if (std::find(plan.key_idx.begin(), plan.key_idx.end(), plan.time_idx) == plan.key_idx.end()) {
    return Status::InvalidArgument(at + ".time_field: '" + input.field(plan.time_idx).name +
                                   "' must be one of partition_by (a partition is complete when "
                                   "the watermark passes it)");
  }
  // order_by: a field or a list of "field [asc|desc]" (SQL's ORDER BY); a field without a
  // direction takes `order`'s (default desc).
  WEIR_ASSIGN_OR_RETURN(std::string order, config.GetString("order", std::string("desc")));
  if (order != "asc" && order != "desc") {
    return Status::InvalidArgument(at + ".order: expected asc or desc, got '" + order + "'");
  }
  WEIR_ASSIGN_OR_RETURN(auto order_by, config.GetStringList("order_by"));
  if (order_by.empty()) return Status::InvalidArgument(at + ".order_by: required");
  for (const std::string& entry : order_by) {
    std::string name = entry;
    TopNPlan::OrderKey key;
    key.desc = order == "desc";
    const size_t space = entry.find(' ');
    if (space != std::string::npos) {
      name = entry.substr(0, space);
      const std::string dir = entry.substr(entry.find_first_not_of(' ', space));
      if (dir != "asc" && dir != "desc") {
        return Status::InvalidArgument(at + ".order_by: '" + entry +
                                       "': expected a field, then asc or desc");
      }
      key.desc = dir == "desc";
    }
    key.idx = input.IndexOf(name);
    if (key.idx < 0) {
      return Status::InvalidArgument(at + ".order_by: unknown field '" + name +
                                     "' (input fields: " + input.FieldNames() + ")");
    }
    const Type ot = input.field(key.idx).type;
    if (ot != Type::kInt64 && ot != Type::kDouble && ot != Type::kTimestamp &&
        ot != Type::kString) {
      return Status::InvalidArgument(at + ".order_by: '" + name +
                                     "' must be an int64, double, timestamp or string field; "
                                     "it is " +
                                     TypeName(ot));
    }
    for (const TopNPlan::OrderKey& k : plan.order_by) {
      if (k.idx == key.idx) {
        return Status::InvalidArgument(at + ".order_by: '" + name + "' is listed twice");
      }
    }
    plan.order_by.push_back(key);
  }
  WEIR_ASSIGN_OR_RETURN(plan.n, config.GetInt("n"));
  if (plan.n <= 0 || plan.n > 10000) {
    return Status::InvalidArgument(at + ".n: must be from 1 to 10000, got " +
                                   std::to_string(plan.n));
  }
  WEIR_ASSIGN_OR_RETURN(plan.with_ties, config.GetBool("with_ties", false));
  plan.input = input;
  plan.output = input;
  if (config.Has("rank_field")) {
    WEIR_ASSIGN_OR_RETURN(std::string rank, config.GetString("rank_field"));
    if (rank.empty() || input.IndexOf(rank) >= 0) {
      return Status::InvalidArgument(at + ".rank_field: '" + rank +
                                     "' must be a new, non-empty field name");
    }
    plan.rank = true;
    plan.output.Add(rank, Type::kInt64);
  }
  return plan;
}

Result<Schema> KeyedAggregateSpec::Validate(const Config& config, const Schema& input) const {
  WEIR_ASSIGN_OR_RETURN(AggPlan plan, PlanAggregate(config, input));
  return plan.output;
}

std::vector<std::string> KeyedAggregateSpec::RequiredInputKey(const Config& config) const {
  auto keys = config.GetStringList("key");
  return keys.ok() ? keys.value() : std::vector<std::string>{};
}

Result<Schema> WindowAggregateSpec::Validate(const Config& config, const Schema& input) const {
  WEIR_ASSIGN_OR_RETURN(WindowPlan plan, PlanWindow(config, input));
  return plan.output;
}

Result<std::vector<SideOutputSpec>> WindowAggregateSpec::SideOutputs(const Config& config,
                                                                     const Schema& input) const {
  WEIR_RETURN_IF_ERROR(PlanWindow(config, input).status());
  return std::vector<SideOutputSpec>{{"late", input, ""}};
}

std::unique_ptr<OperatorFactory> MakeKeyedAggregateSpec() {
  return std::make_unique<KeyedAggregateSpec>();
}
std::unique_ptr<OperatorFactory> MakeWindowAggregateSpec() {
  return std::make_unique<WindowAggregateSpec>();
}
std::unique_ptr<OperatorFactory> MakeDedupSpec() {
  return std::make_unique<DedupSpec>();
}
std::unique_ptr<OperatorFactory> MakeTopNSpec() {
  return std::make_unique<TopNSpec>();
}

}  // namespace weir
