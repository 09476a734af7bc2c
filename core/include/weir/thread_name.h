// Names a thread as `top -H`, `perf` and debuggers show it: Linux keeps 15 bytes, so the name
// is cut there. Any thread may call it, for a thread it owns.
#pragma once

#include <string_view>
#include <thread>

namespace weir {

void NameThread(std::thread& thread, std::string_view name);

}  // namespace weir
