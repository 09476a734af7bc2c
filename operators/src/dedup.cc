// dedup: one row per key within a TTL of event time (Meituan's dedup; Flink's deduplication
// `ROW_NUMBER() OVER (PARTITION BY key ORDER BY rowtime ASC|DESC) = 1`, here append-only). Its
// input must arrive on a hash edge keyed by the same fields.
//
// config: key: [fields]; time_field: a timestamp (or int64 ms) field; ttl: a duration;
//         keep: first (default) | last; time: event (the only one; see below).
//
// Scopes: a key's rows are deduplicated within the aligned windows of event time
// [k * ttl, (k + 1) * ttl) (as window_aggregate's tumbling `size`, and Flink's window
// deduplication), so a row's scope depends on its time only, not on the clock, the parallelism
// or a restore. Processing time is refused: its scopes would depend on the clock.
//   keep: first   the first row of a key in a scope is emitted at once, unchanged; the key's
//                 later rows in that scope are dropped and counted (weir_dedup_duplicates_total).
//                 "First" is the first to arrive: in event-time order when the input is (one
//                 source subtask per key's rows, as Nexmark's generator).
//   keep: last    the row with the latest time of a key in a scope (equal times: the one that
//                 arrived last, as Flink's keep-last-row) is emitted once, when the watermark
//                 passes the scope's end; the others are counted as duplicates. Append-only:
//                 no retraction of an earlier row (Flink's keep-last updates its result).
// Output: the input's rows as they are (same schema).
//
// State: per key and scope a value state "scope" (its state key: the key's bytes, then the
// scope's end as window_aggregate encodes it; in the key's key group, so it is checkpointed and
// rescaled with it, and the write-back state cache covers it) holding nothing (keep first) or
// the kept row (keep last). No timer per entry (that would cost two more state writes per key
// and scope): the operator keeps the ends of the open scopes (in memory, and checkpointed as
// the UNION list "scope_ends"), and when the watermark passes one, one scan of the entries
// (at most those of the open scopes) emits the ended ones' rows (keep last) and clears them.
// So the state holds one entry per key and open scope.
// Rows whose scope the watermark has passed (end - 1 <= watermark) are late: counted in
// OperatorMetrics::late_records_dropped, sent unchanged to the side output `late` (dropped and
// counted when no edge takes it), and logged at most every 10 s, as window_aggregate's. Rows
// with a null time are dropped and logged likewise.
//
// Per batch the rows are grouped by key and scope: one state read (and at most one write) per
// key and scope per batch. The watermark is checkpointed as window_aggregate's.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "aggregation.h"
#include "weir/operator.h"
#include "weir/operators.h"

namespace weir {
namespace {

constexpr char kScopeEnds[] = "scope_ends";

class Dedup : public KeyedRowOperator {
 public:
  explicit Dedup(DedupPlan plan)
      : KeyedRowOperator(plan.key_idx, plan.key_schema, plan.time_idx), plan_(std::move(plan)) {}

  Status Open(const OperatorContext& ctx) override {
    WEIR_RETURN_IF_ERROR(OpenRows(ctx, "dedup"));
    // Version of the entries (scope end; the kept row in the input's row serde).
    WEIR_ASSIGN_OR_RETURN(scopes_, store_->GetValueState("scope", /*version=*/1));
    // The open scopes' ends (a UNION list: after a rescale any subtask may hold any of them).
    return ForEachRestoredInt64(ctx, kScopeEnds, "dedup scope end",
                                [this](int64_t end) { open_ends_.insert(end); });
  }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    WEIR_RETURN_IF_ERROR(KeyedRowOperator::Snapshot(checkpoint_id, out));
    proto::NamedList list;
    list.set_name(kScopeEnds);
    list.set_mode(proto::NamedList::UNION);
    for (int64_t end : open_ends_) state::Codec<int64_t>::Encode(end, list.add_entries());
    out->operator_state.push_back(std::move(list));
    return Status::Ok();
  }

  Status Process(RowBatch& in, Output& out) override {
    emit_.clear();
    // Scope: floor(t / ttl) * ttl, also for negative times; saturated at the int64 range.
    WEIR_RETURN_IF_ERROR(GroupRows(in, [ttl = plan_.ttl_ms](int64_t t) {
      int64_t start = t - t % ttl;
      if (t % ttl < 0) start = SaturatingAdd(start, -ttl);
      return SaturatingAdd(start, ttl);
    }));
    if (!groups_.empty()) WEIR_RETURN_IF_ERROR(Update(in));
    if (emit_.empty()) return Status::Ok();
    // The rows kept first, in arrival order.
    std::sort(emit_.begin(), emit_.end());
    out_.Clear();
    for (uint32_t r : emit_) out_.Append(in[r].size()).CopyFrom(in[r]);
    return out.Emit(out_);
  }

