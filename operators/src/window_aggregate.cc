// window_aggregate: tumbling event-time windows per key (Flink's
// keyBy(...).window(TumblingEventTimeWindows.of(size)).aggregate(...)). Its input must arrive
// on a hash edge keyed by the same fields.
//
// config: key: [fields]; time_field: a timestamp (or int64 ms) field; size: a duration;
//         aggregations: as keyed_aggregate's; allowed_lateness: a duration (default 0).
// Output: the key fields, window_start and window_end (timestamps; the window is
// [window_start, window_end)), then the aggregates.
//
// State: per key, a map state "windows" from window end to the window's accumulator row, and
// an event-time timer per (key, window) at window_end - 1 (namespace: the window end). When the
// watermark reaches that timer the window's row is emitted and, without allowed lateness, its
// state cleared. With allowed lateness L the state is kept until a second timer at
// window_end - 1 + L; a record for the window that comes before then updates it and emits the
// updated row at once (a late firing, as Flink's event-time trigger does). Records whose window
// is past window_end - 1 + L at the current watermark are late: sent unchanged to the side
// output `late` (an edge `from: <id>.late` takes them to any sink, like Flink's
// sideOutputLateData; without one they are dropped and counted as side output drops), counted
// in OperatorMetrics::late_records_dropped and logged (at most every 10 s). Rows without a usable
// time (null, or so small that its window has no representable start) are dropped and logged
// likewise.
//
// Per batch, the rows of windows that have not fired are grouped by key and window, so that a
// hot key costs one state read and write per batch.
//
// The current watermark is checkpointed (a UNION list; a restore takes the minimum over the
// old subtasks) so that a restored operator drops the same late records as before.
#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "aggregation.h"
#include "weir/clock.h"
#include "weir/logging.h"
#include "weir/operator.h"
#include "weir/operators.h"

namespace weir {
namespace {

constexpr char kWatermarkList[] = "watermark";
constexpr char kLateOutput[] = "late";
constexpr int64_t kLogEveryMs = 10'000;

// Window ends as map keys and timer namespaces: big-endian with the sign bit flipped, so the
// windows of a key iterate in time order.
void EncodeEnd(int64_t end, std::string* out) {
  const uint64_t u = static_cast<uint64_t>(end) ^ (uint64_t{1} << 63);
  out->resize(8);
  for (int i = 0; i < 8; ++i) (*out)[i] = static_cast<char>((u >> (8 * (7 - i))) & 0xff);
}
bool DecodeEnd(std::string_view in, int64_t* end) {
  if (in.size() != 8) return false;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>(in[i]);
  *end = static_cast<int64_t>(u ^ (uint64_t{1} << 63));
  return true;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}

class WindowAggregate : public Operator {
 public:
  explicit WindowAggregate(WindowPlan plan)
      : plan_(std::move(plan)),
        keys_(plan_.key_idx, plan_.key_schema),
        acc_(plan_.aggs.acc_schema.size()) {}

  Status Open(const OperatorContext& ctx) override {
    max_parallelism_ = ctx.max_parallelism;
    metrics_ = ctx.metrics;
    log_prefix_ = ctx.log_prefix;
    late_out_ = ctx.SideOutput(kLateOutput);
    WEIR_ASSIGN_OR_RETURN(store_, OpenKeyedStateStore(ctx, "keyed"));
    // Version of the window entries (user key and accumulator row layout): bump it when they
    // change, so that old savepoints are refused rather than misread.
    WEIR_ASSIGN_OR_RETURN(windows_, store_->GetMapState("windows", /*version=*/1));
    WEIR_ASSIGN_OR_RETURN(timers_, store_->GetTimerService("windows"));
    if (ctx.restored != nullptr) {
      bool any = false;
      int64_t min = kMaxWatermark;
      for (const proto::NamedList& list : ctx.restored->operator_state) {
        if (list.name() != kWatermarkList) continue;
        for (const std::string& e : list.entries()) {
          int64_t wm = 0;
          if (!state::Codec<int64_t>::Decode(e, &wm)) {
            return Status::DataLoss("window_aggregate: malformed restored watermark");
          }
          min = std::min(min, wm);
          any = true;
        }
      }
      if (any) watermark_ = min;
    }
    return Status::Ok();
  }

