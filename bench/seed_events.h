// The seeds' events as rows, for benchmarks: what examples/kafka-to-hive.yaml's parse makes of
// deploy/dev_broker's sample events (one every 500 ms from 2026-11-22, five apps, amounts with
// two decimals), with parse's keep: [partition, offset] and record_id. Header-only; any thread.
#pragma once

#include <string>

#include "weir/types.h"

namespace weir::bench {

inline Schema SeedEventSchema() {
  return Schema({{"id", Type::kInt64},
                 {"event_time", Type::kTimestamp},
                 {"app", Type::kString},
                 {"user", Type::kInt64},
                 {"amount", Type::kDouble},
                 {"partition", Type::kInt64},
                 {"offset", Type::kInt64},
                 {"record_id", Type::kString}});
}

// Replaces `b` with the events of ids [first, first + n).
inline void FillSeedEvents(RowBatch& b, int64_t first, size_t n) {
  static const char* kApps[] = {"app0", "app1", "app2", "app3", "app4"};
  b.Clear();
  for (size_t i = 0; i < n; ++i) {
    const int64_t id = first + static_cast<int64_t>(i);
    Row& r = b.Append(8);
    r[0].SetInt64(id);
    r[1].SetTimestamp(1795305600000 + id * 500);
    r[2].SetString(kApps[id % 5]);
    r[3].SetInt64(1000 + (id * 7919) % 50000);
    r[4].SetDouble(static_cast<double>(id % 100) + static_cast<double>(id % 10) / 10 + 0.05);
    r[5].SetInt64(id % 4);
    r[6].SetInt64(id / 4);
    r[7].SetString("events/" + std::to_string(id % 4) + "/" + std::to_string(id / 4));
  }
}

}  // namespace weir::bench
