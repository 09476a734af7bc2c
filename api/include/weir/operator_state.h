// Typed, versioned operator list state: the one way operators encode what they keep in
// operator state (source positions, sink transactions), so that savepoints survive upgrades.
//
// Each entry is one serialized protobuf message (fields can be added without a new version:
// protobuf reads old bytes and ignores unknown ones); the list's name carries the format
// version, "<name>@v<version>", so a reader never sniffs bytes to know what it holds. A
// version is bumped only when the meaning of the entries changes; a reader that meets another
// version of its list, and has no conversion for it, refuses the restore naming both versions.
// The job manager redistributes lists by name and mode (SPLIT round-robin, UNION to all), as
// for any operator state. Pure functions and a small builder; any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "weir.pb.h"
#include "weir/operator.h"
#include "weir/status.h"

namespace weir {

// "<name>@v<version>"
inline std::string VersionedListName(const std::string& name, int version) {
  return name + "@v" + std::to_string(version);
}

template <typename Msg>
class OperatorListState {
 public:
  OperatorListState(std::string name, int version, proto::NamedList::Mode mode)
      : name_(std::move(name)), version_(version), mode_(mode) {}

  // The list to put into an OperatorSnapshot, one entry per message.
  proto::NamedList Encode(const std::vector<Msg>& entries) const {
    proto::NamedList list;
    list.set_name(VersionedListName(name_, version_));
    list.set_mode(mode_);
    for (const Msg& m : entries) list.add_entries(m.SerializeAsString());
    return list;
  }

  // The messages of this list in `restored` (all of them, whatever subtask wrote them), or
  // nothing when the state holds no list of this name at any version (a fresh start, or state
  // written before the list existed). `owner` names the operator in errors.
  Result<std::optional<std::vector<Msg>>> Decode(const RestoredState* restored,
                                                 const std::string& owner) const {
    if (!restored) return std::optional<std::vector<Msg>>();
    const std::string want = VersionedListName(name_, version_);
    std::optional<std::vector<Msg>> out;
    for (const proto::NamedList& list : restored->operator_state) {
      if (list.name() == want) {
        if (!out) out.emplace();
        for (const std::string& e : list.entries()) {
          Msg m;
          if (!m.ParseFromString(e)) {
            return Status::DataLoss(owner + ": corrupt entry in restored state '" + want + "'");
          }
          out->push_back(std::move(m));
        }
      } else if (list.name().rfind(name_ + "@v", 0) == 0) {
        return Status::FailedPrecondition(owner + ": restored state '" + list.name() +
                                          "' has a format this version does not read (it reads '" +
                                          want + "')");
      }
    }
    return out;
  }

 private:
  std::string name_;
  int version_;
  proto::NamedList::Mode mode_;
};

}  // namespace weir
