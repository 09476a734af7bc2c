// top_n: the first n rows of each partition in a given order, emitted once when the partition
// is complete (Flink's window Top-N, `ROW_NUMBER() OVER (PARTITION BY window_start, window_end,
// ... ORDER BY ...) <= n` over a windowed table; append-only). Its input must arrive on a hash
// edge keyed by `partition_by`.
//
// config: partition_by: [fields], among them time_field (default window_end): a timestamp (or
//         int64 ms) field that ends the partition, as window_aggregate's window_end does;
//         order_by: an int64, double, timestamp or string field, or a list of them each with
//         its direction, as SQL's ORDER BY ([price desc, dateTime asc]: by price, ties by
//         dateTime); order: desc (default) | asc, for fields without one;
//         n: 1..10000; with_ties: false (default) | true: also every row equal (in order_by) to
//         the n-th, as SQL's RANK() <= n (Nexmark q5: all auctions with the window's maximum
//         count); rank_field: a name (optional): adds the row's rank, an int64 from 1 (with
//         ties, tied rows share a rank and the next rank skips, as RANK(); else the row number).
// Rows equal in order_by are ordered by their other fields, each ascending in input order
// (nulls first), so the rows kept never depend on arrival order or parallelism.
//
// A partition is complete when the watermark reaches its time_field value - 1 (window_end - 1,
// the time at which window_aggregate emits the window): then its rows go out, in rank order,
// and its state is cleared. Rows of a partition the watermark has passed are late: counted in
// OperatorMetrics::late_records_dropped, sent unchanged to the side output `late` (dropped and
// counted when no edge takes it), and logged at most every 10 s. Rows with a null time are
// dropped and logged likewise.
//
// State: per partition (the partition_by fields are the key) one value "top": its best rows so
// far (the input's row serde, in rank order), at most n, or with ties n plus the rows tied with
// the n-th; and one event-time timer at time - 1. Per batch the rows are grouped by partition:
// one read and one write per partition per batch. The watermark is checkpointed as
// window_aggregate's.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "aggregation.h"
#include "weir/operator.h"
#include "weir/operators.h"

namespace weir {
namespace {

// Nulls first; values of one field have one type.
int CompareValues(const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return static_cast<int>(!a.is_null()) - !b.is_null();
  switch (a.type) {
    case Type::kBool:
      return static_cast<int>(a.b) - static_cast<int>(b.b);
    case Type::kDouble:
      return a.d < b.d ? -1 : b.d < a.d ? 1 : 0;
    case Type::kString:
    case Type::kBytes:
      return a.s.compare(b.s) < 0 ? -1 : a.s == b.s ? 0 : 1;
    default:
      return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  }
}

class TopN : public KeyedRowOperator {
 public:
  explicit TopN(TopNPlan plan)
      : KeyedRowOperator(plan.key_idx, plan.key_schema, plan.time_idx), plan_(std::move(plan)) {}

  Status Open(const OperatorContext& ctx) override {
    WEIR_RETURN_IF_ERROR(OpenRows(ctx, "top_n"));
    // Version of the stored rows (the input's row serde, concatenated).
    WEIR_ASSIGN_OR_RETURN(top_, store_->GetValueState("top", /*version=*/1));
    WEIR_ASSIGN_OR_RETURN(timers_, store_->GetTimerService("partitions"));
    return Status::Ok();
  }

  Status Process(RowBatch& in, Output& out) override {
    // A partition ends at its time.
    WEIR_RETURN_IF_ERROR(GroupRows(in, [](int64_t t) { return t; }));
    if (groups_.empty()) return Status::Ok();
    return Update(in);
  }

