// Typed keyed state and timers over a snapshottable backend (Flink's keyed-state API).
//
// A KeyedStateStore serves one keyed operator in one subtask. It owns the backend (RocksDB or
// heap, backend.h) and a *current key*, which the operator sets once per record (key bytes and
// their key group, computed by the operator with the hash its input edge partitions by). State
// handles are registered by name and read or write the current key's entry:
//
//   ValueState        one value                        get / put / clear
//   ListState         a list of values                 add / get / update / clear
//   MapState          user key -> value                get / put / remove / contains / iterate
//   ReducingState     one value, add() combines        with a ReduceFunction
//   AggregatingState  one accumulator, add(in) folds   with an AggregateFunction<In>
//
// plus an InternalTimerService per name: event-time and processing-time timers per (key,
// namespace, timestamp), fired in timestamp order with the timer's key made current.
//
// Stored layout (after the backend's 2-byte big-endian key-group prefix):
//
//   state entry   [state id: 1 byte][varint key length][key bytes][map user key, if any]
//   timer         [timer id: 1 byte][timestamp: 8 bytes big-endian, sign bit flipped]
//                 [varint key length][key bytes][namespace bytes]          (value empty)
//   name table    [0x00][state name] -> [format version 1][state id][state kind]
//                                         [value version: varint, omitted when 1]
//
// The length prefix makes the key self-delimiting, so a key's entries never share a prefix
// with another key's (keys "a" and "ab" start [1]"a" and [2]"ab"), and a map's entries for the
// current key are one contiguous, prefix-scannable run. Ids are small (1..250) and assigned on
// first registration; the name table is written into every key group the subtask owns, so
// it travels with the key groups through checkpoints, restores and rescaling, and a restored
// name keeps its id whatever the registration order. A restore whose key groups disagree on a
// name's id or kind is refused with an error naming the state.
//
// Values are bytes; Codec<T> (int64, double, string, weir::Value) gives typed access. The
// Codec encodings are fixed; what an operator builds from them (e.g. an accumulator row) is
// versioned per state, not per value (no bytes per record): a state is registered with its
// value version (default 1), which the name table keeps. A restore whose name table has
// another version of a state is refused when the state is registered, naming both versions;
// state written before versions were stored reads as version 1.
//
// Threads: a store, its handles and its timer services are used by the task thread only.
// Handles are cheap values (a pointer and an id) that stay valid while the store lives.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "weir/key_groups.h"
#include "weir/state/backend.h"
#include "weir/status.h"
#include "weir/types.h"

namespace weir::state {

enum class StateKind : uint8_t {
  kValue = 1,
  kList = 2,
  kMap = 3,
  kReducing = 4,
  kAggregating = 5,
  kTimers = 6,
};
const char* StateKindName(StateKind kind);

// Typed values as bytes. Decode returns false for bytes that are not a T.
template <typename T>
struct Codec;
template <>
struct Codec<int64_t> {  // 8 bytes little-endian
  static void Encode(int64_t v, std::string* out);
  static bool Decode(std::string_view in, int64_t* v);
};
template <>
struct Codec<double> {  // the IEEE-754 bits, 8 bytes little-endian
  static void Encode(double v, std::string* out);
  static bool Decode(std::string_view in, double* v);
};
template <>
struct Codec<std::string> {  // the bytes themselves
  static void Encode(const std::string& v, std::string* out) { out->assign(v); }
  static bool Decode(std::string_view in, std::string* v) {
    v->assign(in.data(), in.size());
    return true;
  }
};
template <>
struct Codec<Value> {  // a type byte, then the payload (as the row serde writes it)
  static void Encode(const Value& v, std::string* out);
  static bool Decode(std::string_view in, Value* v);
};

class KeyedStateStore;

// What every handle shares: the store and the state's id.
class StateHandle {
 public:
  StateHandle() = default;
  uint8_t id() const { return id_; }

 protected:
  StateHandle(KeyedStateStore* store, uint8_t id) : store_(store), id_(id) {}
  // The current key's stored key for this state (+ `suffix`), in the store's scratch buffer:
  // valid until the next call that composes a key.
  std::string_view Key(std::string_view suffix = {}) const;
  int KeyGroup() const;
  SnapshottableBackend& Backend() const;
  // fn(key group, key, value) for every key in the store's key groups that has this state.
  // Not for map states (their entries carry a user key).
  Status ForEachKeyImpl(
      const std::function<Status(int key_group, std::string_view key, std::string_view value)>&
          fn) const;

