// keyed_aggregate: a running aggregate per key (count, sum, min, max, avg), like Flink's
// keyBy(...).sum(...). Its input must arrive on a hash edge keyed by the same fields, so every
// key lives in exactly one subtask. Each key's accumulators are one AggregatingState entry in
// the keyed state store (typed_state.h), serialized with the row serde.
//
// config: key: [fields]; aggregations: [{fn: count|sum|min|max|avg, field: f, as: name}];
//         emit: updates (default: the key's new result for every input row) | final (one row
//         per key when the input ends);
//         state_ttl: a duration (optional): a key not seen for that long (processing time) is
//         forgotten, as if it had never been seen.
//
// State TTL: the accumulator carries the key's last access time (8 bytes after the row), and
// each key has one processing-time timer at most: registered when the key is new, and on
// firing either the key is cleared (idle for the TTL) or the timer is set again for last access
// + TTL. So a record costs no extra state access. Processing time is the latest time the task
// passed to OnProcessingTime (the wall clock before the first call).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "aggregation.h"
#include "weir/operator.h"
#include "weir/operators.h"

namespace weir {
namespace {

class KeyedAggregate : public KeyedStateOperator, private state::AggregateFunction<Row> {
 public:
  explicit KeyedAggregate(AggPlan plan)
      : plan_(std::move(plan)),
        keys_(plan_.key_idx, plan_.key_schema),
        acc_(plan_.aggs.acc_schema.size()) {}

  Status Open(const OperatorContext& ctx) override {
    max_parallelism_ = ctx.max_parallelism;
    WEIR_ASSIGN_OR_RETURN(store_, OpenKeyedStateStore(ctx, "keyed"));
    // Version of the accumulator rows (the aggregations' accumulator schema, row serde): bump
    // it when their layout changes, so that old savepoints are refused rather than misread.
    WEIR_ASSIGN_OR_RETURN(accs_, store_->GetAggregatingState<Row>("acc", this, /*version=*/1));
    if (plan_.ttl_ms > 0) {
      WEIR_ASSIGN_OR_RETURN(ttl_timers_, store_->GetTimerService("ttl"));
    }
    return Status::Ok();
  }

  Status OnProcessingTime(int64_t now_ms, Output&) override {
    AdvanceProcessingTime(now_ms);
    if (ttl_timers_ == nullptr) return Status::Ok();
    return ttl_timers_->AdvanceProcessingTime(
        now_ms, [this, now_ms](const state::InternalTimerService::Timer&) -> Status {
          std::string& acc = value_;
          if (!accs_.Get(&acc)) return Status::Ok();
          WEIR_ASSIGN_OR_RETURN(int64_t last, DecodeAcc(acc));
          if (last < 0 || last + plan_.ttl_ms <= now_ms) return accs_.Clear();
          return ttl_timers_->RegisterProcessingTimeTimer(last + plan_.ttl_ms);
        });
  }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    return SnapshotStore(checkpoint_id, out);
  }


  Status Process(RowBatch& in, Output& out) override {
    out_.Clear();
    if (ttl_timers_ != nullptr) now_ = ProcessingTime();
    for (size_t r = 0; r < in.size(); ++r) {
      const Row& row = in[r];
      keys_.Extract(row, max_parallelism_);
      WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(keys_.key_group(), keys_.key()));
      // Add() reads the accumulator, calls our Add below (which leaves it in acc_) and writes it.
      WEIR_RETURN_IF_ERROR(accs_.Add(row));
      if (needs_timer_) {
        WEIR_RETURN_IF_ERROR(ttl_timers_->RegisterProcessingTimeTimer(now_ + plan_.ttl_ms));
      }
      if (!plan_.emit_final) WriteResult(keys_.key_row(), out_.Append(plan_.output.size()));
    }
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  Status Finish(Output& out) override {
    if (!plan_.emit_final) return Status::Ok();
    out_.Clear();
    Row key_row;
    WEIR_RETURN_IF_ERROR(accs_.ForEachKey([&](int, std::string_view key, std::string_view acc) {
      if (!keys_.Decode(key, key_row)) {
        return Status::DataLoss("keyed_aggregate: corrupt key in state");
      }
      WEIR_RETURN_IF_ERROR(DecodeAcc(acc).status());
      WriteResult(key_row, out_.Append(plan_.output.size()));
      if (out_.size() >= RowBatch::kDefaultCapacity) {
        WEIR_RETURN_IF_ERROR(out.Emit(out_));
        out_.Clear();
      }
      return Status::Ok();
    }));
    if (!out_.empty()) return out.Emit(out_);
    return Status::Ok();
  }

 private:
  // state::AggregateFunction<Row>: the accumulator is acc_schema serialized, then (with a
  // TTL) the last access time.
  Status Add(const Row& row, bool present, std::string* acc) override {
    int64_t last = -1;
    if (present) {
      WEIR_ASSIGN_OR_RETURN(last, DecodeAcc(*acc));
    } else {
      for (auto& v : acc_.fields) v.SetNull();
    }
    UpdateAccumulators(plan_.aggs, row, acc_);
    acc_buf_.Clear();
    SerializeRow(acc_, plan_.aggs.acc_schema, acc_buf_);
    acc->assign(reinterpret_cast<const char*>(acc_buf_.data()), acc_buf_.size());
    // A key without a time has no timer yet (new, or written before the TTL was configured).
    needs_timer_ = ttl_timers_ != nullptr && last < 0;
    if (ttl_timers_ != nullptr) {
      std::string& t = time_buf_;
      state::Codec<int64_t>::Encode(now_, &t);
      acc->append(t);
    }
    return Status::Ok();
  }

  // Decodes an accumulator into acc_; returns its last access time, or -1 if it has none.
  Result<int64_t> DecodeAcc(std::string_view bytes) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    const auto* end = p + bytes.size();
    if (!DeserializeRow(&p, end, plan_.aggs.acc_schema, acc_) || (end - p != 0 && end - p != 8)) {
      return Status::DataLoss("keyed_aggregate: corrupt accumulator in state");
    }
    int64_t last = -1;
    if (end - p == 8) {
      state::Codec<int64_t>::Decode(std::string_view(reinterpret_cast<const char*>(p), 8), &last);
    }
    return last;
  }

  void WriteResult(const Row& key, Row& out) {
    for (size_t i = 0; i < key.size(); ++i) out[i].CopyFrom(key[i]);
    WriteAggregates(plan_.aggs, acc_, out, key.size());
  }

  AggPlan plan_;
  KeyExtractor keys_;
  state::AggregatingState<Row> accs_;
  state::InternalTimerService* ttl_timers_ = nullptr;  // with a TTL only
  int64_t now_ = 0;              // processing time of the batch being processed
  bool needs_timer_ = false;     // set by Add: the key needs a TTL timer
  std::string value_;
  std::string time_buf_;
  int max_parallelism_ = 128;
  Row acc_;
  ByteBuffer acc_buf_;
  RowBatch out_;
};

}  // namespace

void RegisterKeyedAggregate(OperatorRegistry& r) {
  r.Register("keyed_aggregate",
             std::make_unique<KeyedOperatorFactory<KeyedAggregateSpec, KeyedAggregate, PlanAggregate>>());
}

}  // namespace weir
