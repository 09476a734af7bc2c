// window_aggregate: windows per key (Flink's keyBy(...).window(...).aggregate(...)): tumbling
// and sliding event-time windows (TumblingEventTimeWindows.of(size),
// SlidingEventTimeWindows.of(size, slide)), event-time session windows
// (EventTimeSessionWindows.withGap(gap)) and tumbling processing-time windows
// (TumblingProcessingTimeWindows.of(size)). Its input must arrive on a hash edge keyed by the
// same fields.
//
// config: key: [fields]; aggregations: as keyed_aggregate's; and one window kind:
//   size: d                    tumbling: [k * size, (k + 1) * size)
//   size: d, slide: s          sliding: windows of `size` starting at every multiple of
//                              `slide`; a row goes to each of the ceil(size / slide) windows
//                              that hold it. slide <= size (Flink also accepts slide > size and
//                              silently drops the rows between windows: refused here)
//   session_gap: g             session: a row at t makes [t, t + g); windows of a key that
//                              overlap or touch merge (their accumulators merged)
//   time: event (default) with time_field: a timestamp (or int64 ms) field, and
//         allowed_lateness: a duration (default 0); or
//   time: processing: tumbling windows of the task manager's clock at the time the row is
//         processed (no time_field, slide, session_gap or allowed_lateness).
// Output: the key fields, window_start and window_end (timestamps; the window is
// [window_start, window_end)), then the aggregates.
//
// State: per key, a map state "windows" from window end to the window's accumulator row
// ("sessions" for session windows: window end to [start][accumulator row]), and an event-time
// timer per (key, window) at window_end - 1 (namespace: the window end; a processing-time timer
// for time: processing). When the watermark reaches that timer the window's row is emitted and,
// without allowed lateness, its state cleared. With allowed lateness L the state is kept until a
// second timer at window_end - 1 + L; a record for the window that comes before then updates it
// and emits the updated row at once (a late firing, as Flink's event-time trigger does). Records
// all of whose windows are past window_end - 1 + L at the current watermark (for sessions: the
// record's own window [t, t + gap)) are late: sent unchanged to the side output `late` (an edge
// `from: <id>.late` takes them to any sink, like Flink's sideOutputLateData; without one they
// are dropped and counted as side output drops), counted in
// OperatorMetrics::late_records_dropped and logged (at most every 10 s). Rows without a usable
// time (null, or so small that its window has no representable start) are dropped and logged
// likewise. Processing-time windows have no late records: a row always goes to the window of
// the current time.
//
// count_distinct (tumbling and sliding event-time windows only): the values of a window are
// kept in the map state "distinct" under [window end][accumulator slot][value] (Codec<Value>),
// so one lookup per row and count_distinct tells whether a value is new; its count is in the
// accumulator row. The values are removed with the window's entry (at end - 1 + allowed
// lateness). In memory, per (key, window), the values known to be stored: a value seen before
// costs no state lookup, and in a window this subtask created (not restored) whose set is
// complete, a value not in it is new without one. Bounded by the state cache budget (every set
// dropped when over it; those windows then read state again).
//
// Sessions: when windows merge, the merged window's entry is written under its (new) end, the
// entries of the windows merged away are removed and their timers deleted, and the merged
// window's timers registered. Unlike Flink, a late record whose own window would merge into a
// session that is still open is late all the same (lateness is judged on the record alone).
//
// Per batch, the rows of windows that have not fired are grouped by key and window (sessions:
// by key, in time order), so that a hot key costs one state read and write per batch.
//
// The current watermark is checkpointed (a UNION list; a restore takes the minimum over the
// old subtasks) so that a restored operator drops the same late records as before. At the end
// of input every window fires, processing-time ones included.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "aggregation.h"
#include "weir/clock.h"
#include "weir/logging.h"
#include "weir/operator.h"
#include "weir/operators.h"

