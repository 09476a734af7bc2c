// Keyed state backends: per-subtask storage of (key group, key) -> value bytes, ordered by
// (key group, key bytes) so that prefixes can be scanned.
//
// Keys are stored prefixed by their key group (2 bytes, big-endian) so that the state of a
// key-group range can be cut out when a job is rescaled. The heap backend keeps everything in
// memory (an ordered map); the RocksDB backend (backend.h) keeps the same layout on disk. Typed
// state and timers (typed_state.h) are built on this interface. A backend belongs to one
// subtask and is used only by its task thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "weir/key_groups.h"
#include "weir/status.h"

namespace weir::state {

// An ordered cursor over stored entries (see KeyedStateBackend::Scan). key() and value() are
// valid until Next() or the next write to the backend.
class StateIterator {
 public:
  virtual ~StateIterator() = default;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual int key_group() const = 0;
  virtual std::string_view key() const = 0;  // without the key-group prefix
  virtual std::string_view value() const = 0;
  // An error that ended the iteration early (RocksDB read errors).
  virtual Status status() const = 0;
};

// What a backend holds, for the metrics (-1: not known to this backend).
struct BackendStats {
  int64_t entries = -1;
  int64_t live_data_bytes = -1;    // RocksDB: estimate-live-data-size
  int64_t block_cache_bytes = -1;  // RocksDB: block-cache-usage
  int64_t memtable_bytes = -1;     // RocksDB: cur-size-all-mem-tables
};

class KeyedStateBackend {
 public:
  virtual ~KeyedStateBackend() = default;
  // Cheap (no I/O): called about once a second by the owning task thread.
  virtual BackendStats Stats() const {
    BackendStats s;
    s.entries = static_cast<int64_t>(ApproximateCount());
    return s;
  }
  // Looks `key` up; returns true and fills `value` iff present.
  virtual bool Get(int key_group, std::string_view key, std::string* value) = 0;
  virtual Status Put(int key_group, std::string_view key, std::string_view value) = 0;
  virtual Status Delete(int key_group, std::string_view key) = 0;
  // Visits every entry (order unspecified).
  virtual Status ForEach(const std::function<Status(int key_group, std::string_view key,
                                                    std::string_view value)>& fn) = 0;
  virtual size_t ApproximateCount() const = 0;

  // Entries whose key group is in `groups` and whose key starts with `prefix`, in (key group,
  // key) order. Writes during the iteration are allowed, including deleting the current entry;
  // whether entries written after the iterator was created are visited is unspecified
  // (RocksDB: never, it reads a snapshot; heap: those after the current position are).
  virtual std::unique_ptr<StateIterator> Scan(KeyGroupRange groups, std::string_view prefix) = 0;
  // Appends `bytes` to the value of `key` (absent: as if empty). RocksDB: a merge, without a
  // read; heap: an in-place append.
  virtual Status Append(int key_group, std::string_view key, std::string_view bytes) = 0;
  // Deletes every entry of `key_group` whose key starts with `prefix`.
  virtual Status DeletePrefix(int key_group, std::string_view prefix) = 0;

  // Several puts and deletes in one write (RocksDB: one WriteBatch).
  struct Change {
    int key_group;
    std::string_view key;
    std::string_view value;
    bool erase;  // a delete (value unused)
  };
  virtual Status Write(const std::vector<Change>& changes) {
    for (const Change& c : changes) {
      Status s = c.erase ? Delete(c.key_group, c.key) : Put(c.key_group, c.key, c.value);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }
  // A hint from typed state: keys starting with `first_byte` are read and written whole, by
  // key (value-like states and map entries), never appended to; map states are also scanned by
  // key and cleared by prefix. A caching backend (caching_backend.h) caches those.
  virtual void HintPointLookups(uint8_t first_byte) { (void)first_byte; }
};

// An in-memory backend (a hash map). Fast; its contents do not survive the process.
std::unique_ptr<KeyedStateBackend> NewHeapBackend();

// Builds the stored key: 2-byte big-endian key group, then the key bytes.
void ComposeKey(int key_group, std::string_view key, std::string* out);

}  // namespace weir::state
