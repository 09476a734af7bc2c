#include "weir/logging.h"

#include <mutex>

namespace weir {

std::shared_ptr<spdlog::logger> ModuleLogger(const char* name) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (auto l = spdlog::get(name)) return l;
  auto l = spdlog::default_logger()->clone(name);
  spdlog::register_logger(l);
  return l;
}

}  // namespace weir