  KeyedStateStore* store_ = nullptr;
  uint8_t id_ = 0;
};

class ValueState : public StateHandle {
 public:
  ValueState() = default;
  // True and fills `value` iff the current key has a value. (Backend read errors surface at the
  // next write or snapshot; see KeyedStateBackend::Get.)
  bool Get(std::string* value) const;
  Status Put(std::string_view value);
  Status Clear();
  template <typename T>
  Result<std::optional<T>> GetAs() const;
  template <typename T>
  Status PutAs(const T& v);
  Status ForEachKey(
      const std::function<Status(int key_group, std::string_view key, std::string_view value)>&
          fn) const {
    return ForEachKeyImpl(fn);
  }

 private:
  friend class KeyedStateStore;
  using StateHandle::StateHandle;
};

// Elements are stored as one value, each element a varint length then its bytes. Add() appends
// without reading: on RocksDB it is a merge (a concatenating merge operator), so adding is O(1)
// and a Get pays for combining the pending operands (compactions fold them); on the heap it is
// an in-place append. Get decodes every element, so lists are meant to be read whole.
class ListState : public StateHandle {
 public:
  ListState() = default;
  Status Add(std::string_view element);
  Status AddAll(const std::vector<std::string>& elements);
  // Replaces the list (an empty `elements` clears it).
  Status Update(const std::vector<std::string>& elements);
  // The current key's elements in insertion order (empty if none).
  Status Get(std::vector<std::string>* out) const;
  Status ForEach(const std::function<Status(std::string_view element)>& fn) const;
  bool IsEmpty() const;
  Status Clear();
  template <typename T>
  Status AddAs(const T& v);

 private:
  friend class KeyedStateStore;
  using StateHandle::StateHandle;
};

// The current key's map is the run of stored keys [id][key] + user key; user keys iterate in
// bytewise order (encode integers big-endian to iterate them numerically).
class MapState : public StateHandle {
 public:
  // Iterates the current key's entries (the key current when Iterate() was called). Entries
  // may be removed during the iteration; user_key()/value() are valid until Next() or the
  // next write.
  class Iterator {
   public:
    bool Valid() const { return it_ != nullptr && it_->Valid(); }
    void Next() { it_->Next(); }
    std::string_view user_key() const { return it_->key().substr(prefix_len_); }
    std::string_view value() const { return it_->value(); }
    Status status() const { return it_ == nullptr ? Status::Ok() : it_->status(); }

   private:
    friend class MapState;
    std::unique_ptr<StateIterator> it_;
    size_t prefix_len_ = 0;
  };

  MapState() = default;
  bool Get(std::string_view user_key, std::string* value) const;
  bool Contains(std::string_view user_key) const;
  Status Put(std::string_view user_key, std::string_view value);
  Status Remove(std::string_view user_key);
  Iterator Iterate() const;
  bool IsEmpty() const;
  // Removes every entry of the current key.
  Status Clear();
  // Removes the current key's entries whose user key starts with `user_key_prefix`, in one
  // write (RocksDB: one WriteBatch).
  Status RemovePrefix(std::string_view user_key_prefix);
  // fn(key group, key, user key, value) for every entry of every key in the store's key groups.
  Status ForEachEntry(const std::function<Status(int key_group, std::string_view key,
                                                 std::string_view user_key,
                                                 std::string_view value)>& fn) const;

 private:
  friend class KeyedStateStore;
  using StateHandle::StateHandle;
};

// Combines the stored value `acc` with `value` into `out` (e.g. a sum). Called with the
// current key's value; never with an absent one (the first value is stored as is).
using ReduceFunction =
    std::function<Status(std::string_view acc, std::string_view value, std::string* out)>;

// A ReduceFunction over Codec<T> values, from a plain combiner.
template <typename T>
ReduceFunction TypedReduce(std::function<T(const T&, const T&)> combine);

class ReducingState : public StateHandle {
 public:
  ReducingState() = default;
  Status Add(std::string_view value);
  bool Get(std::string* value) const;
  Status Clear();
  template <typename T>
  Status AddAs(const T& v);
  template <typename T>
  Result<std::optional<T>> GetAs() const;
  Status ForEachKey(
      const std::function<Status(int key_group, std::string_view key, std::string_view value)>&
          fn) const {
    return ForEachKeyImpl(fn);
  }

