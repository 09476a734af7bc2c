// Restart strategies (as in Flink): after a failure, whether to restart a job and after what
// delay. Pure logic over an injected time; not thread-safe (the JobManager calls it under its
// lock).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>

#include "weir.pb.h"

namespace weir::jm {

class RestartBackoff {
 public:
  // `strategy.type` empty: fixed-delay (unlimited, 100 ms) when the job checkpoints, else none.
  RestartBackoff(const proto::RestartStrategy& strategy, bool checkpointing);

  // A failure at `now_ms`: the delay before the restart, or nullopt if the strategy gives up.
  std::optional<int64_t> OnFailure(int64_t now_ms);
  // The restarted job has been running since `since_ms` (exponential-delay resets after a
  // stable period).
  void OnRunning(int64_t since_ms) { running_since_ms_ = since_ms; }
  // "fixed-delay (3 attempts, 1000 ms)" for messages.
  std::string Describe() const;

 private:
  proto::RestartStrategy s_;
  int restarts_ = 0;
  int64_t next_delay_ms_ = 0;
  int64_t running_since_ms_ = -1;
  std::deque<int64_t> failures_;  // failure-rate: times within the interval
  std::mt19937_64 rng_{12345};
};

}  // namespace weir::jm
