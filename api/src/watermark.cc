#include "weir/watermark.h"

#include <algorithm>

namespace weir {

Result<WatermarkStrategy> ParseWatermarkStrategy(const Config& c) {
  WEIR_RETURN_IF_ERROR(
      c.CheckKeys({"event_time_field", "max_out_of_orderness", "idle_timeout", "interval"}));
  WatermarkStrategy s;
  WEIR_ASSIGN_OR_RETURN(s.event_time_field, c.GetString("event_time_field"));
  WEIR_ASSIGN_OR_RETURN(s.max_out_of_orderness_ms, c.GetDurationMs("max_out_of_orderness", 0));
  WEIR_ASSIGN_OR_RETURN(s.idle_timeout_ms, c.GetDurationMs("idle_timeout", 0));
  WEIR_ASSIGN_OR_RETURN(s.emit_interval_ms, c.GetDurationMs("interval", 200));
  if (s.max_out_of_orderness_ms < 0) {
    return Status::InvalidArgument(c.path() + ".max_out_of_orderness: must not be negative");
  }
  if (s.idle_timeout_ms < 0) {
    return Status::InvalidArgument(c.path() + ".idle_timeout: must not be negative");
  }
  if (s.emit_interval_ms < 1) {
    return Status::InvalidArgument(c.path() + ".interval: must be at least 1ms");
  }
  return s;
}

int64_t WatermarkTracker::watermark() const {
  if (max_ == kMinWatermark) return kMinWatermark;
  // Saturate rather than wrap for absurd event times.
  if (max_ < kMinWatermark + bound_ + 1) return kMinWatermark;
  return max_ - bound_ - 1;
}

void SplitWatermarks::AddSplit(const std::string& split, int64_t now_ms) {
  auto [it, inserted] = splits_.try_emplace(split, strategy_.max_out_of_orderness_ms);
  if (inserted) it->second.Touch(now_ms);
}

void SplitWatermarks::RemoveSplit(const std::string& split) { splits_.erase(split); }

void SplitWatermarks::OnEvent(const std::string& split, int64_t event_time_ms, int64_t now_ms) {
  auto it = splits_.try_emplace(split, strategy_.max_out_of_orderness_ms).first;
  it->second.OnEvent(event_time_ms, now_ms);
}

WatermarkStatus SplitWatermarks::Current(int64_t now_ms) const {
  WatermarkStatus st;
  bool any_active = false;
  int64_t min = kMaxWatermark;
  for (const auto& [name, t] : splits_) {
    const bool idle = strategy_.idle_timeout_ms > 0 &&
                      now_ms - t.last_event_ms() >= strategy_.idle_timeout_ms;
    if (idle) continue;
    any_active = true;
    min = std::min(min, t.watermark());
  }
  if (!any_active) {
    // No splits at all is not "idle" unless idleness is configured: without a timeout the
    // subtask holds event time back until it has data, as in Flink.
    st.idle = strategy_.idle_timeout_ms > 0;
    st.watermark = kMinWatermark;
    return st;
  }
  st.watermark = min;
  return st;
}

WatermarkValve::WatermarkValve(size_t channels) : ch_(channels) {}

std::optional<int64_t> WatermarkValve::Recompute() {
  bool any = false;
  int64_t min = kMaxWatermark;
  bool all_idle = true;
  bool any_open = false;
  for (const Channel& c : ch_) {
    if (c.ended) continue;
    any_open = true;
    if (!c.idle) all_idle = false;
    if (c.idle || !c.aligned) continue;
    any = true;
    min = std::min(min, c.wm);
  }
  all_idle_ = any_open && all_idle;
  if (any && min > out_) {
    out_ = min;
    return out_;
  }
  return std::nullopt;
}

std::optional<int64_t> WatermarkValve::OnWatermark(size_t ch, int64_t wm) {
  Channel& c = ch_[ch];
  if (c.ended) return std::nullopt;
  if (wm > c.wm) c.wm = wm;
  // An idle channel that sends a watermark is active again.
  c.idle = false;
  if (!c.aligned && c.wm >= out_) c.aligned = true;
  return Recompute();
}

std::optional<int64_t> WatermarkValve::OnIdle(size_t ch, bool idle, bool* idle_changed) {
  Channel& c = ch_[ch];
  const bool before = all_idle_;
  if (!c.ended) {
    c.idle = idle;
    // Coming back: counted again only once it caught up with what was already emitted.
    if (!idle) c.aligned = c.wm >= out_;
  }
  auto r = Recompute();
  if (idle_changed) *idle_changed = before != all_idle_;
  return r;
}

std::optional<int64_t> WatermarkValve::OnEnd(size_t ch) {
  ch_[ch].ended = true;
  return Recompute();
}

}  // namespace weir