 private:
  friend class KeyedStateStore;
  ReducingState(KeyedStateStore* store, uint8_t id, const ReduceFunction* fn)
      : StateHandle(store, id), fn_(fn) {}
  const ReduceFunction* fn_ = nullptr;  // owned by the store
};

// Folds inputs of type In into a serialized accumulator (Flink's AggregateFunction, with the
// accumulator as bytes so that it can be stored as is).
template <typename In>
class AggregateFunction {
 public:
  virtual ~AggregateFunction() = default;
  // Folds `in` into `*acc`; `present` is false when the key has no accumulator yet (then `*acc`
  // is empty and the function starts a new one).
  virtual Status Add(const In& in, bool present, std::string* acc) = 0;
};

template <typename In>
class AggregatingState : public StateHandle {
 public:
  AggregatingState() = default;
  // Reads the current key's accumulator, folds `in` into it and writes it back.
  Status Add(const In& in);
  bool Get(std::string* acc) const;
  Status Clear();
  Status ForEachKey(
      const std::function<Status(int key_group, std::string_view key, std::string_view acc)>&
          fn) const {
    return ForEachKeyImpl(fn);
  }

 private:
  friend class KeyedStateStore;
  AggregatingState(KeyedStateStore* store, uint8_t id, AggregateFunction<In>* fn)
      : StateHandle(store, id), fn_(fn) {}
  AggregateFunction<In>* fn_ = nullptr;  // owned by the operator
};

// Event-time and processing-time timers of one keyed operator. A timer is (timestamp, key,
// namespace); registering the same timer again is a no-op, so it fires once. Each timer is
// stored in the backend (so it is checkpointed and moves with its key group on rescale) and
// indexed in memory in (timestamp, key group, key, namespace) order; the index is rebuilt from
// the backend when the store is restored. Firing deletes the stored timer first, then calls
// back with the timer's key made current; the callback may register and delete timers (a new
// timer at or before the watermark fires in the same Advance call).
class InternalTimerService {
 public:
  struct Timer {
    int64_t timestamp = 0;
    int key_group = 0;
    std::string_view key;
    std::string_view ns;
  };
  using FireFn = std::function<Status(const Timer& timer)>;

  // For the store's current key.
  Status RegisterEventTimeTimer(int64_t timestamp, std::string_view ns = {});
  Status DeleteEventTimeTimer(int64_t timestamp, std::string_view ns = {});
  Status RegisterProcessingTimeTimer(int64_t timestamp, std::string_view ns = {});
  Status DeleteProcessingTimeTimer(int64_t timestamp, std::string_view ns = {});

  // Fires every event-time timer with timestamp <= `watermark`, in timestamp order. A
  // watermark lower than the current one changes nothing.
  Status AdvanceWatermark(int64_t watermark, const FireFn& fire);
  // Fires every processing-time timer with timestamp <= `now_ms`, in timestamp order.
  Status AdvanceProcessingTime(int64_t now_ms, const FireFn& fire);

  // Calls `fn` with every registered event-time timer, in firing order: an operator counts
  // its own timers with it after a restore. `fn` must not register or delete timers.
  void ForEachEventTimeTimer(const std::function<void(const Timer& timer)>& fn) const;

  int64_t current_watermark() const { return watermark_; }
  size_t num_event_time_timers() const { return event_.timers.size(); }
  size_t num_processing_time_timers() const { return processing_.timers.size(); }
  // The earliest timestamp, if any timer is registered.
  std::optional<int64_t> next_event_time() const;
  std::optional<int64_t> next_processing_time() const;

 private:
  friend class KeyedStateStore;
  struct Entry {
    int64_t timestamp;
    int key_group;
    std::string key;
    std::string ns;
  };
  struct Ref {
    int64_t timestamp;
    int key_group;
    std::string_view key;
    std::string_view ns;
  };
  struct Less {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      if (a.timestamp != b.timestamp) return a.timestamp < b.timestamp;
      if (a.key_group != b.key_group) return a.key_group < b.key_group;
      if (int c = std::string_view(a.key).compare(std::string_view(b.key)); c != 0) return c < 0;
      return std::string_view(a.ns) < std::string_view(b.ns);
    }
  };
  struct Queue {
    uint8_t id = 0;
    std::set<Entry, Less> timers;
  };