namespace weir {
namespace {

constexpr char kLateOutput[] = "late";
constexpr int64_t kLogEveryMs = 10'000;

class WindowAggregate : public KeyedEventTimeOperator {
 public:
  explicit WindowAggregate(WindowPlan plan)
      : plan_(std::move(plan)),
        session_(plan_.kind == WindowKind::kSession),
        keys_(plan_.key_idx, plan_.key_schema),
        acc_(plan_.aggs.acc_schema.size()) {}

  Status Open(const OperatorContext& ctx) override {
    metrics_ = ctx.metrics;
    log_prefix_ = ctx.log_prefix;
    late_out_ = ctx.SideOutput(kLateOutput);
    WEIR_RETURN_IF_ERROR(OpenStore(ctx, "window_aggregate"));
    // Version of the window entries (user key and accumulator row layout): bump it when they
    // change, so that old savepoints are refused rather than misread.
    WEIR_ASSIGN_OR_RETURN(windows_,
                          store_->GetMapState(session_ ? "sessions" : "windows", /*version=*/1));
    WEIR_ASSIGN_OR_RETURN(timers_, store_->GetTimerService("windows"));
    if (plan_.aggs.distinct) {
      known_limit_ = ctx.state_cache_bytes;
      // Values are mostly added once; known_ (below) keeps the ones seen again.
      WEIR_ASSIGN_OR_RETURN(distinct_, store_->GetMapState("distinct", /*version=*/1,
                                                           state::KeyedStateStore::Caching::kUncached));
      size_t slot = 0;
      for (const Agg& agg : plan_.aggs.aggs) {
        if (agg.fn == AggFn::kCountDistinct) distinct_slots_.push_back({agg.field, slot});
        slot += agg.fn == AggFn::kAvg ? 2 : 1;
      }
    }
    return Status::Ok();
  }

