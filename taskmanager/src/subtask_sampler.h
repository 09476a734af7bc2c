// SubtaskSampler: turns one subtask's cumulative figures (OperatorMetrics, written by its task
// thread) into the per-second figures of SubtaskMetrics, between two samples. Used by the task
// manager's heartbeat thread only; the clock is passed in, so tests control it.
#pragma once

#include <algorithm>
#include <cstdint>

#include "weir.pb.h"
#include "weir/operator.h"

namespace weir::tm {

class SubtaskSampler {
 public:
  proto::SubtaskMetrics Sample(const OperatorMetrics& m, int64_t mono_ns, int64_t wall_ms) {
    proto::SubtaskMetrics out;
    const int64_t in = m.records_in.load(std::memory_order_relaxed);
    const int64_t rec_out = m.records_out.load(std::memory_order_relaxed);
    const int64_t idle = m.idle_ns.load(std::memory_order_relaxed);
    const int64_t bp = m.backpressured_ns.load(std::memory_order_relaxed);
    out.set_records_in(in);
    out.set_records_out(rec_out);
    out.set_bytes_in(m.bytes_in.load(std::memory_order_relaxed));
    out.set_bytes_out(m.bytes_out.load(std::memory_order_relaxed));
    out.set_sample_time_ms(wall_ms);
    if (const int64_t w = m.input_watermark.load(std::memory_order_relaxed); w != INT64_MIN) {
      out.set_input_watermark(w);
    }
    if (const int64_t w = m.output_watermark.load(std::memory_order_relaxed); w != INT64_MIN) {
      out.set_output_watermark(w);
    }
    const int64_t cap = m.input_capacity.load(std::memory_order_relaxed);
    if (cap > 0) {
      out.set_input_buffer_usage(
          std::min(1.0, static_cast<double>(m.input_queued.load(std::memory_order_relaxed)) /
                            static_cast<double>(cap)));
    }
    if (has_prev_ && mono_ns > prev_ns_) {
      const double secs = static_cast<double>(mono_ns - prev_ns_) / 1e9;
      out.set_records_in_per_second(static_cast<double>(in - prev_in_) / secs);
      out.set_records_out_per_second(static_cast<double>(rec_out - prev_out_) / secs);
      auto per_second_ms = [&](int64_t delta_ns) {
        return std::clamp(static_cast<double>(delta_ns) / 1e6 / secs, 0.0, 1000.0);
      };
      double idle_ms = per_second_ms(idle - prev_idle_);
      double bp_ms = per_second_ms(bp - prev_bp_);
      // A wait that straddles two samples is counted in the later one whole, so the two can
      // add up to more than the interval: scale them to it (busy is then 0).
      if (idle_ms + bp_ms > 1000.0) {
        const double f = 1000.0 / (idle_ms + bp_ms);
        idle_ms *= f;
        bp_ms *= f;
      }
      out.set_idle_ms_per_second(idle_ms);
      out.set_backpressured_ms_per_second(bp_ms);
      out.set_busy_ms_per_second(std::max(0.0, 1000.0 - idle_ms - bp_ms));
      out.set_output_buffer_usage(bp_ms / 1000.0);
    }
    has_prev_ = true;
    prev_ns_ = mono_ns;
    prev_in_ = in;
    prev_out_ = rec_out;
    prev_idle_ = idle;
    prev_bp_ = bp;
    return out;
  }

 private:
  bool has_prev_ = false;
  int64_t prev_ns_ = 0, prev_in_ = 0, prev_out_ = 0, prev_idle_ = 0, prev_bp_ = 0;
};

}  // namespace weir::tm
