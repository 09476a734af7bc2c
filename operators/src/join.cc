// The two-input keyed joins (docs/joins.md): join (regular, processing-time state TTL),
// interval_join and window_join (event time). Inputs "left" (0) and "right" (1), each
// hash-partitioned by its key (left_key, right_key: fields of equal types, so both sides of a
// key land in the same key group and the same subtask). Output rows: the left fields, then the
// right fields (a right field whose name the left side has is renamed right_<name>), then for
// window_join window_start and window_end. Output is append-only: no row is ever retracted.
// Rows whose key has a null field never match (as SQL's equality).
//
// State, per key, in the keyed state store (RocksDB or heap; checkpointed, restored and
// rescaled by key group like window_aggregate's): a map state per side, "left" and "right",
// from [time: 8 bytes, ordered][sequence: 8 bytes] to [flags: 1 byte][the row, row serde]. The
// time is the row's arrival (processing time) for join, its event time for interval_join, its
// window's end for window_join, so a key's rows iterate in that order and cleanup stops at
// the first row to keep. The sequence is a per-subtask counter, checkpointed (a UNION list,
// restored as the maximum + 1) so that no row overwrites another of its key after a restore.
//
// join: a row is joined with every stored row of the other side with the same key whose TTL
// has not expired, then stored. One processing-time timer per key (its time kept in the value
// state "ttl") at the oldest row's arrival + state_ttl removes expired rows (Flink's state TTL
// with OnCreateAndWrite: a row lives state_ttl from its arrival). kind: left: a left row that
// never matched is emitted once with the right fields null when its state expires or at the
// end of input (Flink's interval outer join emits at cleanup the same way; Flink's regular
// left join would emit at once and retract later, which append-only output cannot).
//
// interval_join: left row l and right row r join iff r.time + lower <= l.time <= r.time + upper
// (Flink's SQL interval join `l.time BETWEEN r.time + lower AND r.time + upper`), or with
// upper_field iff r.time + lower <= l.time <= r.<upper_field> (a per-row bound, e.g. an
// auction's expires: the right row is kept until the watermark passes it). A row whose
// time is before the watermark is late: counted (OperatorMetrics::late_records_dropped) and
// sent unchanged to the side output late_left or late_right (dropped if no edge takes it). A left
// row is kept until the watermark passes l.time - lower, a right row until it passes r.time +
// upper: an event-time timer per stored row, whose namespace names the row ([side][sequence], or
// [side][time][sequence] when the time does not follow from the timer's), so that removing it is
// one delete, without a read. Each input's own watermark (Operator::OnInputWatermark) also counts:
// a row before its input's watermark is late, and a row is not stored at all when the other input's
// watermark has passed the last time at which it could match (q9: auctions, generated far faster,
// run ahead of their bids).
//
// window_join: both sides go into tumbling (size) or sliding (size, slide) event-time windows;
// when the watermark reaches a window's end - 1, its left and right rows of each key are joined
// (inner) and removed. A row all of whose windows have fired is late (counted, and to the
// side output of its side, as interval_join's).
//
// The watermark (interval and window joins) is checkpointed as window_aggregate's is.
// join and window_join process per row: each row reads the other side's rows of its key with
// one prefix scan. interval_join groups a batch's rows by key and reads each key's other side
// once per batch.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "aggregation.h"
#include "join_plan.h"
#include "weir/clock.h"
#include "weir/logging.h"
#include "weir/operator.h"
#include "weir/operators.h"

namespace weir {
namespace {

constexpr char kSequenceList[] = "sequence";
constexpr char kMatched = 1;  // flags: a left row that has joined (kind: left)
constexpr int64_t kLogEveryMs = 10'000;

class JoinOperator : public KeyedStateOperator {
 public:
  explicit JoinOperator(JoinPlan plan)
      : p_(std::move(plan)),
        keys_{KeyExtractor(p_.left_key, p_.key_schema), KeyExtractor(p_.right_key, p_.key_schema)},
        other_{Row(p_.left.size()), Row(p_.right.size())} {}