  explicit InternalTimerService(KeyedStateStore* store) : store_(store) {}
  Status Load(Queue& q);
  Status Register(Queue& q, int64_t timestamp, std::string_view ns);
  Status Delete(Queue& q, int64_t timestamp, std::string_view ns);
  Status Advance(Queue& q, int64_t until, const FireFn& fire);
  // The stored key of a timer (after the key group) into `out`.
  static void TimerKey(uint8_t id, int64_t timestamp, std::string_view key, std::string_view ns,
                       std::string* out);

  KeyedStateStore* store_;
  Queue event_;
  Queue processing_;
  int64_t watermark_ = std::numeric_limits<int64_t>::min();
  std::string scratch_;
};

class KeyedStateStore {
 public:
  // Takes over `backend`, which owns `key_groups` (as in its BackendOptions), and reads the
  // restored name table. Fails if the restored state is inconsistent or was written without a
  // name table (by a Weir version before typed state).
  static Result<std::unique_ptr<KeyedStateStore>> Create(
      std::unique_ptr<SnapshottableBackend> backend, KeyGroupRange key_groups);

  // The key of the record being processed: its bytes and its key group, which must be one this
  // subtask owns (an error otherwise: the input is not partitioned by this key). The bytes are
  // copied into a reused buffer (no allocation once it is large enough).
  Status SetCurrentKey(int key_group, std::string_view key);
  int current_key_group() const { return current_group_; }
  std::string_view current_key() const {
    return std::string_view(current_).substr(current_key_offset_);
  }

  // Registers (or returns the already registered) state `name`. Names are non-empty, at most
  // 200 bytes, and may not start with '_' (reserved). `version` (>= 1) is the format of the
  // values the operator stores; bump it when that format changes. Registering a name again
  // with another kind or version is an error, and so is a restored state of another version.
  Result<ValueState> GetValueState(std::string_view name, uint32_t version = 1);
  Result<ListState> GetListState(std::string_view name, uint32_t version = 1);
  // Whether a caching backend (caching_backend.h) keeps a map state's entries in memory: worth
  // it for entries read and written again soon (a window's accumulator); not for entries mostly
  // written once and rarely read (count_distinct's values: caching them measured 0.6-0.8x).
  enum class Caching { kCached, kUncached };
  Result<MapState> GetMapState(std::string_view name, uint32_t version = 1,
                               Caching caching = Caching::kCached);
  Result<ReducingState> GetReducingState(std::string_view name, ReduceFunction fn,
                                         uint32_t version = 1);
  template <typename In>
  Result<AggregatingState<In>> GetAggregatingState(std::string_view name, AggregateFunction<In>* fn,
                                                   uint32_t version = 1) {
    WEIR_ASSIGN_OR_RETURN(uint8_t id, Register(name, StateKind::kAggregating, false, version));
    return AggregatingState<In>(this, id, fn);
  }
  // The timer service `name` (created and restored on first use; owned by the store).
  Result<InternalTimerService*> GetTimerService(std::string_view name);

  Result<std::unique_ptr<SnapshotUpload>> Snapshot(int64_t checkpoint_id) {
    return backend_->Snapshot(checkpoint_id);
  }
  void NotifyCheckpointComplete(int64_t id) { backend_->NotifyCheckpointComplete(id); }
  void NotifyCheckpointAborted(int64_t id) { backend_->NotifyCheckpointAborted(id); }

  SnapshottableBackend& backend() { return *backend_; }
  const SnapshottableBackend& backend() const { return *backend_; }
  BackendStats Stats() const { return backend_->Stats(); }
  KeyGroupRange key_groups() const { return key_groups_; }
  // The registered state names and ids (for tests and diagnostics).
  std::map<std::string, uint8_t> StateIds() const;

 private:
  friend class StateHandle;
  friend class ValueState;
  friend class ListState;
  friend class MapState;
  friend class ReducingState;
  template <typename In>
  friend class AggregatingState;
  friend class InternalTimerService;

  struct NameEntry {
    uint8_t id;
    StateKind kind;
    uint32_t version;  // of the values
  };