  // Rows of windows that have not fired yet are grouped by key and window first (a sort of the
  // batch's row indexes), so each (key, window) of the batch reads and writes its accumulator
  // once: hot keys cost one state access per batch, not per row. Rows of windows that already
  // fired (allowed lateness) update and emit one by one, in order, as before. Sessions group
  // by key only, rows in time order.
  Status Process(RowBatch& in, Output& out) override {
    out_.Clear();
    late_rows_.Clear();
    pending_.Clear();
    const int64_t now = plan_.processing_time ? ProcessingTime() : 0;
    for (size_t r = 0; r < in.size(); ++r) {
      const Row& row = in[r];
      int64_t t = now;
      if (!plan_.processing_time) {
        const Value& tv = row[plan_.time_idx];
        if (tv.is_null()) {
          ++no_time_;
          LogDropped("without a time", 0);
          continue;
        }
        t = tv.i;
      }
      if (session_) {
        WEIR_RETURN_IF_ERROR(AddSessionRow(row, r, t));
      } else {
        WEIR_RETURN_IF_ERROR(AddFixedRow(row, r, t, out));
      }
    }
    if (!pending_.empty()) {
      WEIR_RETURN_IF_ERROR(session_ ? UpdateSessions(in, out) : UpdatePending(in));
    }
    if (!late_rows_.empty()) WEIR_RETURN_IF_ERROR(late_out_->Emit(late_rows_));
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  Status OnWatermark(int64_t watermark, Output& out) override {
    // Processing-time windows ignore event time (nothing is late for them).
    if (plan_.processing_time) return Status::Ok();
    if (watermark > watermark_) watermark_ = watermark;
    return FireTimers(/*processing=*/false, watermark_, out);
  }

  Status OnProcessingTime(int64_t now_ms, Output& out) override {
    if (!plan_.processing_time) return Status::Ok();
    AdvanceProcessingTime(now_ms);
    return FireTimers(/*processing=*/true, processing_time_, out);
  }

  // End of input: every window fires (the task also sends kMaxWatermark first; then this
  // finds nothing left). Processing-time windows fire too, with what they hold.
  Status Finish(Output& out) override {
    if (!plan_.processing_time) return OnWatermark(kMaxWatermark, out);
    return FireTimers(/*processing=*/true, std::numeric_limits<int64_t>::max(), out);
  }

 private:
  // (A processing-time window row belongs to ProcessingTime(): the latest OnProcessingTime, so
  // that no row goes to a window whose timer has fired.)

  // Fires the event-time (processing-time) timers up to `until` and emits their rows.
  Status FireTimers(bool processing, int64_t until, Output& out) {
    out_.Clear();
    auto fire = [&](const state::InternalTimerService::Timer& timer) { return Fire(timer, out); };
    WEIR_RETURN_IF_ERROR(processing ? timers_->AdvanceProcessingTime(until, fire)
                                    : timers_->AdvanceWatermark(until, fire));
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  void CountLate(const Row& row, int64_t t) {
    ++late_;
    if (metrics_ != nullptr) metrics_->late_records_dropped.fetch_add(1, std::memory_order_relaxed);
    LogDropped("late", t);
    if (late_out_ != nullptr) late_rows_.Append(row.fields.size()).CopyFrom(row);
  }

  // Tumbling and sliding windows: the row goes to every window [start, start + size) with
  // start a multiple of slide and start <= t < start + size, latest first.
  Status AddFixedRow(const Row& row, size_t r, int64_t t, Output& out) {
    // floor(t / slide) * slide, also for negative times; a window that would start before
    // the smallest int64 has no representable start: such a time is unusable.
    int64_t start = t - t % plan_.slide_ms;
    if (t % plan_.slide_ms < 0 && __builtin_sub_overflow(start, plan_.slide_ms, &start)) {
      ++no_time_;
      LogDropped("with a time too small for its window", t);
      return Status::Ok();
    }
    bool extracted = false;
    bool all_late = true;
    while (true) {
      const int64_t end = SaturatingAdd(start, plan_.size_ms);
      const int64_t max_ts = end - 1;
      const int64_t cleanup = SaturatingAdd(max_ts, plan_.lateness_ms);
      if (cleanup > watermark_) {
        all_late = false;
        if (!extracted) {
          keys_.Extract(row, max_parallelism_);
          extracted = true;
        }
        if (max_ts <= watermark_) {
          // The window already fired (allowed lateness): its updated result goes out now.
          const Row* one = &row;
          WEIR_RETURN_IF_ERROR(Update(keys_.key_group(), keys_.key(), end, &one, 1));
          WriteRow(keys_.key_row(), end - plan_.size_ms, end, out_.Append(plan_.output.size()));
          WEIR_RETURN_IF_ERROR(FlushIfFull(out));
        } else {
          pending_.Add(end, keys_.key(), keys_.key_group(), r);
        }
      }
      // The next earlier window, while it still holds t.
      if (__builtin_sub_overflow(start, plan_.slide_ms, &start) || t - start >= plan_.size_ms) {
        break;
      }
    }
    if (all_late) CountLate(row, t);
    return Status::Ok();
  }

  // Session windows: the row's own window is [t, t + gap); grouped per key in UpdateSessions.
  Status AddSessionRow(const Row& row, size_t r, int64_t t) {
    int64_t end;
    if (__builtin_add_overflow(t, plan_.gap_ms, &end)) {
      ++no_time_;
      LogDropped("with a time too large for its session", t);
      return Status::Ok();
    }
    if (SaturatingAdd(end - 1, plan_.lateness_ms) <= watermark_) {
      CountLate(row, t);
      return Status::Ok();
    }
    keys_.Extract(row, max_parallelism_);
    pending_.Add(t, keys_.key(), keys_.key_group(), r);  // `end` holds the row's time
    return Status::Ok();
  }

  Status Fire(const state::InternalTimerService::Timer& timer, Output& out) {
    int64_t end = 0;
    if (!DecodeWindowEnd(timer.ns, &end)) {
      return Status::DataLoss("window_aggregate: malformed window timer in state");
    }
    const int64_t max_ts = end - 1;
    const int64_t cleanup = SaturatingAdd(max_ts, plan_.lateness_ms);
    if (timer.timestamp == max_ts && windows_.Get(timer.ns, &acc_bytes_)) {
      int64_t start = end - plan_.size_ms;
      WEIR_RETURN_IF_ERROR(session_ ? DecodeSession(acc_bytes_, &start, acc_)
                                    : DecodeAcc(acc_bytes_, acc_));
      if (!keys_.Decode(timer.key, key_row_)) {
        return Status::DataLoss("window_aggregate: corrupt key in state");
      }
      WriteRow(key_row_, start, end, out_.Append(plan_.output.size()));
      WEIR_RETURN_IF_ERROR(FlushIfFull(out));
    }
    if (timer.timestamp == cleanup) {
      WEIR_RETURN_IF_ERROR(windows_.Remove(timer.ns));
      if (!distinct_slots_.empty()) {
        WEIR_RETURN_IF_ERROR(ClearDistinct(timer.ns));
        SetKnownKey(timer.ns);
        ForgetKnown();
      }
    }
    return Status::Ok();
  }

  Status UpdatePending(const RowBatch& in) {
    pending_.Sort();
    for (size_t i = 0; i < pending_.size();) {
      const size_t j = pending_.GroupEnd(i);
      group_rows_.clear();
      for (size_t k = i; k < j; ++k) group_rows_.push_back(&in[pending_[k].row]);
      WEIR_RETURN_IF_ERROR(Update(pending_[i].key_group, pending_.KeyOf(pending_[i]),
                                  pending_[i].end, group_rows_.data(), group_rows_.size()));
      i = j;
    }
    return Status::Ok();
  }

  // Adds `n` rows of one key to its window ending at `end`: one read and one write of the
  // accumulator, and the window's timers when it is new.
  Status Update(int key_group, std::string_view key, int64_t end, const Row* const* rows,
                size_t n) {
    WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(key_group, key));
    EncodeWindowEnd(end, &window_key_);
    const bool present = windows_.Get(window_key_, &acc_bytes_);
    if (present) {
      WEIR_RETURN_IF_ERROR(DecodeAcc(acc_bytes_, acc_));
    } else {
      for (auto& v : acc_.fields) v.SetNull();
    }
    for (size_t k = 0; k < n; ++k) UpdateAccumulators(plan_.aggs, *rows[k], acc_);
    if (!distinct_slots_.empty()) WEIR_RETURN_IF_ERROR(AddDistinct(rows, n, !present));
    acc_buf_.Clear();
    SerializeRow(acc_, plan_.aggs.acc_schema, acc_buf_);
    WEIR_RETURN_IF_ERROR(windows_.Put(
        window_key_,
        std::string_view(reinterpret_cast<const char*>(acc_buf_.data()), acc_buf_.size())));
    if (!present) WEIR_RETURN_IF_ERROR(RegisterTimers(end));
    return Status::Ok();
  }

  // count_distinct values known to be in "distinct", of one (key, window): each [slot][value]
  // seen, and whether that is every value stored (the window was created here
  // and its set never dropped), so that a value not in it is new without a state lookup.
  // A window's set goes when it is cleaned up; all go when over the state cache budget.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct KnownValues {
    bool complete = false;
    size_t bytes = 0;  // counted in known_bytes_
    std::unordered_set<std::string, Hash, std::equal_to<>> values;
  };
  // count_distinct: each non-null value new to the window (current key, window_key_) is added
  // to the map state "distinct" under [window end][accumulator slot][value] and counted.
  // `fresh`: the window has just been created, so it has no stored values yet.
  Status AddDistinct(const Row* const* rows, size_t n, bool fresh) {
    SetKnownKey(window_key_);
    KnownValues* known = KnownFor(fresh);
    for (const auto& [field, slot] : distinct_slots_) {
      for (size_t k = 0; k < n; ++k) {
        const Value& v = (*rows[k])[field];
        if (v.is_null()) continue;
        value_bytes_.assign(1, static_cast<char>(slot));
        state::Codec<Value>::Encode(v, &scratch_);
        value_bytes_.append(scratch_);
        if (known->values.find(std::string_view(value_bytes_)) != known->values.end()) continue;
        if (known_bytes_ > known_limit_) {
          known_.clear();  // every window reads state again until it is cleaned up
          known_bytes_ = 0;
          known = KnownFor(false);
        }
        const size_t bytes = value_bytes_.size() + 64;  // with the node and bucket, roughly
        known_bytes_ += bytes;
        known->bytes += bytes;
        known->values.insert(value_bytes_);  // stored from here on, whether new or not
        distinct_key_.assign(window_key_);
        distinct_key_.append(value_bytes_);
        if (!known->complete && distinct_.Contains(distinct_key_)) continue;
        WEIR_RETURN_IF_ERROR(distinct_.Put(distinct_key_, {}));
        Value& count = acc_[slot];
        count.SetInt64(count.is_null() ? 1 : count.i + 1);
      }
    }
    return Status::Ok();
  }