  // Rows of windows that have not fired yet are grouped by key and window first (a sort of the
  // batch's row indexes), so each (key, window) of the batch reads and writes its accumulator
  // once: hot keys cost one state access per batch, not per row. Rows of windows that already
  // fired (allowed lateness) update and emit one by one, in order, as before.
  Status Process(RowBatch& in, Output& out) override {
    out_.Clear();
    late_rows_.Clear();
    pending_.clear();
    key_arena_.clear();
    for (size_t r = 0; r < in.size(); ++r) {
      const Row& row = in[r];
      const Value& tv = row[plan_.time_idx];
      if (tv.is_null()) {
        ++no_time_;
        LogDropped("without a time", 0);
        continue;
      }
      const int64_t t = tv.i;
      // floor(t / size) * size, also for negative times; a window that would start before
      // the smallest int64 has no representable start: such a time is unusable.
      int64_t start = t - t % plan_.size_ms;
      if (t % plan_.size_ms < 0 && __builtin_sub_overflow(start, plan_.size_ms, &start)) {
        ++no_time_;
        LogDropped("with a time too small for its window", t);
        continue;
      }
      const int64_t end = SaturatingAdd(start, plan_.size_ms);
      const int64_t max_ts = end - 1;
      const int64_t cleanup = SaturatingAdd(max_ts, plan_.lateness_ms);
      if (cleanup <= watermark_) {
        ++late_;
        if (metrics_ != nullptr)
          metrics_->late_records_dropped.fetch_add(1, std::memory_order_relaxed);
        LogDropped("late", t);
        if (late_out_ != nullptr) late_rows_.Append(row.fields.size()).CopyFrom(row);
        continue;
      }
      keys_.Extract(row, max_parallelism_);
      if (max_ts <= watermark_) {
        // The window already fired (allowed lateness): its updated result goes out now.
        const Row* one = &row;
        WEIR_RETURN_IF_ERROR(Update(keys_.key_group(), keys_.key(), end, &one, 1));
        WriteRow(keys_.key_row(), end, out_.Append(plan_.output.size()));
        WEIR_RETURN_IF_ERROR(FlushIfFull(out));
        continue;
      }
      const std::string_view key = keys_.key();
      pending_.push_back({end, static_cast<uint32_t>(key_arena_.size()),
                          static_cast<uint32_t>(key.size()), static_cast<uint32_t>(r),
                          keys_.key_group()});
      key_arena_.append(key);
    }
    if (!pending_.empty()) WEIR_RETURN_IF_ERROR(UpdatePending(in));
    if (!late_rows_.empty()) WEIR_RETURN_IF_ERROR(late_out_->Emit(late_rows_));
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  Status OnWatermark(int64_t watermark, Output& out) override {
    if (watermark > watermark_) watermark_ = watermark;
    out_.Clear();
    WEIR_RETURN_IF_ERROR(timers_->AdvanceWatermark(
        watermark_,
        [&](const state::InternalTimerService::Timer& timer) { return Fire(timer, out); }));
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  // End of input: every window fires (the task also sends kMaxWatermark first; then this
  // finds nothing left).
  Status Finish(Output& out) override { return OnWatermark(kMaxWatermark, out); }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    WEIR_ASSIGN_OR_RETURN(auto upload, store_->Snapshot(checkpoint_id));
    out->keyed = AdaptKeyedSnapshot(std::move(upload));
    proto::NamedList list;
    list.set_name(kWatermarkList);
    list.set_mode(proto::NamedList::UNION);
    std::string wm;
    state::Codec<int64_t>::Encode(watermark_, &wm);
    list.add_entries(std::move(wm));
    out->operator_state.push_back(std::move(list));
    return Status::Ok();
  }
  void NotifyCheckpointComplete(int64_t id) override { store_->NotifyCheckpointComplete(id); }
  void ReportMetrics(MetricWriter& out) const override { ReportStateMetrics(store_.get(), out); }
  void NotifyCheckpointAborted(int64_t id) override { store_->NotifyCheckpointAborted(id); }

  Status Close() override {
    store_.reset();
    return Status::Ok();
  }

 private:
  Status Fire(const state::InternalTimerService::Timer& timer, Output& out) {
    int64_t end = 0;
    if (!DecodeEnd(timer.ns, &end)) {
      return Status::DataLoss("window_aggregate: malformed window timer in state");
    }
    const int64_t max_ts = end - 1;
    const int64_t cleanup = SaturatingAdd(max_ts, plan_.lateness_ms);
    if (timer.timestamp == max_ts && windows_.Get(timer.ns, &acc_bytes_)) {
      WEIR_RETURN_IF_ERROR(DecodeAcc(acc_bytes_));
      if (!keys_.Decode(timer.key, key_row_)) {
        return Status::DataLoss("window_aggregate: corrupt key in state");
      }
      WriteRow(key_row_, end, out_.Append(plan_.output.size()));
      WEIR_RETURN_IF_ERROR(FlushIfFull(out));
    }
    if (timer.timestamp == cleanup) WEIR_RETURN_IF_ERROR(windows_.Remove(timer.ns));
    return Status::Ok();
  }

  // A row of the batch for a window that has not fired: its window end, its key (bytes in
  // key_arena_) and key group, its index in the batch.
  struct Pending {
    int64_t end;
    uint32_t key_off, key_len, row;
    int key_group;
  };
  std::string_view KeyOf(const Pending& p) const {
    return std::string_view(key_arena_).substr(p.key_off, p.key_len);
  }

  Status UpdatePending(const RowBatch& in) {
    std::sort(pending_.begin(), pending_.end(), [&](const Pending& a, const Pending& b) {
      if (int c = KeyOf(a).compare(KeyOf(b)); c != 0) return c < 0;
      if (a.end != b.end) return a.end < b.end;
      return a.row < b.row;  // rows of one window in arrival order
    });
    for (size_t i = 0; i < pending_.size();) {
      size_t j = i;
      group_rows_.clear();
      while (j < pending_.size() && pending_[j].end == pending_[i].end &&
             KeyOf(pending_[j]) == KeyOf(pending_[i])) {
        group_rows_.push_back(&in[pending_[j].row]);
        ++j;
      }
      WEIR_RETURN_IF_ERROR(Update(pending_[i].key_group, KeyOf(pending_[i]), pending_[i].end,
                                  group_rows_.data(), group_rows_.size()));
      i = j;
    }
    return Status::Ok();
  }

  // Adds `n` rows of one key to its window ending at `end`: one read and one write of the
  // accumulator, and the window's timers when it is new.
  Status Update(int key_group, std::string_view key, int64_t end, const Row* const* rows,
                size_t n) {
    WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(key_group, key));
    EncodeEnd(end, &window_key_);
    const bool present = windows_.Get(window_key_, &acc_bytes_);
    if (present) {
      WEIR_RETURN_IF_ERROR(DecodeAcc(acc_bytes_));
    } else {
      for (auto& v : acc_.fields) v.SetNull();
    }
    for (size_t k = 0; k < n; ++k) UpdateAccumulators(plan_.aggs, *rows[k], acc_);
    acc_buf_.Clear();
    SerializeRow(acc_, plan_.aggs.acc_schema, acc_buf_);
    WEIR_RETURN_IF_ERROR(windows_.Put(
        window_key_,
        std::string_view(reinterpret_cast<const char*>(acc_buf_.data()), acc_buf_.size())));
    if (!present) {
      const int64_t max_ts = end - 1;
      const int64_t cleanup = SaturatingAdd(max_ts, plan_.lateness_ms);
      // As Flink's event-time trigger: no timer for a window the watermark has passed (its
      // row goes out at once); it would fire a second time at the next watermark.
      if (max_ts > watermark_) {
        WEIR_RETURN_IF_ERROR(timers_->RegisterEventTimeTimer(max_ts, window_key_));
      }
      if (cleanup != max_ts) {
        WEIR_RETURN_IF_ERROR(timers_->RegisterEventTimeTimer(cleanup, window_key_));
      }
    }
    return Status::Ok();
  }