  Status Open(const OperatorContext& ctx) override {
    max_parallelism_ = ctx.max_parallelism;
    metrics_ = ctx.metrics;
    log_prefix_ = ctx.log_prefix;
    WEIR_ASSIGN_OR_RETURN(store_, OpenKeyedStateStore(ctx, "keyed"));
    // Version of the stored rows' layout ([flags][row serde]): bump it when it changes.
    // Uncached: every row scans the other side's rows of its key, and a scan writes the cache's
    // dirty entries through first (caching them measured 0.8x on q20).
    constexpr auto kUncached = state::KeyedStateStore::Caching::kUncached;
    WEIR_ASSIGN_OR_RETURN(rows_[0], store_->GetMapState("left", /*version=*/1, kUncached));
    WEIR_ASSIGN_OR_RETURN(rows_[1], store_->GetMapState("right", /*version=*/1, kUncached));
    WEIR_ASSIGN_OR_RETURN(timers_, store_->GetTimerService("join"));
    if (p_.type == JoinType::kRegular) {
      WEIR_ASSIGN_OR_RETURN(ttl_, store_->GetValueState("ttl"));
    }
    WEIR_RETURN_IF_ERROR(RestoreWatermark(ctx, kWatermarkList, "join", &watermark_));
    if (p_.type != JoinType::kRegular) {
      const char* type = p_.type == JoinType::kInterval ? "interval_join" : "window_join";
      late_[0].Open(ctx, type, "late_left");
      late_[1].Open(ctx, type, "late_right");
    }
    if (p_.type == JoinType::kInterval) {
      // Every stored row has a timer: while a side has none, the other side's rows need not
      // read it (q7: the window maxima arrive after the bids' watermark, and are never stored).
      timers_->ForEachEventTimeTimer([&](const state::InternalTimerService::Timer& t) {
        if (t.ns.empty()) return;
        const int side = t.ns[0] == 'L' ? 0 : 1;
        ++(t.ns.size() == 1 ? legacy_timers_[side] : row_timers_[side]);
      });
    }
    return ForEachRestoredInt64(ctx, kSequenceList, "join sequence", [&](int64_t s) {
      seq_ = std::max(seq_, static_cast<uint64_t>(s) + 1);
    });
  }

  Status Process(RowBatch& batch, Output& out) override { return ProcessInput(0, batch, out); }

  Status ProcessInput(int input, RowBatch& batch, Output& out) override {
    if (input != 0 && input != 1)
      return Status::Internal("join: no input " + std::to_string(input));
    out_.Clear();
    now_ = ProcessingTime();
    late_[input].Begin();
    if (p_.type == JoinType::kInterval) {
      WEIR_RETURN_IF_ERROR(IntervalBatch(input, batch, out));
    } else {
      for (size_t r = 0; r < batch.size(); ++r) {
        WEIR_RETURN_IF_ERROR(ProcessRow(input, batch[r], out));
      }
    }
    WEIR_RETURN_IF_ERROR(late_[input].End());
    return EmitOut(out);
  }

  Status OnWatermark(int64_t watermark, Output& out) override {
    if (p_.type == JoinType::kRegular) return Status::Ok();
    if (watermark > watermark_) watermark_ = watermark;
    out_.Clear();
    WEIR_RETURN_IF_ERROR(timers_->AdvanceWatermark(
        watermark_,
        [&](const state::InternalTimerService::Timer& t) { return FireEventTime(t, out); }));
    return EmitOut(out);
  }

  // Each input's own watermark: rows still to come on it are at or after it.
  void OnInputWatermark(int input, int64_t watermark) override {
    if (input != 0 && input != 1) return;
    input_wm_[input] = std::max(input_wm_[input], watermark);
  }

  Status OnProcessingTime(int64_t now_ms, Output& out) override {
    AdvanceProcessingTime(now_ms);
    if (p_.type != JoinType::kRegular) return Status::Ok();
    out_.Clear();
    WEIR_RETURN_IF_ERROR(timers_->AdvanceProcessingTime(
        now_ms, [&](const state::InternalTimerService::Timer&) { return Expire(now_ms, out); }));
    return EmitOut(out);
  }