  // The known values of (current key, window) (known_key_): a new, complete set for a fresh
  // window; an incomplete one if the window has none yet (restored, or sets were dropped).
  KnownValues* KnownFor(bool fresh) {
    if (fresh) ForgetKnown();
    auto it = known_.find(std::string_view(known_key_));
    if (it == known_.end()) {
      it = known_.emplace(known_key_, KnownValues{}).first;
      it->second.complete = fresh;
      it->second.bytes = known_key_.size() + 128;
      known_bytes_ += it->second.bytes;
    }
    return &it->second;
  }

  // known_key_ := [current state key][window key].
  void SetKnownKey(std::string_view window_key) {
    known_key_.assign(store_->current_key());
    known_key_.append(window_key);
  }

  // Drops the known values of (current key, window) (known_key_), if any.
  void ForgetKnown() {
    auto it = known_.find(std::string_view(known_key_));
    if (it == known_.end()) return;
    known_bytes_ -= std::min(known_bytes_, it->second.bytes);
    known_.erase(it);
  }

  // Drops the count_distinct values of the current key's window `ns` (an encoded end, the
  // prefix of its entries' user keys), in one write.
  Status ClearDistinct(std::string_view ns) { return distinct_.RemovePrefix(ns); }

  // The timers of a new window of the current key (window_key_ is its encoded end).
  Status RegisterTimers(int64_t end) {
    const int64_t max_ts = end - 1;
    if (plan_.processing_time) return timers_->RegisterProcessingTimeTimer(max_ts, window_key_);
    const int64_t cleanup = SaturatingAdd(max_ts, plan_.lateness_ms);
    // As Flink's event-time trigger: no timer for a window the watermark has passed (its
    // row goes out at once); it would fire a second time at the next watermark.
    if (max_ts > watermark_) {
      WEIR_RETURN_IF_ERROR(timers_->RegisterEventTimeTimer(max_ts, window_key_));
    }
    if (cleanup != max_ts) {
      WEIR_RETURN_IF_ERROR(timers_->RegisterEventTimeTimer(cleanup, window_key_));
    }
    return Status::Ok();
  }

