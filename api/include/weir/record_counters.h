// RecordCounters: cumulative record counts of one operator subtask for reconciliation.
//
// Sources count records "read", filters "filtered", parsers and sinks "dirty", sinks
// "committed" (rows in files pre-committed at the barrier, durable once the checkpoint
// completes) and "late". The counts travel with each checkpoint acknowledgement
// (OperatorSnapshot::counts); since every operator takes its snapshot at the same barrier, the
// job manager's totals for checkpoint n describe one consistent cut, so for a one-to-one
// pipeline read == committed + late + dirty + filtered exactly (weir status shows it).
//
// The counts are also operator state (a SPLIT list "_counts"), so they continue across
// failovers and rescaling: each restored subtask adds up the entries it is given.
// Used by the operator's task thread only.
#pragma once

#include <charconv>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "weir/operator.h"
#include "weir/text_formats.h"

namespace weir {

class RecordCounters {
 public:
  static constexpr std::string_view kListName = "_counts";

  void Add(const std::string& name, int64_t n) { counts_[name] += n; }
  int64_t Get(const std::string& name) const {
    auto it = counts_.find(name);
    return it == counts_.end() ? 0 : it->second;
  }
  // Adds up the restored entries (an absent list is fine: an older checkpoint or a new job).
  // Corrupt entries (bad text, a negative count, a sum past int64) are an error.
  Status Restore(const RestoredState* restored) {
    if (restored == nullptr) return Status::Ok();
    for (const proto::NamedList& l : restored->operator_state) {
      if (l.name() != kListName) continue;
      for (const std::string& e : l.entries()) {
        // "c1" then name, value pairs, NUL-separated.
        size_t start = 0;
        auto next = [&](std::string_view* out) {
          if (start > e.size()) return false;
          size_t end = e.find('\0', start);
          if (end == std::string::npos) end = e.size();
          *out = std::string_view(e).substr(start, end - start);
          start = end + 1;
          return true;
        };
        std::string_view tag, name, value;
        if (!next(&tag) || tag != "c1") return Status::DataLoss("corrupt '_counts' entry");
        while (start <= e.size() && next(&name)) {
          int64_t v = 0;
          if (!next(&value)) return Status::DataLoss("corrupt '_counts' entry");
          // Counts are >= 0; restored ones are summed, so a sum past int64 is corrupt too.
          int64_t& sum = counts_[std::string(name)];
          if (!TryParseInt64(value, &v).ok() || v < 0 || __builtin_add_overflow(sum, v, &sum)) {
            return Status::DataLoss("corrupt '_counts' entry");
          }
        }
      }
    }
    return Status::Ok();
  }
  void Snapshot(OperatorSnapshot* out) const {
    proto::NamedList l;
    l.set_name(std::string(kListName));
    l.set_mode(proto::NamedList::SPLIT);
    std::string e = "c1";
    for (const auto& [name, v] : counts_) {
      e.push_back('\0');
      e += name;
      e.push_back('\0');
      e += std::to_string(v);
      out->counts[name] = v;
    }
    l.add_entries(std::move(e));
    out->operator_state.push_back(std::move(l));
  }

 private:
  std::map<std::string, int64_t> counts_;
};

}  // namespace weir
