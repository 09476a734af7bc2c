// Path checks for names that come from outside the process (checkpoint handles, operator
// state, acknowledgements): pure functions, any thread.
#pragma once

#include <string_view>

namespace weir {

// A relative path that stays below its base: not empty, no leading '/', no NUL, and no empty,
// "." or ".." segment.
inline bool IsSafeRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace weir