  // A session of the key being updated: [start, end), its accumulator in acc_pool_[acc], and
  // the end it is stored under (stored: it has an entry and timers under that end).
  struct Session {
    int64_t start, end, stored_end;
    bool stored, dirty;
    uint32_t acc;
  };
  Row& NewAcc(uint32_t* slot) {
    if (next_acc_ == acc_pool_.size()) acc_pool_.emplace_back(plan_.aggs.acc_schema.size());
    *slot = static_cast<uint32_t>(next_acc_);
    return acc_pool_[next_acc_++];
  }

  // Per key of the batch: its stored sessions are read, its rows (in time order) added,
  // merging the sessions they bridge, then the changes written back: entries and timers of
  // sessions merged away or moved to a new end removed, changed sessions written, new ends'
  // timers registered, and sessions the watermark has passed emitted at once (late firing).
  Status UpdateSessions(const RowBatch& in, Output& out) {
    pending_.Sort();
    for (size_t i = 0; i < pending_.size();) {
      const std::string_view key = pending_.KeyOf(pending_[i]);
      WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(pending_[i].key_group, key));
      sessions_.clear();
      removed_.clear();
      next_acc_ = 0;
      for (auto it = windows_.Iterate(); it.Valid(); it.Next()) {
        Session s{};
        if (!DecodeWindowEnd(it.user_key(), &s.end)) {
          return Status::DataLoss("window_aggregate: malformed session key in state");
        }
        WEIR_RETURN_IF_ERROR(DecodeSession(it.value(), &s.start, NewAcc(&s.acc)));
        s.stored_end = s.end;
        s.stored = true;
        sessions_.push_back(s);  // in end order, which for disjoint sessions is start order
      }
      const size_t j = pending_.GroupEnd(i, /*by_end=*/false);
      for (size_t k = i; k < j; ++k) AddToSession(pending_[k].end, in[pending_[k].row]);
      for (int64_t end : removed_) {
        EncodeWindowEnd(end, &window_key_);
        WEIR_RETURN_IF_ERROR(windows_.Remove(window_key_));
        if (!plan_.processing_time) {
          WEIR_RETURN_IF_ERROR(timers_->DeleteEventTimeTimer(end - 1, window_key_));
          WEIR_RETURN_IF_ERROR(timers_->DeleteEventTimeTimer(
              SaturatingAdd(end - 1, plan_.lateness_ms), window_key_));
        }
      }
      for (const Session& s : sessions_) {
        if (!s.dirty) continue;
        EncodeWindowEnd(s.end, &window_key_);
        acc_buf_.Clear();
        EncodeWindowEnd(s.start, &start_bytes_);
        std::memcpy(acc_buf_.Reserve(8), start_bytes_.data(), 8);
        acc_buf_.Commit(8);
        const Row& acc = acc_pool_[s.acc];
        SerializeRow(acc, plan_.aggs.acc_schema, acc_buf_);
        WEIR_RETURN_IF_ERROR(windows_.Put(
            window_key_,
            std::string_view(reinterpret_cast<const char*>(acc_buf_.data()), acc_buf_.size())));
        if (!s.stored) WEIR_RETURN_IF_ERROR(RegisterTimers(s.end));
        if (s.end - 1 <= watermark_) {
          if (!keys_.Decode(key, key_row_)) {
            return Status::DataLoss("window_aggregate: corrupt key in batch");
          }
          WriteRow(key_row_, s.start, s.end, out_.Append(plan_.output.size()), acc);
          WEIR_RETURN_IF_ERROR(FlushIfFull(out));
        }
      }
      i = j;
    }
    return Status::Ok();
  }

