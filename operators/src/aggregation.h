// What the keyed operators (keyed_aggregate, window_aggregate, dedup, top_n) share at run time:
// the glue from operator contexts to keyed state stores, window ends as state keys, and the
// checkpointed watermark (their plans are in aggregate_plan.h). The task thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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

// Times as state keys (map user keys, timer namespaces; a window's end, a join row's time):
// 8 bytes big-endian with the sign bit flipped, so they sort bytewise in numeric order (the
// windows of a key iterate in time order). Encode appends to `out`; Decode needs 8 bytes.
void EncodeOrderedTime(int64_t t, std::string* out);
bool DecodeOrderedTime(std::string_view in, int64_t* t);
// A window end alone as a key: `out` is replaced.
inline void EncodeWindowEnd(int64_t end, std::string* out) {
  out->clear();
  EncodeOrderedTime(end, out);
}
inline bool DecodeWindowEnd(std::string_view in, int64_t* end) {
  return DecodeOrderedTime(in, end);
}

// a + b, clamped to the int64 range.
int64_t SaturatingAdd(int64_t a, int64_t b);

// The operator-state list that holds an event-time operator's watermark (the same name in every
// operator, as savepoints have it).
inline constexpr char kWatermarkList[] = "watermark";

// The current watermark of an event-time operator as operator state: a UNION list `name` of
// one entry; a restore takes the minimum over the old subtasks (so that a restored operator
// drops the same late records as before). RestoreWatermark leaves *watermark unchanged when
// the restored state has none.
proto::NamedList UnionInt64List(const std::string& name, int64_t value);
Status RestoreWatermark(const OperatorContext& ctx, const char* name, const char* op,
                        int64_t* watermark);
// The int64 entries (Codec<int64_t>) of the restored operator-state lists named `name`, each
// passed to fn; a malformed one is a DataLoss naming `what`.
Status ForEachRestoredInt64(const OperatorContext& ctx, const char* name, const char* what,
                            const std::function<void(int64_t)>& fn);

// The rows of one input batch grouped by key and window (or any int64 `end`), so that a keyed
// operator reads and writes each (key, window) of the batch once: hot keys cost one state
// access per batch, not per row. Keeps its buffers between batches (no allocation once warm).
class KeyWindowGroups {
 public:
  struct Entry {
    int64_t end;
    uint32_t key_off, key_len, row;
    int key_group;
  };
  void Clear() {
    entries_.clear();
    arena_.clear();
  }
  // Row `row` (of key `key`) goes to window `end`; consecutive adds of one row share its key.
  void Add(int64_t end, std::string_view key, int key_group, size_t row);
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  const Entry& operator[](size_t i) const { return entries_[i]; }
  std::string_view KeyOf(const Entry& e) const {
    return std::string_view(arena_).substr(e.key_off, e.key_len);
  }
  // By key, then end, then row (the rows of a group in arrival order).
  void Sort();
  // One past the last entry of the group that starts at entry i: same key and end
  // (SameKeyEnd), or same key only (SameKeyEnd with by_end false).
  size_t GroupEnd(size_t i, bool by_end = true) const;

 private:
  std::vector<Entry> entries_;
  std::string arena_;
};

// The records an event-time operator on rows (dedup, top_n, the joins) cannot use: late ones
// (counted in OperatorMetrics::late_records_dropped and sent unchanged to the side output
// `output`, "late" unless named, which drops and counts them when no edge takes it) and those
// without a time (dropped); both logged at most every 10 s with the totals so far.
class DroppedRecords {
 public:
  void Open(const OperatorContext& ctx, std::string op, std::string output = "late");
  // Per batch: Begin, then Late/NoTime per record, then End (which emits the late rows).
  void Begin() { late_rows_.Clear(); }
  void Late(const Row& row, int64_t t, int64_t watermark);
  void NoTime(int64_t watermark);
  Status End();

 private:
  void Log(const char* why, int64_t t, int64_t watermark);
  std::string op_;
  std::string output_;
  std::string log_prefix_;
  OperatorMetrics* metrics_ = nullptr;
  Output* late_out_ = nullptr;
  RowBatch late_rows_;
  int64_t late_ = 0;
  int64_t no_time_ = 0;
  int64_t last_log_ms_ = 0;
};

// The checkpoint plumbing every keyed operator shares (keyed_aggregate, the joins, and through
// KeyedEventTimeOperator the event-time ones): the keyed part of its snapshot, the
// notifications, the state metrics and closing, all on its store (opened by the operator's
// Open with OpenKeyedStateStore), and processing time as the task last passed it.
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

  // OnProcessingTime(now_ms) records the task's clock here first (it never goes back).
  void AdvanceProcessingTime(int64_t now_ms) {
    if (now_ms > processing_time_) processing_time_ = now_ms;
  }
  // Processing time: the latest time the task passed to OnProcessingTime, the wall clock before
  // the first call.
  int64_t ProcessingTime() const {
    if (processing_time_ > 0) return processing_time_;
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  std::unique_ptr<state::KeyedStateStore> store_;
  int64_t processing_time_ = 0;  // the latest OnProcessingTime
};

// What the event-time keyed operators (window_aggregate, dedup, top_n) share: a keyed state
// store in <local dir>/keyed, the watermark reached (checkpointed with UnionInt64List, so
// that a restored operator drops the same late records as before), and their checkpoint and
// metrics hooks. Subclasses call OpenStore first in Open.
class KeyedEventTimeOperator : public KeyedStateOperator {
 public:
  // End of input: the final watermark.
  Status Finish(Output& out) override { return OnWatermark(kMaxWatermark, out); }
  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override;

 protected:
  // Opens the store and restores the watermark; `op` names the operator in errors.
  Status OpenStore(const OperatorContext& ctx, const char* op);

  int max_parallelism_ = 128;
  int64_t watermark_ = kMinWatermark;
};

// dedup and top_n: the rows of a batch grouped by key and an event-time end that each row's time
// gives; rows without a time are dropped, rows whose end the watermark has passed (end - 1 <=
// watermark) are late (DroppedRecords).
class KeyedRowOperator : public KeyedEventTimeOperator {
 protected:
  KeyedRowOperator(const std::vector<int>& key_idx, const Schema& key_schema, int time_idx)
      : keys_(key_idx, key_schema), time_idx_(time_idx) {}
  // Opens the store and the dropped-record accounting of operator `op`.
  Status OpenRows(const OperatorContext& ctx, const char* op) {
    dropped_.Open(ctx, op);
    return OpenStore(ctx, op);
  }
  // Fills groups_ (sorted) with the usable rows of `in`, each under end_of(its time), and emits
  // the late ones to the side output.
  template <typename EndOf>
  Status GroupRows(const RowBatch& in, EndOf end_of) {
    dropped_.Begin();
    groups_.Clear();
    for (size_t r = 0; r < in.size(); ++r) {
      const Row& row = in[r];
      const Value& tv = row[time_idx_];
      if (tv.is_null()) {
        dropped_.NoTime(watermark_);
        continue;
      }
      const int64_t end = end_of(tv.i);
      if (SaturatingAdd(end, -1) <= watermark_) {
        dropped_.Late(row, tv.i, watermark_);
        continue;
      }
      keys_.Extract(row, max_parallelism_);
      groups_.Add(end, keys_.key(), keys_.key_group(), r);
    }
    groups_.Sort();
    return dropped_.End();
  }

  KeyExtractor keys_;
  KeyWindowGroups groups_;
  DroppedRecords dropped_;
  const int time_idx_;
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
