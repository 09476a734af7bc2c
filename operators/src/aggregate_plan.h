// Plans of the keyed operators (keyed_aggregate, window_aggregate, dedup, top_n), checked
// without any state backend: the `key:` and `aggregations:` config (count, sum, min, max, avg,
// count_distinct), the accumulator
// row each keeps, key extraction, and validation-only factories for processes that check job
// files but never run state (the CLI). Library weir_operators; the operators themselves are in
// weir_keyed_operators. Pure functions and per-operator objects; the task thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "weir/config.h"
#include "weir/operator.h"
#include "weir/serde.h"
#include "weir/types.h"

namespace weir {

enum class AggFn { kCount, kSum, kMin, kMax, kAvg, kCountDistinct };

struct Agg {
  AggFn fn;
  int field = -1;  // input index (-1 for count)
  Type in_type = Type::kNull;
  Type out_type = Type::kInt64;
  std::string as;
};

struct Aggregations {
  std::vector<Agg> aggs;
  // Per agg: count -> [n]; sum/min/max -> [v]; avg -> [sum double, n]; count_distinct -> [n]
  // (the values seen are the window operator's, in its state: UpdateAccumulators skips it).
  Schema acc_schema;
  bool distinct = false;  // has a count_distinct
};

// Parses `config.aggregations` for rows of `input`; appends each result field to `output`
// (whose fields so far, e.g. the key, must not be repeated). Errors name the key.
Result<Aggregations> ParseAggregations(const Config& config, const Schema& input, Schema* output);

// Folds `row` into `acc` (acc_schema; all null = nothing seen yet).
void UpdateAccumulators(const Aggregations& a, const Row& row, Row& acc);
// Merges accumulator `from` into `into` (both acc_schema; all null = nothing seen), as if
// `into` had also seen every row `from` saw: counts and sums add, min/min, max/max, avg adds
// its sum and count. Session windows merge with it.
void MergeAccumulators(const Aggregations& a, const Row& from, Row& into);
// Writes the results of `acc` into out[first], out[first + 1], ...
void WriteAggregates(const Aggregations& a, const Row& acc, Row& out, size_t first);

// The key fields of a row: their serialized bytes (the stored key) and their key group, with
// the hash the hash partitioner uses, so the group is one this subtask owns. Reuses its
// buffers: no allocation per row once warm.
class KeyExtractor {
 public:
  KeyExtractor(std::vector<int> key_idx, Schema key_schema)
      : key_idx_(std::move(key_idx)), key_schema_(std::move(key_schema)) {}
  // Sets key(), key_group() and key_row() from `row`.
  void Extract(const Row& row, int max_parallelism);
  std::string_view key() const {
    return std::string_view(reinterpret_cast<const char*>(buf_.data()), buf_.size());
  }
  int key_group() const { return key_group_; }
  const Row& key_row() const { return key_row_; }
  // Decodes stored key bytes into `out` (key_schema).
  bool Decode(std::string_view key, Row& out) const;
  const Schema& schema() const { return key_schema_; }

 private:
  std::vector<int> key_idx_;
  Schema key_schema_;
  Row key_row_;
  ByteBuffer buf_;
  int key_group_ = 0;
};

// keyed_aggregate's plan (see keyed_aggregate.cc for the config).
struct AggPlan {
  std::vector<int> key_idx;
  Aggregations aggs;
  Schema output;
  Schema key_schema;
  bool emit_final = false;
  int64_t ttl_ms = 0;  // 0: no TTL
};
Result<AggPlan> PlanAggregate(const Config& config, const Schema& input);

// window_aggregate's plan (see window_aggregate.cc for the config).
enum class WindowKind {
  kTumbling,  // size
  kSliding,   // size and slide (slide <= size)
  kSession,   // session_gap
};
struct WindowPlan {
  std::vector<int> key_idx;
  Schema key_schema;
  WindowKind kind = WindowKind::kTumbling;
  bool processing_time = false;  // time: processing (tumbling only; no time_field)
  int time_idx = -1;             // -1 with processing time
  int64_t size_ms = 0;           // tumbling, sliding
  int64_t slide_ms = 0;          // sliding; size_ms for tumbling
  int64_t gap_ms = 0;            // session
  int64_t lateness_ms = 0;
  Aggregations aggs;
  Schema output;
};
Result<WindowPlan> PlanWindow(const Config& config, const Schema& input);

// dedup's plan (see dedup.cc for the config).
struct DedupPlan {
  std::vector<int> key_idx;
  Schema key_schema;
  bool keep_last = false;
  int time_idx = -1;
  int64_t ttl_ms = 0;
  Schema output;  // the input's
};
Result<DedupPlan> PlanDedup(const Config& config, const Schema& input);

// top_n's plan (see top_n.cc for the config).
struct TopNPlan {
  std::vector<int> key_idx;  // partition_by
  Schema key_schema;
  int time_idx = -1;  // the partition's end (a timestamp among partition_by)
  struct OrderKey {
    int idx = -1;  // an input field
    bool desc = true;
  };
  std::vector<OrderKey> order_by;  // SQL's ORDER BY: the first field, then the next on ties
  int64_t n = 0;
  bool with_ties = false;
  bool rank = false;  // output has a rank field (rank_field) after the input's
  Schema input;
  Schema output;
};
Result<TopNPlan> PlanTopN(const Config& config, const Schema& input);

// What a keyed operator's factory declares before it can run: a transform whose input is
// hash-partitioned by `key:`, with the output schema of its plan. The full factories derive
// from these and add Create.
class KeyedAggregateSpec : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override;
  std::vector<std::string> RequiredInputKey(const Config& config) const override;
};
class WindowAggregateSpec : public KeyedAggregateSpec {
 public:
  Result<Schema> Validate(const Config& config, const Schema& input) const override;
  // "late": records too late for their window, unchanged (the input's schema).
  Result<std::vector<SideOutputSpec>> SideOutputs(const Config& config,
                                                  const Schema& input) const override;
};

// An event-time operator on the input's rows as they are (dedup, top_n): a transform hash
// partitioned by `KeyField` whose output and "late" side output are planned by `Plan`.
template <typename PlanT, Result<PlanT> (*Plan)(const Config&, const Schema&), const char* KeyField>
class RowOperatorSpec : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(PlanT plan, Plan(config, input));
    return plan.output;
  }
  std::vector<std::string> RequiredInputKey(const Config& config) const override {
    auto keys = config.GetStringList(KeyField);
    return keys.ok() ? keys.value() : std::vector<std::string>{};
  }
  // "late": records too late for their window (partition), unchanged.
  Result<std::vector<SideOutputSpec>> SideOutputs(const Config& config,
                                                  const Schema& input) const override {
    WEIR_RETURN_IF_ERROR(Plan(config, input).status());
    return std::vector<SideOutputSpec>{{"late", input, ""}};
  }
};
inline constexpr char kDedupKey[] = "key";
inline constexpr char kTopNKey[] = "partition_by";
using DedupSpec = RowOperatorSpec<DedupPlan, PlanDedup, kDedupKey>;
using TopNSpec = RowOperatorSpec<TopNPlan, PlanTopN, kTopNKey>;

// Validation only: Create fails.
std::unique_ptr<OperatorFactory> MakeKeyedAggregateSpec();
std::unique_ptr<OperatorFactory> MakeWindowAggregateSpec();

}  // namespace weir