  // Adds a row at `t` to the sessions_ of its key: [t, t + gap) merged with every session it
  // overlaps or touches (as Flink's TimeWindow.intersects), or a new session.
  void AddToSession(int64_t t, const Row& row) {
    const int64_t end = t + plan_.gap_ms;  // no overflow: checked in AddSessionRow
    size_t i = 0;
    while (i < sessions_.size() && sessions_[i].end < t) ++i;
    if (i == sessions_.size() || sessions_[i].start > end) {
      Session s{t, end, 0, false, true, 0};
      Row& acc = NewAcc(&s.acc);
      for (auto& v : acc.fields) v.SetNull();
      sessions_.insert(sessions_.begin() + static_cast<std::ptrdiff_t>(i), s);
    } else {
      Session& s = sessions_[i];
      size_t k = i + 1;
      int64_t new_end = std::max(s.end, end);
      for (; k < sessions_.size() && sessions_[k].start <= end; ++k) {
        const Session& m = sessions_[k];
        MergeAccumulators(plan_.aggs, acc_pool_[m.acc], acc_pool_[s.acc]);
        new_end = std::max(new_end, m.end);
        if (m.stored) removed_.push_back(m.stored_end);
      }
      sessions_.erase(sessions_.begin() + static_cast<std::ptrdiff_t>(i + 1),
                      sessions_.begin() + static_cast<std::ptrdiff_t>(k));
      s.start = std::min(s.start, t);
      if (new_end != s.end && s.stored) {
        removed_.push_back(s.stored_end);
        s.stored = false;
      }
      s.end = new_end;
      s.dirty = true;
    }
    UpdateAccumulators(plan_.aggs, row, acc_pool_[sessions_[i].acc]);
  }