  Status OnWatermark(int64_t watermark, Output& out) override {
    if (watermark > watermark_) watermark_ = watermark;
    out_.Clear();
    WEIR_RETURN_IF_ERROR(timers_->AdvanceWatermark(
        watermark_, [&](const state::InternalTimerService::Timer&) -> Status {
          if (!top_.Get(&bytes_)) return Status::Ok();
          WEIR_RETURN_IF_ERROR(Decode(bytes_));
          for (size_t k = 0; k < used_; ++k) {
            Row& o = out_.Append(plan_.output.size());
            const Row& r = pool_[k];
            for (size_t f = 0; f < r.size(); ++f) o[f].CopyFrom(r[f]);
            if (plan_.rank) o[r.size()].SetInt64(Rank(k));
            if (out_.size() >= RowBatch::kDefaultCapacity) {
              WEIR_RETURN_IF_ERROR(out.Emit(out_));
              out_.Clear();
            }
          }
          return top_.Clear();
        }));
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

 private:
  // <0 if a ranks before b in order_by's fields alone (0: tied).
  int CompareOrder(const Row& a, const Row& b) const {
    for (const TopNPlan::OrderKey& k : plan_.order_by) {
      const int c = CompareValues(a[static_cast<size_t>(k.idx)], b[static_cast<size_t>(k.idx)]);
      if (c != 0) return k.desc ? -c : c;
    }
    return 0;
  }

  // <0 if a ranks before b: order_by, then the other fields ascending.
  int Compare(const Row& a, const Row& b) const {
    if (int c = CompareOrder(a, b); c != 0) return c;
    for (size_t f = 0; f < a.size(); ++f) {
      if (int d = CompareValues(a[f], b[f]); d != 0) return d;
    }
    return 0;
  }

  // The rank of pool_[k] (pool_ sorted): with ties, 1 + the rows before it that differ in
  // order_by; else its position.
  int64_t Rank(size_t k) {
    if (!plan_.with_ties) return static_cast<int64_t>(k) + 1;
    if (k == 0) {
      rank_ = 1;
    } else if (CompareOrder(pool_[k], pool_[k - 1]) != 0) {
      rank_ = static_cast<int64_t>(k) + 1;
    }
    return rank_;
  }

  Row& NewRow() {
    if (used_ == pool_.size()) pool_.emplace_back();
    return pool_[used_++];
  }

  // The stored rows into pool_[0, used_).
  Status Decode(std::string_view bytes) {
    used_ = 0;
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    const auto* end = p + bytes.size();
    while (p < end) {
      if (!DeserializeRow(&p, end, plan_.input, NewRow())) {
        return Status::DataLoss("top_n: corrupt row in state");
      }
    }
    return Status::Ok();
  }

  // Per partition of the batch: its stored rows and the batch's, sorted, cut to n (and ties),
  // written back.
  Status Update(const RowBatch& in) {
    for (size_t i = 0; i < groups_.size();) {
      const size_t j = groups_.GroupEnd(i);
      const auto& g = groups_[i];
      WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(g.key_group, groups_.KeyOf(g)));
      const bool present = top_.Get(&bytes_);
      if (present) {
        WEIR_RETURN_IF_ERROR(Decode(bytes_));
      } else {
        used_ = 0;
      }
      const size_t stored = used_;
      for (size_t k = i; k < j; ++k) NewRow().CopyFrom(in[groups_[k].row]);
      order_.resize(used_);
      for (size_t k = 0; k < used_; ++k) order_[k] = static_cast<uint32_t>(k);
      std::sort(order_.begin(), order_.end(),
                [&](uint32_t a, uint32_t b) { return Compare(pool_[a], pool_[b]) < 0; });
      size_t keep = std::min<size_t>(used_, static_cast<size_t>(plan_.n));
      if (plan_.with_ties) {
        while (keep < used_ && CompareOrder(pool_[order_[keep]], pool_[order_[keep - 1]]) == 0) {
          ++keep;
        }
      }
      // Unchanged when no row of the batch made it (the stored rows are sorted already).
      bool changed = !present;
      for (size_t k = 0; k < keep && !changed; ++k) changed = order_[k] >= stored;
      if (!changed) {
        i = j;
        continue;
      }
      buf_.Clear();
      for (size_t k = 0; k < keep; ++k) SerializeRow(pool_[order_[k]], plan_.input, buf_);
      WEIR_RETURN_IF_ERROR(
          top_.Put(std::string_view(reinterpret_cast<const char*>(buf_.data()), buf_.size())));
      if (!present) WEIR_RETURN_IF_ERROR(timers_->RegisterEventTimeTimer(g.end - 1));
      i = j;
    }
    return Status::Ok();
  }

  TopNPlan plan_;
  state::ValueState top_;
  state::InternalTimerService* timers_ = nullptr;
  int64_t rank_ = 1;
  // Per batch and partition (capacity kept between batches).
  std::vector<Row> pool_;
  size_t used_ = 0;
  std::vector<uint32_t> order_;
  RowBatch out_;
  std::string bytes_;
  ByteBuffer buf_;
};

}  // namespace

void RegisterTopN(OperatorRegistry& r) {
  r.Register("top_n", std::make_unique<KeyedOperatorFactory<TopNSpec, TopN, PlanTopN>>());
}

}  // namespace weir
