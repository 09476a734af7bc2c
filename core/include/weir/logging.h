// One spdlog logger per module ("network", "task", "jobmanager", ...), created on first use
// and shared by every file of the module. Thread-safe (spdlog loggers are).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>

namespace weir {

// The logger named `name`: registered in spdlog's registry once, with the default sinks.
std::shared_ptr<spdlog::logger> ModuleLogger(const char* name);

// A file's handle on its module's logger: `const ModuleLog Log("task");` at namespace scope,
// then `Log()->info(...)`. The constructor is constexpr, so the handle exists before any
// static initializer runs; the logger is looked up once, on first use (the registry lookup
// takes a lock, a log call should not). Any thread may call it.
class ModuleLog {
 public:
  constexpr explicit ModuleLog(const char* name) : name_(name) {}
  ModuleLog(const ModuleLog&) = delete;
  ModuleLog& operator=(const ModuleLog&) = delete;

  const std::shared_ptr<spdlog::logger>& operator()() const {
    std::call_once(once_, [this] { logger_ = ModuleLogger(name_); });
    return logger_;
  }

 private:
  const char* name_;
  mutable std::once_flag once_;
  mutable std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace weir