  KeyedStateStore(std::unique_ptr<SnapshottableBackend> backend, KeyGroupRange key_groups);
  Status LoadNameTable();
  Result<uint8_t> Register(std::string_view name, StateKind kind, bool internal,
                           uint32_t version = 1);
  // An error if `name`, restored or registered as `have`, is asked for as `want`.
  Status CheckRegistration(std::string_view name, const NameEntry& have, StateKind kind,
                           uint32_t version) const;
  // [id][current key with its length prefix][suffix] into key_scratch_.
  std::string_view ComposeKey(uint8_t id, std::string_view suffix);

  std::unique_ptr<SnapshottableBackend> backend_;
  const KeyGroupRange key_groups_;
  std::map<std::string, NameEntry, std::less<>> names_;  // restored and registered
  std::set<uint8_t> registered_;  // ids whose name-table entries this store has written
  uint8_t next_id_ = 1;
  // The current key, stored as [id placeholder][varint length][key bytes]: the first byte is
  // overwritten with a state id, so composing a key is one copy.
  std::string current_;
  size_t current_key_offset_ = 0;  // where the key bytes start in current_
  int current_group_ = -1;
  std::string key_scratch_;
  std::string value_scratch_;
  std::string aux_scratch_;
  std::string reduce_scratch_;
  std::vector<std::unique_ptr<ReduceFunction>> reduce_fns_;
  std::map<std::string, std::unique_ptr<InternalTimerService>, std::less<>> timers_;
};

// ---- implementation of the templates

template <typename T>
Result<std::optional<T>> ValueState::GetAs() const {
  std::string& buf = store_->aux_scratch_;
  if (!Get(&buf)) return std::optional<T>();
  T v{};
  if (!Codec<T>::Decode(buf, &v)) {
    return Status::DataLoss("value state #" + std::to_string(id_) + " holds a malformed value");
  }
  return std::optional<T>(std::move(v));
}

template <typename T>
Status ValueState::PutAs(const T& v) {
  std::string& buf = store_->aux_scratch_;
  Codec<T>::Encode(v, &buf);
  return Put(buf);
}

template <typename T>
Status ListState::AddAs(const T& v) {
  std::string& buf = store_->aux_scratch_;
  Codec<T>::Encode(v, &buf);
  return Add(buf);
}

template <typename T>
ReduceFunction TypedReduce(std::function<T(const T&, const T&)> combine) {
  return [combine = std::move(combine)](std::string_view acc, std::string_view value,
                                        std::string* out) -> Status {
    T a{}, b{};
    if (!Codec<T>::Decode(acc, &a) || !Codec<T>::Decode(value, &b)) {
      return Status::DataLoss("reducing state holds a malformed value");
    }
    Codec<T>::Encode(combine(a, b), out);
    return Status::Ok();
  };
}

template <typename T>
Status ReducingState::AddAs(const T& v) {
  std::string& buf = store_->aux_scratch_;
  Codec<T>::Encode(v, &buf);
  return Add(buf);
}

template <typename T>
Result<std::optional<T>> ReducingState::GetAs() const {
  std::string& buf = store_->aux_scratch_;
  if (!Get(&buf)) return std::optional<T>();
  T v{};
  if (!Codec<T>::Decode(buf, &v)) {
    return Status::DataLoss("reducing state #" + std::to_string(id_) + " holds a malformed value");
  }
  return std::optional<T>(std::move(v));
}

template <typename In>
Status AggregatingState<In>::Add(const In& in) {
  std::string& acc = store_->value_scratch_;
  const std::string_view key = Key();
  const bool present = Backend().Get(KeyGroup(), key, &acc);
  if (!present) acc.clear();
  WEIR_RETURN_IF_ERROR(fn_->Add(in, present, &acc));
  // Compose the key again: the function may have used other states of the store (which
  // reuse the key buffer), though it must not change the current key.
  return Backend().Put(KeyGroup(), Key(), acc);
}

template <typename In>
bool AggregatingState<In>::Get(std::string* acc) const {
  return Backend().Get(KeyGroup(), Key(), acc);
}

template <typename In>
Status AggregatingState<In>::Clear() {
  return Backend().Delete(KeyGroup(), Key());
}

}  // namespace weir::state