  void WriteRow(const Row& key, int64_t end, Row& out) {
    size_t i = 0;
    for (; i < key.size(); ++i) out[i].CopyFrom(key[i]);
    out[i++].SetTimestamp(end - plan_.size_ms);
    out[i++].SetTimestamp(end);
    WriteAggregates(plan_.aggs, acc_, out, i);
  }

  Status FlushIfFull(Output& out) {
    if (out_.size() < RowBatch::kDefaultCapacity) return Status::Ok();
    WEIR_RETURN_IF_ERROR(out.Emit(out_));
    out_.Clear();
    return Status::Ok();
  }

  Status DecodeAcc(std::string_view bytes) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    if (!DeserializeRow(&p, p + bytes.size(), plan_.aggs.acc_schema, acc_)) {
      return Status::DataLoss("window_aggregate: corrupt accumulator in state");
    }
    return Status::Ok();
  }

  // At most one line per kLogEveryMs, with the totals so far.
  void LogDropped(const char* why, int64_t t) {
    const int64_t now = MonotonicMs();
    if (last_log_ms_ != 0 && now - last_log_ms_ < kLogEveryMs) return;
    last_log_ms_ = now;
    ModuleLogger("task")->warn(
        "{} window_aggregate: a record {} (time {}, watermark {}, allowed lateness {} ms); late "
        "records go to the side output 'late' (dropped if no edge takes it), the others are "
        "dropped; {} late and {} without a usable time so far",
        log_prefix_, why, t, watermark_, plan_.lateness_ms, late_, no_time_);
  }

  WindowPlan plan_;
  KeyExtractor keys_;
  std::unique_ptr<state::KeyedStateStore> store_;
  state::MapState windows_;
  state::InternalTimerService* timers_ = nullptr;
  OperatorMetrics* metrics_ = nullptr;
  std::string log_prefix_;
  int max_parallelism_ = 128;
  int64_t watermark_ = kMinWatermark;
  int64_t late_ = 0;
  Output* late_out_ = nullptr;  // the side output "late" (Open)
  RowBatch late_rows_;          // late rows of the batch being processed
  int64_t no_time_ = 0;
  int64_t last_log_ms_ = 0;
  std::string window_key_;
  std::string acc_bytes_;
  Row acc_;
  Row key_row_;
  ByteBuffer acc_buf_;
  RowBatch out_;
  // Process's grouping of a batch (capacity kept between batches).
  std::vector<Pending> pending_;
  std::string key_arena_;
  std::vector<const Row*> group_rows_;
};

}  // namespace

void RegisterWindowAggregate(OperatorRegistry& r) {
  r.Register(
      "window_aggregate",
      std::make_unique<KeyedOperatorFactory<WindowAggregateSpec, WindowAggregate, PlanWindow>>());
}

}  // namespace weir
