// The clocks Weir reads: wall-clock milliseconds (event and processing times, file ages,
// checkpoint timestamps) and monotonic milliseconds (timeouts and intervals that must not jump
// when the wall clock is set). Any thread may call them.
#pragma once

#include <chrono>
#include <cstdint>

namespace weir {

// Milliseconds since 1970-01-01T00:00:00Z (system_clock).
inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Milliseconds of steady_clock: only differences mean anything.
inline int64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace weir
