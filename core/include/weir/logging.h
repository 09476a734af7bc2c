// One spdlog logger per module ("network", "task", "jobmanager", ...), created on first use
// and shared by every file of the module. Thread-safe (spdlog loggers are).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>

namespace weir {

// The logger named `name`: registered in spdlog's registry once, with the default sinks.
std::shared_ptr<spdlog::logger> ModuleLogger(const char* name);

}  // namespace weir
