// Shared by the fuzz targets: seed corpora written by the targets themselves (run.sh runs each
// once with WEIR_FUZZ_SEEDS=<dir> when its corpus is empty), so seeds are always valid inputs
// of the current formats. Single-threaded (libFuzzer's thread).
#pragma once

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace weir::fuzz {

// Seeds to write: (file name, bytes).
using Seeds = std::vector<std::pair<std::string, std::string>>;

// No logging: protobuf's complaints about invalid UTF-8 and the operators' log lines would cost
// more than the code under test.
inline void Quiet() {
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  spdlog::set_level(spdlog::level::off);
}

// If WEIR_FUZZ_SEEDS is set, writes `seeds` there and exits.
inline void MaybeWriteSeeds(const Seeds& seeds) {
  const char* dir = std::getenv("WEIR_FUZZ_SEEDS");
  if (dir == nullptr) return;
  for (const auto& [name, bytes] : seeds) {
    const std::string path = std::string(dir) + "/" + name;
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
      std::fwrite(bytes.data(), 1, bytes.size(), f);
      std::fclose(f);
    }
  }
  std::exit(0);
}

}  // namespace weir::fuzz