  // End of input. Event-time joins: the task's final watermark has fired every timer. join
  // with kind: left: every left row that never matched goes out null-padded (its state would
  // expire later with nothing left to match it).
  Status Finish(Output& out) override {
    if (p_.type != JoinType::kRegular || !p_.left_outer) return Status::Ok();
    out_.Clear();
    WEIR_RETURN_IF_ERROR(rows_[0].ForEachEntry(
        [&](int, std::string_view, std::string_view, std::string_view value) -> Status {
          if (value.empty() || (value[0] & kMatched)) return Status::Ok();
          WEIR_RETURN_IF_ERROR(DecodeRow(0, value, row_));
          return EmitPadded(row_, out);
        }));
    return EmitOut(out);
  }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    WEIR_RETURN_IF_ERROR(SnapshotStore(checkpoint_id, out));
    out->operator_state.push_back(UnionInt64List(kWatermarkList, watermark_));
    out->operator_state.push_back(UnionInt64List(kSequenceList, static_cast<int64_t>(seq_)));
    return Status::Ok();
  }

 private:
  const Schema& SchemaOf(int side) const { return side == 0 ? p_.left : p_.right; }

  Status ProcessRow(int side, const Row& row, Output& out) {
    KeyExtractor& keys = keys_[side];
    keys.Extract(row, max_parallelism_);
    bool null_key = false;
    for (const Value& v : keys.key_row().fields) null_key = null_key || v.is_null();
    if (null_key) {
      // Never matches: a left row of a left join goes out padded at once, others are dropped.
      if (side == 0 && p_.left_outer) return EmitPadded(row, out);
      return Status::Ok();
    }
    int64_t t = now_;
    if (p_.type != JoinType::kRegular) {
      const Value& tv = row[static_cast<size_t>(side == 0 ? p_.left_time : p_.right_time)];
      if (tv.is_null()) return Drop("without a time", 0);
      t = tv.i;
    }
    WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(keys.key_group(), keys.key()));
    switch (p_.type) {
      case JoinType::kRegular:
        return RegularRow(side, row, out);
      case JoinType::kInterval:
        return Status::Internal("interval_join rows go through IntervalBatch");
      case JoinType::kWindow:
        return WindowRow(side, row, t);
    }
    return Status::Ok();
  }

  // ---------------------------------------------------------------- join
  Status RegularRow(int side, const Row& row, Output& out) {
    const int other = 1 - side;
    bool matched = false;
    to_mark_.clear();
    auto it = rows_[other].Iterate();
    for (; it.Valid(); it.Next()) {
      int64_t t = 0;
      if (!DecodeOrderedTime(it.user_key().substr(0, 8), &t)) return Corrupt();
      if (t + p_.ttl_ms <= now_) continue;  // expired, not yet cleaned up
      WEIR_RETURN_IF_ERROR(DecodeRow(other, it.value(), other_[other]));
      matched = true;
      WEIR_RETURN_IF_ERROR(
          EmitJoined(side == 0 ? row : other_[other], side == 0 ? other_[other] : row, out));
      if (p_.left_outer && side == 1 && !(it.value()[0] & kMatched)) {
        to_mark_.emplace_back(it.user_key());
        marked_values_.emplace_back(it.value());
      }
    }
    WEIR_RETURN_IF_ERROR(it.status());
    for (size_t i = 0; i < to_mark_.size(); ++i) {
      marked_values_[i][0] = static_cast<char>(marked_values_[i][0] | kMatched);
      WEIR_RETURN_IF_ERROR(rows_[other].Put(to_mark_[i], marked_values_[i]));
    }
    marked_values_.clear();
    WEIR_RETURN_IF_ERROR(Store(side, now_, row, side == 0 && matched ? kMatched : 0));
    if (!ttl_.Get(&scratch_)) {
      WEIR_RETURN_IF_ERROR(timers_->RegisterProcessingTimeTimer(now_ + p_.ttl_ms));
      WEIR_RETURN_IF_ERROR(ttl_.PutAs<int64_t>(now_ + p_.ttl_ms));
    }
    return Status::Ok();
  }

