// Keyed state backends: per-subtask storage of (key group, key) -> value bytes.
//
// Keys are stored prefixed by their key group (2 bytes, big-endian) so that the state of a
// key-group range can be cut out when a job is rescaled. The heap backend keeps everything in
// memory; the RocksDB backend (backend.h) keeps the same layout on disk. A backend
// belongs to one subtask and is used only by its task thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "weir/status.h"

namespace weir::state {

class KeyedStateBackend {
 public:
  virtual ~KeyedStateBackend() = default;
  // Looks `key` up; returns true and fills `value` iff present.
  virtual bool Get(int key_group, std::string_view key, std::string* value) = 0;
  virtual Status Put(int key_group, std::string_view key, std::string_view value) = 0;
  virtual Status Delete(int key_group, std::string_view key) = 0;
  // Visits every entry (order unspecified).
  virtual Status ForEach(
      const std::function<Status(int key_group, std::string_view key, std::string_view value)>&
          fn) = 0;
  virtual size_t ApproximateCount() const = 0;
};

// An in-memory backend (a hash map). Fast; its contents do not survive the process.
std::unique_ptr<KeyedStateBackend> NewHeapBackend();

// Builds the stored key: 2-byte big-endian key group, then the key bytes.
void ComposeKey(int key_group, std::string_view key, std::string* out);

}  // namespace weir::state
