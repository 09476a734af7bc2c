// Aggregations shared by keyed_aggregate and window_aggregate: the `aggregations:` config
// (count, sum, min, max, avg), the accumulator row each keeps in state, and the glue from
// operator contexts to keyed state stores. Pure functions and per-operator objects; the task
// thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "weir/config.h"
#include "weir/operator.h"
#include "weir/serde.h"
#include "weir/state/typed_state.h"
#include "weir/types.h"

namespace weir {

enum class AggFn { kCount, kSum, kMin, kMax, kAvg };

struct Agg {
  AggFn fn;
  int field = -1;  // input index (-1 for count)
  Type in_type = Type::kNull;
  Type out_type = Type::kInt64;
  std::string as;
};

struct Aggregations {
  std::vector<Agg> aggs;
  Schema acc_schema;  // per agg: count -> [n]; sum/min/max -> [v]; avg -> [sum double, n]
};

// Parses `config.aggregations` for rows of `input`; appends each result field to `output`
// (whose fields so far, e.g. the key, must not be repeated). Errors name the key.
Result<Aggregations> ParseAggregations(const Config& config, const Schema& input, Schema* output);

// Folds `row` into `acc` (acc_schema; all null = nothing seen yet).
void UpdateAccumulators(const Aggregations& a, const Row& row, Row& acc);
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

// Opens the keyed state store of an operator: the backend named by ctx.state_backend (heap
// when there is no local directory), in <ctx.local_dir>/<subdir>, restored from ctx.restored.
Result<std::unique_ptr<state::KeyedStateStore>> OpenKeyedStateStore(const OperatorContext& ctx,
                                                                    const std::string& subdir);

// Adapts the state module's snapshot upload to the runtime's async keyed snapshot.
std::unique_ptr<AsyncKeyedSnapshot> AdaptKeyedSnapshot(std::unique_ptr<state::SnapshotUpload> u);

}  // namespace weir
