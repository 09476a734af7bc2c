// The process's own figures, from /proc/self (Linux).
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "weir/prometheus_families.h"

namespace weir {
namespace {

int64_t CountFds() {
  int64_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    --n;  // the directory stream's own fd
  }
  return n;
}

}  // namespace

void AddProcessMetrics(FamilyBuilder& b, const MetricLabels& labels) {
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  {
    std::ifstream statm("/proc/self/statm");
    double size = 0, resident = 0;
    if (statm >> size >> resident) {
      b.Gauge("weir_process_resident_memory_bytes", "Resident set size of the process", labels,
              resident * page);
      b.Gauge("weir_process_virtual_memory_bytes", "Virtual memory size of the process", labels,
              size * page);
    }
  }
  {
    std::ifstream stat("/proc/self/stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const size_t close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream in(line.substr(close + 2));
      std::string field;
      double utime = 0, stime = 0, threads = 0;
      for (int i = 3; in >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
        if (i == 20) {
          threads = std::stod(field);
          break;
        }
      }
      b.Counter("weir_process_cpu_seconds_total", "User and system CPU time of the process",
                labels, (utime + stime) / ticks);
      b.Gauge("weir_process_threads", "Threads of the process", labels, threads);
    }
  }
  b.Gauge("weir_process_open_fds", "Open file descriptors of the process", labels,
          static_cast<double>(CountFds()));
}

}  // namespace weir