  Status OnWatermark(int64_t watermark, Output& out) override {
    if (watermark > watermark_) watermark_ = watermark;
    if (open_ends_.empty() || *open_ends_.begin() - 1 > watermark_) return Status::Ok();
    // One scan of the entries (those of the open scopes) finds the ended ones: keep last emits
    // their rows; then they are cleared.
    out_.Clear();
    expired_.clear();
    expired_keys_.clear();
    WEIR_RETURN_IF_ERROR(
        scopes_.ForEachKey([&](int key_group, std::string_view key, std::string_view value) {
          int64_t end = 0;
          if (key.size() < 8 || !DecodeWindowEnd(key.substr(key.size() - 8), &end)) {
            return Status::DataLoss("dedup: malformed scope key in state");
          }
          if (end - 1 > watermark_) return Status::Ok();
          expired_.push_back({key_group, static_cast<uint32_t>(expired_keys_.size()),
                              static_cast<uint32_t>(key.size())});
          expired_keys_.append(key);
          if (!plan_.keep_last) return Status::Ok();
          WEIR_RETURN_IF_ERROR(DecodeRow(value, out_.Append(plan_.output.size())));
          if (out_.size() < RowBatch::kDefaultCapacity) return Status::Ok();
          Status s = out.Emit(out_);
          out_.Clear();
          return s;
        }));
    for (const Expired& e : expired_) {
      WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(
          e.key_group, std::string_view(expired_keys_).substr(e.key_off, e.key_len)));
      WEIR_RETURN_IF_ERROR(scopes_.Clear());
    }
    open_ends_.erase(open_ends_.begin(), open_ends_.upper_bound(SaturatingAdd(watermark_, 1)));
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  void ReportMetrics(MetricWriter& out) const override {
    ReportStateMetrics(store_.get(), out);
    out.Counter("weir_dedup_duplicates_total",
                "Rows dedup dropped as duplicates of the row it kept for their key and scope",
                static_cast<double>(duplicates_));
  }

 private:
  // Per (key, scope) of the batch: keep first emits its first row if the scope is new; keep
  // last keeps the latest row (one read, one write).
  Status Update(const RowBatch& in) {
    for (size_t i = 0; i < groups_.size();) {
      const size_t j = groups_.GroupEnd(i);
      const auto& g = groups_[i];
      // The state key: the key's bytes and the scope's end (in the key's group).
      scope_key_.assign(groups_.KeyOf(g));
      EncodeWindowEnd(g.end, &end_bytes_);
      scope_key_.append(end_bytes_);
      WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(g.key_group, scope_key_));
      bool present;
      if (!plan_.keep_last) {
        present = scopes_.Get(&bytes_);
        if (!present) {
          emit_.push_back(g.row);
          WEIR_RETURN_IF_ERROR(scopes_.Put({}));
        }
      } else {
        present = scopes_.Get(&bytes_);
        int64_t best_t = 0;
        if (present) {
          WEIR_RETURN_IF_ERROR(DecodeRow(bytes_, stored_));
          best_t = stored_[plan_.time_idx].i;
        }
        size_t best = j;  // none of the batch
        for (size_t k = i; k < j; ++k) {
          const int64_t t = in[groups_[k].row][plan_.time_idx].i;
          if ((!present && best == j) || t >= best_t) {
            best = k;
            best_t = t;
          }
        }
        if (best != j) {
          buf_.Clear();
          SerializeRow(in[groups_[best].row], plan_.output, buf_);
          WEIR_RETURN_IF_ERROR(scopes_.Put(
              std::string_view(reinterpret_cast<const char*>(buf_.data()), buf_.size())));
        }
      }
      duplicates_ += static_cast<int64_t>(j - i) - (present ? 0 : 1);
      if (!present) open_ends_.insert(g.end);
      i = j;
    }
    return Status::Ok();
  }

  Status DecodeRow(std::string_view bytes, Row& row) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    if (!DeserializeRow(&p, p + bytes.size(), plan_.output, row)) {
      return Status::DataLoss("dedup: corrupt row in state");
    }
    return Status::Ok();
  }

  DedupPlan plan_;
  state::ValueState scopes_;
  // The ends of the scopes that may have entries (a scan at the watermark finds them).
  std::set<int64_t> open_ends_;
  // OnWatermark's ended entries: key group and key (bytes in expired_keys_).
  struct Expired {
    int key_group;
    uint32_t key_off, key_len;
  };
  std::vector<Expired> expired_;
  std::string expired_keys_;
  int64_t duplicates_ = 0;
  // Per batch (capacity kept between batches).
  std::vector<uint32_t> emit_;
  RowBatch out_;
  std::string scope_key_;
  std::string end_bytes_;
  std::string bytes_;
  Row stored_;
  ByteBuffer buf_;
};

}  // namespace

void RegisterDedup(OperatorRegistry& r) {
  r.Register("dedup", std::make_unique<KeyedOperatorFactory<DedupSpec, Dedup, PlanDedup>>());
}

}  // namespace weir
