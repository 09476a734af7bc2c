#include "weir/jobmanager/restart_strategy.h"

#include <algorithm>

namespace weir::jm {

RestartBackoff::RestartBackoff(const proto::RestartStrategy& strategy, bool checkpointing)
    : s_(strategy) {
  if (s_.type().empty()) {
    // Flink restarts checkpointed jobs by default; Weir's default delay is short because
    // recovery is meant to take well under a second.
    if (checkpointing) {
      s_.set_type("fixed-delay");
      s_.set_attempts(-1);
      s_.set_delay_ms(100);
    } else {
      s_.set_type("none");
    }
  }
  next_delay_ms_ = s_.initial_delay_ms();
}

std::optional<int64_t> RestartBackoff::OnFailure(int64_t now) {
  const std::string& t = s_.type();
  if (t == "fixed-delay") {
    if (s_.attempts() >= 0 && restarts_ >= s_.attempts()) return std::nullopt;
    ++restarts_;
    return s_.delay_ms();
  }
  if (t == "failure-rate") {
    failures_.push_back(now);
    while (!failures_.empty() && now - failures_.front() > s_.failure_rate_interval_ms()) {
      failures_.pop_front();
    }
    if (static_cast<int>(failures_.size()) > s_.max_failures_per_interval()) return std::nullopt;
    ++restarts_;
    return s_.delay_ms();
  }
  if (t == "exponential-delay") {
    if (running_since_ms_ >= 0 && now - running_since_ms_ >= s_.reset_threshold_ms()) {
      next_delay_ms_ = s_.initial_delay_ms();
    }
    running_since_ms_ = -1;
    int64_t d = std::min(next_delay_ms_, s_.max_delay_ms());
    next_delay_ms_ = std::min<int64_t>(
        static_cast<int64_t>(static_cast<double>(next_delay_ms_) * s_.multiplier()),
        s_.max_delay_ms());
    if (s_.jitter() > 0) {
      std::uniform_real_distribution<double> u(-s_.jitter(), s_.jitter());
      d = std::max<int64_t>(0, static_cast<int64_t>(static_cast<double>(d) * (1.0 + u(rng_))));
    }
    ++restarts_;
    return d;
  }
  return std::nullopt;  // none
}

std::string RestartBackoff::Describe() const {
  const std::string& t = s_.type();
  if (t == "fixed-delay") {
    return "fixed-delay (" +
           (s_.attempts() < 0 ? std::string("unlimited") : std::to_string(s_.attempts())) +
           " attempts, " + std::to_string(s_.delay_ms()) + " ms)";
  }
  if (t == "failure-rate") {
    return "failure-rate (" + std::to_string(s_.max_failures_per_interval()) + " per " +
           std::to_string(s_.failure_rate_interval_ms()) + " ms)";
  }
  if (t == "exponential-delay") {
    return "exponential-delay (" + std::to_string(s_.initial_delay_ms()) + " ms .. " +
           std::to_string(s_.max_delay_ms()) + " ms)";
  }
  return "none";
}

}  // namespace weir::jm
