// Integer arithmetic with floor semantics (time bucketing, calendars): pure, any thread.
#pragma once

#include <cstdint>

namespace weir {

// floor(a / b) and a - b * floor(a / b), for any non-zero b (C++'s / and % truncate).
constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
constexpr int64_t FloorMod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

}  // namespace weir
