// Event time: watermark strategies, trackers and how watermarks of several inputs combine.
//
// A watermark W on a stream says "no more records with event time <= W are expected" (records
// that still come are late). Sources generate watermarks from their records' event-time field
// with bounded out-of-orderness; a source that reads several splits (Kafka partitions) keeps
// one tracker per split and emits the minimum over the splits that are not idle. Watermarks
// flow in-band (they never overtake records); a task with several input channels forwards the
// minimum over its active channels (WatermarkValve), idle channels excluded, so an idle source
// does not hold event time back. Output is monotonic: a watermark never goes back.
//
// All classes here are plain values used by one thread (the task thread) at a time.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "weir/config.h"
#include "weir/status.h"

namespace weir {

constexpr int64_t kMinWatermark = std::numeric_limits<int64_t>::min();  // no event time yet
constexpr int64_t kMaxWatermark = std::numeric_limits<int64_t>::max();  // end of input

// A source vertex's `watermarks:` block in the job file.
struct WatermarkStrategy {
  std::string event_time_field;          // a timestamp (or integer, ms) field of the output
  int64_t max_out_of_orderness_ms = 0;   // how far behind the maximum a record may still come
  int64_t idle_timeout_ms = 0;           // no records for this long: idle (0: never)
  int64_t emit_interval_ms = 200;        // how often the source emits a watermark
};

// Parses `watermarks: {event_time_field, max_out_of_orderness, idle_timeout, interval}`;
// errors name the key (config.path()).
Result<WatermarkStrategy> ParseWatermarkStrategy(const Config& config);

struct WatermarkStatus {
  int64_t watermark = kMinWatermark;
  bool idle = false;
};

// Bounded out-of-orderness over one stream: watermark = max event time seen - bound - 1.
class WatermarkTracker {
 public:
  explicit WatermarkTracker(int64_t max_out_of_orderness_ms = 0) : bound_(max_out_of_orderness_ms) {}
  void OnEvent(int64_t event_time_ms, int64_t now_ms) {
    if (event_time_ms > max_) max_ = event_time_ms;
    last_event_ms_ = now_ms;
  }
  // Marks activity without an event time (e.g. the split had records without a usable time).
  void Touch(int64_t now_ms) { last_event_ms_ = now_ms; }
  int64_t watermark() const;
  int64_t last_event_ms() const { return last_event_ms_; }
  int64_t max_event_time() const { return max_; }

 private:
  int64_t bound_;
  int64_t max_ = kMinWatermark;
  int64_t last_event_ms_ = 0;
};

// Watermarks of one source subtask that reads several splits (e.g. Kafka partitions): one
// tracker per split; the subtask's watermark is the minimum over splits that had a record
// within the idle timeout; when every split is idle, the subtask is idle. Splits are named by
// strings (e.g. "topic/3").
class SplitWatermarks {
 public:
  explicit SplitWatermarks(const WatermarkStrategy& strategy) : strategy_(strategy) {}
  // A new split starts active at `now_ms` (so it is not idle before its first fetch).
  void AddSplit(const std::string& split, int64_t now_ms);
  void RemoveSplit(const std::string& split);
  void OnEvent(const std::string& split, int64_t event_time_ms, int64_t now_ms);
  WatermarkStatus Current(int64_t now_ms) const;
  size_t num_splits() const { return splits_.size(); }

 private:
  WatermarkStrategy strategy_;
  std::map<std::string, WatermarkTracker> splits_;
};

// Combines the watermarks of a task's input channels (as Flink's status watermark valve):
// the output is the minimum over active channels; an idle channel is left out until it is
// active again and has caught up with the output; when all channels are idle the task is idle.
class WatermarkValve {
 public:
  explicit WatermarkValve(size_t channels);
  // Channel `ch` delivered watermark `wm`. Returns the new output watermark if it advanced.
  std::optional<int64_t> OnWatermark(size_t ch, int64_t wm);
  // Channel `ch` became idle / active. Returns the new output watermark if it advanced;
  // `*idle_changed` is set when the task's own idleness flipped (read it from idle()).
  std::optional<int64_t> OnIdle(size_t ch, bool idle, bool* idle_changed);
  // The channel ended: it no longer holds anything back.
  std::optional<int64_t> OnEnd(size_t ch);
  int64_t current() const { return out_; }
  bool idle() const { return all_idle_; }

 private:
  struct Channel {
    int64_t wm = kMinWatermark;
    bool idle = false;
    bool aligned = true;  // counted in the minimum
    bool ended = false;
  };
  std::optional<int64_t> Recompute();
  std::vector<Channel> ch_;
  int64_t out_ = kMinWatermark;
  bool all_idle_ = false;
};

}  // namespace weir