  // The TTL timer of the current key: removes its expired rows (padded output for unmatched
  // left rows of a left join), then sets the timer for the oldest row left.
  Status Expire(int64_t now, Output& out) {
    int64_t next = kMaxWatermark;
    for (int side = 0; side < 2; ++side) {
      auto it = rows_[side].Iterate();
      for (; it.Valid(); it.Next()) {
        int64_t t = 0;
        if (!DecodeOrderedTime(it.user_key().substr(0, 8), &t)) return Corrupt();
        if (t + p_.ttl_ms > now) {
          next = std::min(next, t + p_.ttl_ms);
          break;
        }
        if (side == 0 && p_.left_outer && !(it.value()[0] & kMatched)) {
          WEIR_RETURN_IF_ERROR(DecodeRow(0, it.value(), row_));
          WEIR_RETURN_IF_ERROR(EmitPadded(row_, out));
        }
        scratch_.assign(it.user_key());
        WEIR_RETURN_IF_ERROR(rows_[side].Remove(scratch_));
      }
      WEIR_RETURN_IF_ERROR(it.status());
    }
    if (next == kMaxWatermark) return ttl_.Clear();
    WEIR_RETURN_IF_ERROR(timers_->RegisterProcessingTimeTimer(next));
    return ttl_.PutAs<int64_t>(next);
  }

