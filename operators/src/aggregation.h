// What keyed_aggregate and window_aggregate share at run time: the glue from operator
// contexts to keyed state stores (their plans are in aggregate_plan.h). The task thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aggregate_plan.h"
#include "weir/operator.h"
#include "weir/state/typed_state.h"

namespace weir {

// Opens the keyed state store of an operator: the backend named by ctx.state_backend (heap
// when there is no local directory), in <ctx.local_dir>/<subdir>, restored from ctx.restored.
Result<std::unique_ptr<state::KeyedStateStore>> OpenKeyedStateStore(const OperatorContext& ctx,
                                                                    const std::string& subdir);

// The keyed state metrics of a store (entries, and RocksDB's live data, block cache and
// memtables) for Operator::ReportMetrics. A null store (closed) reports nothing.
void ReportStateMetrics(const state::KeyedStateStore* store, MetricWriter& out);

// Adapts the state module's snapshot upload to the runtime's async keyed snapshot.
std::unique_ptr<AsyncKeyedSnapshot> AdaptKeyedSnapshot(std::unique_ptr<state::SnapshotUpload> u);

// Times as state keys (map user keys, timer namespaces): 8 bytes big-endian with the sign bit
// flipped, so they sort bytewise in numeric order. Encode appends to `out`.
void EncodeOrderedTime(int64_t t, std::string* out);
bool DecodeOrderedTime(std::string_view in, int64_t* t);  // false unless 8 bytes

int64_t SaturatingAdd(int64_t a, int64_t b);

// An operator-state UNION list of int64 values (each subtask gets every subtask's entries at
// restore), e.g. the current watermark, and the values restored under `name`.
proto::NamedList UnionInt64List(const std::string& name, int64_t value);
Result<std::vector<int64_t>> RestoredInt64s(const OperatorContext& ctx, const std::string& name);

// The checkpoint plumbing every keyed operator shares: the keyed part of its snapshot, the
// notifications, the state metrics and closing, all on its store (opened by the operator's
// Open with OpenKeyedStateStore).
class KeyedStateOperator : public Operator {
 public:
  void NotifyCheckpointComplete(int64_t id) override { store_->NotifyCheckpointComplete(id); }
  void NotifyCheckpointAborted(int64_t id) override { store_->NotifyCheckpointAborted(id); }
  void ReportMetrics(MetricWriter& out) const override { ReportStateMetrics(store_.get(), out); }
  Status Close() override {
    store_.reset();
    return Status::Ok();
  }

 protected:
  // The store's snapshot as out->keyed.
  Status SnapshotStore(int64_t checkpoint_id, OperatorSnapshot* out) {
    WEIR_ASSIGN_OR_RETURN(auto upload, store_->Snapshot(checkpoint_id));
    out->keyed = AdaptKeyedSnapshot(std::move(upload));
    return Status::Ok();
  }

  // Processing time: the latest time the task passed to OnProcessingTime (which the operator
  // records in processing_time_), the wall clock before the first call.
  int64_t ProcessingTime() const {
    if (processing_time_ > 0) return processing_time_;
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  std::unique_ptr<state::KeyedStateStore> store_;
  int64_t processing_time_ = 0;  // the latest OnProcessingTime
};

// The runnable factory of a keyed operator: its validation-only spec (aggregate_plan.h) plus
// Create, which plans with `Plan` and builds an `Op` from the plan.
template <typename Spec, typename Op, auto Plan>
class KeyedOperatorFactory final : public Spec {
 public:
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(auto plan, Plan(config, input));
    return std::unique_ptr<Operator>(std::make_unique<Op>(std::move(plan)));
  }
};

}  // namespace weir