  void WriteRow(const Row& key, int64_t start, int64_t end, Row& out) {
    WriteRow(key, start, end, out, acc_);
  }
  void WriteRow(const Row& key, int64_t start, int64_t end, Row& out, const Row& acc) {
    size_t i = 0;
    for (; i < key.size(); ++i) out[i].CopyFrom(key[i]);
    out[i++].SetTimestamp(start);
    out[i++].SetTimestamp(end);
    WriteAggregates(plan_.aggs, acc, out, i);
  }

  Status FlushIfFull(Output& out) {
    if (out_.size() < RowBatch::kDefaultCapacity) return Status::Ok();
    WEIR_RETURN_IF_ERROR(out.Emit(out_));
    out_.Clear();
    return Status::Ok();
  }

  Status DecodeAcc(std::string_view bytes, Row& acc) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    if (!DeserializeRow(&p, p + bytes.size(), plan_.aggs.acc_schema, acc)) {
      return Status::DataLoss("window_aggregate: corrupt accumulator in state");
    }
    return Status::Ok();
  }
  // A session entry: [start, 8 bytes as a window end][accumulator row].
  Status DecodeSession(std::string_view bytes, int64_t* start, Row& acc) {
    if (bytes.size() < 8 || !DecodeWindowEnd(bytes.substr(0, 8), start)) {
      return Status::DataLoss("window_aggregate: corrupt session in state");
    }
    return DecodeAcc(bytes.substr(8), acc);
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
  const bool session_;
  KeyExtractor keys_;
  state::MapState windows_;
  state::MapState distinct_;                            // count_distinct's values (AddDistinct)
  std::vector<std::pair<int, size_t>> distinct_slots_;  // (input field, accumulator slot)
  std::string distinct_key_;
  std::string value_bytes_;
  // count_distinct values known to be in "distinct", per [state key][window key] (KnownValues).
  std::unordered_map<std::string, KnownValues, Hash, std::equal_to<>> known_;
  std::string known_key_, scratch_;
  size_t known_bytes_ = 0;
  size_t known_limit_ = 0;
  state::InternalTimerService* timers_ = nullptr;
  OperatorMetrics* metrics_ = nullptr;
  std::string log_prefix_;
  int64_t late_ = 0;
  Output* late_out_ = nullptr;  // the side output "late" (Open)
  RowBatch late_rows_;          // late rows of the batch being processed
  int64_t no_time_ = 0;
  int64_t last_log_ms_ = 0;
  std::string window_key_;
  std::string start_bytes_;
  std::string acc_bytes_;
  Row acc_;
  Row key_row_;
  ByteBuffer acc_buf_;
  RowBatch out_;
  // Process's grouping of a batch (capacity kept between batches).
  KeyWindowGroups pending_;
  std::vector<const Row*> group_rows_;
  // UpdateSessions' sessions of one key, the ends of entries to remove, and the accumulators
  // (a pool reused for every key; next_acc_ is the first free one).
  std::vector<Session> sessions_;
  std::vector<int64_t> removed_;
  std::vector<Row> acc_pool_;
  size_t next_acc_ = 0;
};

}  // namespace

void RegisterWindowAggregate(OperatorRegistry& r) {
  r.Register(
      "window_aggregate",
      std::make_unique<KeyedOperatorFactory<WindowAggregateSpec, WindowAggregate, PlanWindow>>());
}

}  // namespace weir