  // ---------------------------------------------------------------- interval_join
  // The batch's rows grouped by key: each key's rows of the other side are read from state
  // once per batch, not once per row (half of Nexmark's bids are on the hot auction). Rows of
  // one side never match each other, so storing one does not change what the next matches.
  Status IntervalBatch(int side, const RowBatch& batch, Output& out) {
    groups_.Clear();
    KeyExtractor& keys = keys_[side];
    const size_t time_field = static_cast<size_t>(side == 0 ? p_.left_time : p_.right_time);
    for (size_t r = 0; r < batch.size(); ++r) {
      keys.Extract(batch[r], max_parallelism_);
      bool null_key = false;
      for (const Value& v : keys.key_row().fields) null_key = null_key || v.is_null();
      if (null_key) continue;  // never matches (no outer interval join)
      const Value& tv = batch[r][time_field];
      if (tv.is_null()) {
        WEIR_RETURN_IF_ERROR(Drop("without a time", 0));
        continue;
      }
      groups_.Add(tv.i, keys.key(), keys.key_group(), r);
    }
    groups_.Sort();
    const int other = 1 - side;
    const bool other_empty = row_timers_[other] == 0 && legacy_timers_[other] == 0;
    for (size_t i = 0; i < groups_.size();) {
      const size_t j = groups_.GroupEnd(i, /*by_end=*/false);
      WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(groups_[i].key_group, groups_.KeyOf(groups_[i])));
      n_cached_ = 0;
      if (!other_empty) {
        auto it = rows_[other].Iterate();
        for (; it.Valid(); it.Next()) {
          if (n_cached_ == cached_.size()) cached_.emplace_back();
          Cached& c = cached_[n_cached_++];
          if (!DecodeOrderedTime(it.user_key().substr(0, 8), &c.time)) return Corrupt();
          c.value.assign(it.value());
        }
        WEIR_RETURN_IF_ERROR(it.status());
      }
      for (size_t k = i; k < j; ++k) {
        WEIR_RETURN_IF_ERROR(IntervalRow(side, batch[groups_[k].row], groups_[k].end, out));
      }
      i = j;
    }
    return Status::Ok();
  }

  // Left l matches right r iff r.t + lower <= l.t <= r.t + upper, or with upper_field
  // r.t + lower <= l.t <= r.upper. A right row is stored under its last matching time (r.t +
  // upper's constant offset is applied by the cleanup; with upper_field, under r.upper itself),
  // so cleanup removes rows in key order either way.
  Status IntervalRow(int side, const Row& row, int64_t t, Output& out) {
    const int other = 1 - side;
    // Late: before the watermark, or before its own input's (which may be ahead).
    if (const int64_t wm = std::max(watermark_, input_wm_[side]); t < wm) {
      late_[side].Late(row, t, wm);
      return Status::Ok();
    }
    const bool per_row = p_.right_upper >= 0;
    // The other side's stored times that may match t, and the last watermark at which this
    // row can still match a row to come.
    int64_t lo, hi, keep, stored = t;
    if (side == 0) {
      lo = per_row ? t : SaturatingAdd(t, -p_.upper_ms);
      keep = SaturatingAdd(t, -p_.lower_ms);
      hi = per_row ? kMaxWatermark : keep;
    } else {
      lo = SaturatingAdd(t, p_.lower_ms);
      if (per_row) {
        const Value& u = row[static_cast<size_t>(p_.right_upper)];
        if (u.is_null()) return Drop("without an upper bound", t);
        stored = u.i;
      }
      hi = keep = per_row ? stored : SaturatingAdd(t, p_.upper_ms);
    }
    // The other side's rows of the key (IntervalBatch read them), in time order.
    for (size_t c = 0; c < n_cached_; ++c) {
      const int64_t ot = cached_[c].time;
      if (ot < lo) continue;
      if (ot > hi) break;
      WEIR_RETURN_IF_ERROR(DecodeRow(other, cached_[c].value, other_[other]));
      // A right row stored under its upper bound: its own time must be early enough.
      if (per_row && side == 0 &&
          SaturatingAdd(other_[1][static_cast<size_t>(p_.right_time)].i, p_.lower_ms) > t) {
        continue;
      }
      WEIR_RETURN_IF_ERROR(
          EmitJoined(side == 0 ? row : other_[other], side == 0 ? other_[other] : row, out));
    }
    // Rows of the other side still to come have times >= the watermark and >= that side's
    // own watermark (or are dropped as late): this row can match one only if `keep` is not
    // before both. An input that runs ahead (auctions before their bids) keeps the other's
    // rows from being stored at all.
    if (keep == kMaxWatermark || keep < std::max(watermark_, input_wm_[other])) {
      return Status::Ok();
    }
    WEIR_RETURN_IF_ERROR(Store(side, stored, row, 0));
    // The row's own timer, naming it (user_key_ is [time][sequence]).
    ns_.assign(1, side == 0 ? 'L' : 'R');
    if (IntervalStoredTime(side, keep) != stored) ns_.append(user_key_, 0, 8);
    ns_.append(user_key_, 8, 8);
    ++row_timers_[side];
    return timers_->RegisterEventTimeTimer(keep + 1, ns_);
  }

  // The time a row of `side` is stored under, given the last watermark at which it can match
  // (`keep`, its timer's time - 1): the inverse of IntervalRow's `keep`, unless that saturated.
  int64_t IntervalStoredTime(int side, int64_t keep) const {
    if (side == 0) return SaturatingAdd(keep, p_.lower_ms);
    return p_.right_upper >= 0 ? keep : SaturatingAdd(keep, -p_.upper_ms);
  }

  // ---------------------------------------------------------------- window_join
  Status WindowRow(int side, const Row& row, int64_t t) {
    int64_t start = t - t % p_.slide_ms;
    if (t % p_.slide_ms < 0 && __builtin_sub_overflow(start, p_.slide_ms, &start)) {
      return Drop("with a time too small for its window", t);
    }
    bool stored = false;
    while (true) {
      const int64_t end = SaturatingAdd(start, p_.size_ms);
      if (end - 1 > watermark_) {
        WEIR_RETURN_IF_ERROR(Store(side, end, row, 0));
        ns_.clear();
        EncodeOrderedTime(end, &ns_);
        WEIR_RETURN_IF_ERROR(timers_->RegisterEventTimeTimer(end - 1, ns_));
        stored = true;
      }
      if (__builtin_sub_overflow(start, p_.slide_ms, &start) || t - start >= p_.size_ms) break;
    }
    if (!stored) late_[side].Late(row, t, watermark_);
    return Status::Ok();
  }

  Status FireEventTime(const state::InternalTimerService::Timer& timer, Output& out) {
    if (p_.type == JoinType::kInterval) {
      // Side L's rows with l.t - lower < timer, side R's with r.t + upper < timer (r.upper <
      // timer with upper_field: upper_ms is 0 then), are done.
      const int side = !timer.ns.empty() && timer.ns[0] == 'L' ? 0 : 1;
      if (timer.ns.size() == 1 + 8 || timer.ns.size() == 1 + 16) {  // one row's timer
        --row_timers_[side];
        user_key_.clear();
        if (timer.ns.size() == 1 + 8) {
          EncodeOrderedTime(IntervalStoredTime(side, timer.timestamp - 1), &user_key_);
        }
        user_key_.append(timer.ns.substr(1));
        return rows_[side].Remove(user_key_);
      }
      // A timer of a key and time (savepoints before per-row timers): removes every row of
      // the key up to its bound.
      if (legacy_timers_[side] > 0) --legacy_timers_[side];
      const int64_t bound = side == 0 ? SaturatingAdd(timer.timestamp - 1, p_.lower_ms)
                                      : SaturatingAdd(timer.timestamp - 1, -p_.upper_ms);
      auto it = rows_[side].Iterate();
      for (; it.Valid(); it.Next()) {
        int64_t t = 0;
        if (!DecodeOrderedTime(it.user_key().substr(0, 8), &t)) return Corrupt();
        if (t > bound) break;
        scratch_.assign(it.user_key());
        WEIR_RETURN_IF_ERROR(rows_[side].Remove(scratch_));
      }
      return it.status();
    }
    // window_join: the window ending at timer.ns fires.
    int64_t end = 0;
    if (!DecodeOrderedTime(timer.ns, &end)) return Corrupt();
    size_t n_left = 0;
    for (int side = 0; side < 2; ++side) {
      auto it = rows_[side].Iterate();
      for (; it.Valid(); it.Next()) {
        int64_t t = 0;
        if (!DecodeOrderedTime(it.user_key().substr(0, 8), &t)) return Corrupt();
        if (t < end) continue;
        if (t > end) break;
        if (side == 0) {
          if (n_left == window_left_.size()) window_left_.emplace_back(p_.left.size());
          WEIR_RETURN_IF_ERROR(DecodeRow(0, it.value(), window_left_[n_left++]));
        } else {
          WEIR_RETURN_IF_ERROR(DecodeRow(1, it.value(), other_[1]));
          for (size_t l = 0; l < n_left; ++l) {
            WEIR_RETURN_IF_ERROR(
                EmitJoined(window_left_[l], other_[1], out, end - p_.size_ms, end));
          }
        }
        scratch_.assign(it.user_key());
        WEIR_RETURN_IF_ERROR(rows_[side].Remove(scratch_));
      }
      WEIR_RETURN_IF_ERROR(it.status());
    }
    return Status::Ok();
  }

  // ---------------------------------------------------------------- rows
  // Stores `row` of `side` for the current key under time `t` and a new sequence number.
  Status Store(int side, int64_t t, const Row& row, char flags) {
    user_key_.clear();
    EncodeOrderedTime(t, &user_key_);
    EncodeOrderedTime(static_cast<int64_t>(seq_++ ^ (uint64_t{1} << 63)), &user_key_);
    buf_.Clear();
    *buf_.Reserve(1) = static_cast<uint8_t>(flags);
    buf_.Commit(1);
    SerializeRow(row, SchemaOf(side), buf_);
    return rows_[side].Put(
        user_key_, std::string_view(reinterpret_cast<const char*>(buf_.data()), buf_.size()));
  }

  Status DecodeRow(int side, std::string_view value, Row& row) {
    if (value.empty()) return Corrupt();
    const auto* p = reinterpret_cast<const uint8_t*>(value.data()) + 1;
    const auto* end = reinterpret_cast<const uint8_t*>(value.data()) + value.size();
    if (!DeserializeRow(&p, end, SchemaOf(side), row) || p != end) return Corrupt();
    return Status::Ok();
  }

  Status EmitJoined(const Row& l, const Row& r, Output& out, int64_t start = 0, int64_t end = 0) {
    Row& o = out_.Append(p_.output.size());
    size_t i = 0;
    for (size_t k = 0; k < p_.left.size(); ++k) o[i++].CopyFrom(l[k]);
    for (size_t k = 0; k < p_.right.size(); ++k) o[i++].CopyFrom(r[k]);
    if (p_.type == JoinType::kWindow) {
      o[i++].SetTimestamp(start);
      o[i++].SetTimestamp(end);
    }
    return FlushIfFull(out);
  }

  Status EmitPadded(const Row& l, Output& out) {
    Row& o = out_.Append(p_.output.size());
    size_t i = 0;
    for (size_t k = 0; k < p_.left.size(); ++k) o[i++].CopyFrom(l[k]);
    for (; i < o.size(); ++i) o[i].SetNull();
    return FlushIfFull(out);
  }

  Status FlushIfFull(Output& out) {
    if (out_.size() < RowBatch::kDefaultCapacity) return Status::Ok();
    return EmitOut(out);
  }
  Status EmitOut(Output& out) {
    if (out_.empty()) return Status::Ok();
    Status st = out.Emit(out_);
    out_.Clear();
    return st;
  }

  static Status Corrupt() { return Status::DataLoss("join: corrupt row in state"); }

  // A row that cannot take part: counted, logged at most every kLogEveryMs.
  Status Drop(const char* why, int64_t t) {
    ++dropped_;
    if (metrics_ != nullptr) metrics_->late_records_dropped.fetch_add(1, std::memory_order_relaxed);
    const int64_t now = MonotonicMs();
    if (last_log_ms_ == 0 || now - last_log_ms_ >= kLogEveryMs) {
      last_log_ms_ = now;
      ModuleLogger("task")->warn("{} join: dropped a record {} (time {}, watermark {}); {} so far",
                                 log_prefix_, why, t, watermark_, dropped_);
    }
    return Status::Ok();
  }

  JoinPlan p_;
  KeyExtractor keys_[2];
  state::MapState rows_[2];  // left, right
  state::ValueState ttl_;    // join: the key's TTL timer
  state::InternalTimerService* timers_ = nullptr;
  OperatorMetrics* metrics_ = nullptr;
  std::string log_prefix_;
  int max_parallelism_ = 128;
  int64_t watermark_ = kMinWatermark;
  // interval_join: each input's own watermark (not checkpointed: after a restore it starts
  // low again, which only keeps more rows).
  int64_t input_wm_[2] = {kMinWatermark, kMinWatermark};
  // interval_join: each side's registered row timers, and timers of the older per-key form
  // (restored from a savepoint). A side with neither has no stored rows.
  int64_t row_timers_[2] = {0, 0};
  DroppedRecords late_[2];  // event-time joins: each side's late rows, to late_left/late_right
  int64_t legacy_timers_[2] = {0, 0};
  int64_t now_ = 0;              // processing time of the batch being processed
  uint64_t seq_ = 0;
  int64_t dropped_ = 0;
  int64_t last_log_ms_ = 0;
  // Reused buffers.
  KeyWindowGroups groups_;  // interval_join: a batch's rows by key (`end`: the row's time)
  struct Cached {
    int64_t time = 0;
    std::string value;
  };
  std::vector<Cached> cached_;  // interval_join: the other side's rows of the current key
  size_t n_cached_ = 0;
  Row other_[2];  // a row of each side read from state
  Row row_;
  std::vector<Row> window_left_;
  std::vector<std::string> to_mark_, marked_values_;
  std::string user_key_, scratch_, ns_;
  ByteBuffer buf_;
  RowBatch out_;
};

class JoinFactory final : public JoinSpec {
 public:
  using JoinSpec::JoinSpec;
  Result<std::unique_ptr<Operator>> CreateWithInputs(
      const Config& config, const std::vector<Schema>& inputs) const override {
    WEIR_ASSIGN_OR_RETURN(JoinPlan plan, PlanJoin(type_, config, inputs));
    return std::unique_ptr<Operator>(std::make_unique<JoinOperator>(std::move(plan)));
  }
};

}  // namespace

void RegisterJoins(OperatorRegistry& r) {
  for (const JoinTypeName& t : kJoinTypes)
    r.Register(t.name, std::make_unique<JoinFactory>(t.type));
}

}  // namespace weir
