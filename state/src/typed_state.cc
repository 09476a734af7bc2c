#include "weir/state/typed_state.h"

#include <cstring>
#include <limits>

#include "restore.h"

namespace weir::state {
namespace {

constexpr uint8_t kNameTableId = 0;
constexpr uint8_t kMaxStateId = 250;
constexpr uint8_t kFormatVersion = 1;
constexpr size_t kMaxNameBytes = 200;

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Decodes a varint at *pos; false if it runs past the end or is longer than 5 bytes (lengths
// of keys never need more).
bool GetVarint(std::string_view in, size_t* pos, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift <= 28 && *pos < in.size(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>(in[(*pos)++]);
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

void PutFixed64(uint64_t v, std::string* out) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(b, 8);
}
uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// Big-endian with the sign bit flipped: byte order = numeric order for signed timestamps.
void PutOrderedInt64(int64_t v, std::string* out) {
  const uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}
int64_t GetOrderedInt64(const char* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>(p[i]);
  return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
}

// Splits the rest of a stored key after the id byte: [varint len][key][tail].
bool SplitKey(std::string_view stored, size_t offset, std::string_view* key,
              std::string_view* tail) {
  size_t pos = offset;
  uint64_t len = 0;
  if (!GetVarint(stored, &pos, &len) || len > stored.size() - pos) return false;
  *key = stored.substr(pos, len);
  *tail = stored.substr(pos + len);
  return true;
}

bool ValidKind(uint8_t k) {
  return k >= static_cast<uint8_t>(StateKind::kValue) &&
         k <= static_cast<uint8_t>(StateKind::kTimers);
}

std::string GroupsText(KeyGroupRange r) {
  return "[" + std::to_string(r.first) + ", " + std::to_string(r.last) + "]";
}

}  // namespace

const char* StateKindName(StateKind kind) {
  switch (kind) {
    case StateKind::kValue:
      return "value";
    case StateKind::kList:
      return "list";
    case StateKind::kMap:
      return "map";
    case StateKind::kReducing:
      return "reducing";
    case StateKind::kAggregating:
      return "aggregating";
    case StateKind::kTimers:
      return "timers";
  }
  return "unknown";
}

// ---- codecs

void Codec<int64_t>::Encode(int64_t v, std::string* out) {
  out->clear();
  PutFixed64(static_cast<uint64_t>(v), out);
}
bool Codec<int64_t>::Decode(std::string_view in, int64_t* v) {
  if (in.size() != 8) return false;
  *v = static_cast<int64_t>(GetFixed64(in.data()));
  return true;
}
void Codec<double>::Encode(double v, std::string* out) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  out->clear();
  PutFixed64(bits, out);
}
bool Codec<double>::Decode(std::string_view in, double* v) {
  if (in.size() != 8) return false;
  const uint64_t bits = GetFixed64(in.data());
  std::memcpy(v, &bits, 8);
  return true;
}
void Codec<Value>::Encode(const Value& v, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(v.type));
  switch (v.type) {
    case Type::kNull:
      break;
    case Type::kBool:
      out->push_back(v.b ? 1 : 0);
      break;
    case Type::kInt64:
    case Type::kTimestamp:
      PutFixed64(static_cast<uint64_t>(v.i), out);
      break;
    case Type::kDouble: {
      uint64_t bits;
      std::memcpy(&bits, &v.d, 8);
      PutFixed64(bits, out);
      break;
    }
    case Type::kString:
    case Type::kBytes:
      out->append(v.s);
      break;
  }
}
bool Codec<Value>::Decode(std::string_view in, Value* v) {
  if (in.empty()) return false;
  const auto type = static_cast<Type>(static_cast<uint8_t>(in[0]));
  const std::string_view p = in.substr(1);
  switch (type) {
    case Type::kNull:
      if (!p.empty()) return false;
      v->SetNull();
      return true;
    case Type::kBool:
      if (p.size() != 1) return false;
      v->SetBool(p[0] != 0);
      return true;
    case Type::kInt64:
    case Type::kTimestamp:
    case Type::kDouble: {
      if (p.size() != 8) return false;
      const uint64_t u = GetFixed64(p.data());
      if (type == Type::kDouble) {
        double d;
        std::memcpy(&d, &u, 8);
        v->SetDouble(d);
      } else if (type == Type::kInt64) {
        v->SetInt64(static_cast<int64_t>(u));
      } else {
        v->SetTimestamp(static_cast<int64_t>(u));
      }
      return true;
    }
    case Type::kString:
      v->SetString(p);
      return true;
    case Type::kBytes:
      v->SetBytes(p);
      return true;
  }
  return false;
}

// ---- handles

std::string_view StateHandle::Key(std::string_view suffix) const {
  return store_->ComposeKey(id_, suffix);
}
int StateHandle::KeyGroup() const {
  return store_->current_group_;
}
SnapshottableBackend& StateHandle::Backend() const {
  return *store_->backend_;
}

Status StateHandle::ForEachKeyImpl(
    const std::function<Status(int, std::string_view, std::string_view)>& fn) const {
  const char id = static_cast<char>(id_);
  auto it = store_->backend_->Scan(store_->key_groups_, std::string_view(&id, 1));
  for (; it->Valid(); it->Next()) {
    std::string_view key, tail;
    if (!SplitKey(it->key(), 1, &key, &tail) || !tail.empty()) {
      return Status::DataLoss("malformed stored key of state #" + std::to_string(id_) +
                              " in key group " + std::to_string(it->key_group()));
    }
    WEIR_RETURN_IF_ERROR(fn(it->key_group(), key, it->value()));
  }
  return it->status();
}

namespace {
Status NoCurrentKey() {
  return Status::FailedPrecondition("keyed state used before SetCurrentKey");
}
}  // namespace

bool ValueState::Get(std::string* value) const {
  if (KeyGroup() < 0) return false;
  return Backend().Get(KeyGroup(), Key(), value);
}
Status ValueState::Put(std::string_view value) {
  if (KeyGroup() < 0) return NoCurrentKey();
  return Backend().Put(KeyGroup(), Key(), value);
}
Status ValueState::Clear() {
  if (KeyGroup() < 0) return NoCurrentKey();
  return Backend().Delete(KeyGroup(), Key());
}

Status ListState::Add(std::string_view element) {
  if (KeyGroup() < 0) return NoCurrentKey();
  std::string& buf = store_->value_scratch_;
  buf.clear();
  PutVarint(element.size(), &buf);
  buf.append(element);
  return Backend().Append(KeyGroup(), Key(), buf);
}
Status ListState::AddAll(const std::vector<std::string>& elements) {
  if (KeyGroup() < 0) return NoCurrentKey();
  if (elements.empty()) return Status::Ok();
  std::string& buf = store_->value_scratch_;
  buf.clear();
  for (const std::string& e : elements) {
    PutVarint(e.size(), &buf);
    buf.append(e);
  }
  return Backend().Append(KeyGroup(), Key(), buf);
}
Status ListState::Update(const std::vector<std::string>& elements) {
  if (KeyGroup() < 0) return NoCurrentKey();
  if (elements.empty()) return Clear();
  std::string& buf = store_->value_scratch_;
  buf.clear();
  for (const std::string& e : elements) {
    PutVarint(e.size(), &buf);
    buf.append(e);
  }
  // A Put replaces the value and any pending merge operands.
  return Backend().Put(KeyGroup(), Key(), buf);
}
Status ListState::ForEach(const std::function<Status(std::string_view)>& fn) const {
  if (KeyGroup() < 0) return Status::Ok();
  // A private copy: `fn` may use the store's scratch buffers.
  std::string data;
  if (!Backend().Get(KeyGroup(), Key(), &data)) return Status::Ok();
  size_t pos = 0;
  while (pos < data.size()) {
    uint64_t len = 0;
    if (!GetVarint(data, &pos, &len) || len > data.size() - pos) {
      return Status::DataLoss("list state #" + std::to_string(id_) +
                              " holds a malformed list for a key in key group " +
                              std::to_string(KeyGroup()));
    }
    WEIR_RETURN_IF_ERROR(fn(std::string_view(data).substr(pos, len)));
    pos += len;
  }
  return Status::Ok();
}
Status ListState::Get(std::vector<std::string>* out) const {
  out->clear();
  return ForEach([out](std::string_view e) {
    out->emplace_back(e);
    return Status::Ok();
  });
}
bool ListState::IsEmpty() const {
  if (KeyGroup() < 0) return true;
  return !Backend().Get(KeyGroup(), Key(), &store_->value_scratch_);
}
Status ListState::Clear() {
  if (KeyGroup() < 0) return NoCurrentKey();
  return Backend().Delete(KeyGroup(), Key());
}

bool MapState::Get(std::string_view user_key, std::string* value) const {
  if (KeyGroup() < 0) return false;
  return Backend().Get(KeyGroup(), Key(user_key), value);
}
bool MapState::Contains(std::string_view user_key) const {
  return Get(user_key, &store_->value_scratch_);
}
Status MapState::Put(std::string_view user_key, std::string_view value) {
  if (KeyGroup() < 0) return NoCurrentKey();
  return Backend().Put(KeyGroup(), Key(user_key), value);
}
Status MapState::Remove(std::string_view user_key) {
  if (KeyGroup() < 0) return NoCurrentKey();
  return Backend().Delete(KeyGroup(), Key(user_key));
}
MapState::Iterator MapState::Iterate() const {
  Iterator out;
  if (KeyGroup() < 0) return out;
  const std::string_view prefix = Key();
  out.prefix_len_ = prefix.size();
  out.it_ = Backend().Scan(KeyGroupRange{KeyGroup(), KeyGroup()}, prefix);
  return out;
}
bool MapState::IsEmpty() const {
  return !Iterate().Valid();
}
Status MapState::Clear() {
  return RemovePrefix({});
}
Status MapState::RemovePrefix(std::string_view user_key_prefix) {
  if (KeyGroup() < 0) return NoCurrentKey();
  return Backend().DeletePrefix(KeyGroup(), Key(user_key_prefix));
}
Status MapState::ForEachEntry(const std::function<Status(int, std::string_view, std::string_view,
                                                         std::string_view)>& fn) const {
  const char id = static_cast<char>(id_);
  auto it = store_->backend_->Scan(store_->key_groups_, std::string_view(&id, 1));
  for (; it->Valid(); it->Next()) {
    std::string_view key, user_key;
    if (!SplitKey(it->key(), 1, &key, &user_key)) {
      return Status::DataLoss("malformed stored key of map state #" + std::to_string(id_) +
                              " in key group " + std::to_string(it->key_group()));
    }
    WEIR_RETURN_IF_ERROR(fn(it->key_group(), key, user_key, it->value()));
  }
  return it->status();
}

Status ReducingState::Add(std::string_view value) {
  if (KeyGroup() < 0) return NoCurrentKey();
  std::string& acc = store_->value_scratch_;
  if (!Backend().Get(KeyGroup(), Key(), &acc)) return Backend().Put(KeyGroup(), Key(), value);
  std::string& out = store_->reduce_scratch_;
  out.clear();
  WEIR_RETURN_IF_ERROR((*fn_)(acc, value, &out));
  return Backend().Put(KeyGroup(), Key(), out);
}
bool ReducingState::Get(std::string* value) const {
  if (KeyGroup() < 0) return false;
  return Backend().Get(KeyGroup(), Key(), value);
}
Status ReducingState::Clear() {
  if (KeyGroup() < 0) return NoCurrentKey();
  return Backend().Delete(KeyGroup(), Key());
}

// ---- timers

void InternalTimerService::TimerKey(uint8_t id, int64_t timestamp, std::string_view key,
                                    std::string_view ns, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(id));
  PutOrderedInt64(timestamp, out);
  PutVarint(key.size(), out);
  out->append(key);
  out->append(ns);
}

Status InternalTimerService::Load(Queue& q) {
  const char id = static_cast<char>(q.id);
  auto it = store_->backend_->Scan(store_->key_groups_, std::string_view(&id, 1));
  for (; it->Valid(); it->Next()) {
    const std::string_view stored = it->key();
    std::string_view key, ns;
    if (stored.size() < 1 + 8 + 1 || !SplitKey(stored, 1 + 8, &key, &ns)) {
      return Status::DataLoss("malformed stored timer in key group " +
                              std::to_string(it->key_group()));
    }
    q.timers.insert(Entry{GetOrderedInt64(stored.data() + 1), it->key_group(), std::string(key),
                          std::string(ns)});
  }
  return it->status();
}

Status InternalTimerService::Register(Queue& q, int64_t timestamp, std::string_view ns) {
  if (store_->current_group_ < 0) return NoCurrentKey();
  const Ref ref{timestamp, store_->current_group_, store_->current_key(), ns};
  auto it = q.timers.lower_bound(ref);
  if (it != q.timers.end() && !Less()(ref, *it)) return Status::Ok();  // already registered
  TimerKey(q.id, timestamp, ref.key, ns, &scratch_);
  WEIR_RETURN_IF_ERROR(store_->backend_->Put(ref.key_group, scratch_, {}));
  q.timers.insert(it, Entry{timestamp, ref.key_group, std::string(ref.key), std::string(ns)});
  return Status::Ok();
}

Status InternalTimerService::Delete(Queue& q, int64_t timestamp, std::string_view ns) {
  if (store_->current_group_ < 0) return NoCurrentKey();
  const Ref ref{timestamp, store_->current_group_, store_->current_key(), ns};
  auto it = q.timers.find(ref);
  if (it == q.timers.end()) return Status::Ok();
  TimerKey(q.id, timestamp, ref.key, ns, &scratch_);
  WEIR_RETURN_IF_ERROR(store_->backend_->Delete(ref.key_group, scratch_));
  q.timers.erase(it);
  return Status::Ok();
}

Status InternalTimerService::Advance(Queue& q, int64_t until, const FireFn& fire) {
  while (!q.timers.empty() && q.timers.begin()->timestamp <= until) {
    // Taken out of the index first: the callback may register or delete timers.
    auto node = q.timers.extract(q.timers.begin());
    const Entry& e = node.value();
    TimerKey(q.id, e.timestamp, e.key, e.ns, &scratch_);
    WEIR_RETURN_IF_ERROR(store_->backend_->Delete(e.key_group, scratch_));
    WEIR_RETURN_IF_ERROR(store_->SetCurrentKey(e.key_group, e.key));
    WEIR_RETURN_IF_ERROR(fire(Timer{e.timestamp, e.key_group, e.key, e.ns}));
  }
  return Status::Ok();
}

Status InternalTimerService::RegisterEventTimeTimer(int64_t timestamp, std::string_view ns) {
  return Register(event_, timestamp, ns);
}
Status InternalTimerService::DeleteEventTimeTimer(int64_t timestamp, std::string_view ns) {
  return Delete(event_, timestamp, ns);
}
Status InternalTimerService::RegisterProcessingTimeTimer(int64_t timestamp, std::string_view ns) {
  return Register(processing_, timestamp, ns);
}
Status InternalTimerService::DeleteProcessingTimeTimer(int64_t timestamp, std::string_view ns) {
  return Delete(processing_, timestamp, ns);
}
Status InternalTimerService::AdvanceWatermark(int64_t watermark, const FireFn& fire) {
  if (watermark > watermark_) watermark_ = watermark;
  // With the current (maximal) watermark: timers registered at or before it since the last
  // call fire now.
  return Advance(event_, watermark_, fire);
}
Status InternalTimerService::AdvanceProcessingTime(int64_t now_ms, const FireFn& fire) {
  return Advance(processing_, now_ms, fire);
}
void InternalTimerService::ForEachEventTimeTimer(
    const std::function<void(const Timer& timer)>& fn) const {
  for (const Entry& e : event_.timers) fn(Timer{e.timestamp, e.key_group, e.key, e.ns});
}
std::optional<int64_t> InternalTimerService::next_event_time() const {
  if (event_.timers.empty()) return std::nullopt;
  return event_.timers.begin()->timestamp;
}
std::optional<int64_t> InternalTimerService::next_processing_time() const {
  if (processing_.timers.empty()) return std::nullopt;
  return processing_.timers.begin()->timestamp;
}

// ---- the store

KeyedStateStore::KeyedStateStore(std::unique_ptr<SnapshottableBackend> backend,
                                 KeyGroupRange key_groups)
    : backend_(std::move(backend)), key_groups_(key_groups) {
  current_.assign(2, '\0');  // [id][varint 0]: the empty key
  current_key_offset_ = 2;
}

Result<std::unique_ptr<KeyedStateStore>> KeyedStateStore::Create(
    std::unique_ptr<SnapshottableBackend> backend, KeyGroupRange key_groups) {
  if (backend == nullptr) return Status::InvalidArgument("keyed state store needs a backend");
  if (key_groups.size() == 0 || key_groups.first < 0 || key_groups.last > 0x7fff) {
    return Status::InvalidArgument("keyed state store: bad key-group range " +
                                   GroupsText(key_groups));
  }
  std::unique_ptr<KeyedStateStore> store(new KeyedStateStore(std::move(backend), key_groups));
  WEIR_RETURN_IF_ERROR(store->LoadNameTable());
  return store;
}

Status KeyedStateStore::LoadNameTable() {
  const char table = static_cast<char>(kNameTableId);
  std::map<uint8_t, std::string> by_id;
  auto it = backend_->Scan(key_groups_, std::string_view(&table, 1));
  for (; it->Valid(); it->Next()) {
    const std::string name(it->key().substr(1));
    const std::string_view v = it->value();
    const std::string where = "in key group " + std::to_string(it->key_group());
    if (v.size() < 3 || static_cast<uint8_t>(v[0]) != kFormatVersion) {
      return Status::DataLoss(
          "restored keyed state has an unknown name-table entry for '" + name + "' " + where +
          " (format version " +
          (v.empty() ? std::string("?") : std::to_string(static_cast<uint8_t>(v[0]))) +
          "; this build reads " + std::to_string(kFormatVersion) + ")");
    }
    const auto id = static_cast<uint8_t>(v[1]);
    const auto kind = static_cast<uint8_t>(v[2]);
    // The value version: absent in entries of version 1 (and in all written before versions).
    uint64_t version = 1;
    size_t pos_v = 3;
    if (v.size() > 3 && (!GetVarint(v, &pos_v, &version) || pos_v != v.size() || version < 2 ||
                         version > std::numeric_limits<uint32_t>::max())) {
      version = 0;
    }
    if (id == kNameTableId || id > kMaxStateId || !ValidKind(kind) || version == 0) {
      return Status::DataLoss("restored keyed state has a malformed name-table entry for '" + name +
                              "' " + where);
    }
    const NameEntry entry{id, static_cast<StateKind>(kind), static_cast<uint32_t>(version)};
    auto [pos, inserted] = names_.try_emplace(name, entry);
    if (!inserted && (pos->second.id != id || pos->second.kind != entry.kind ||
                      pos->second.version != entry.version)) {
      return Status::DataLoss("restored keyed state is inconsistent: state '" + name + "' is " +
                              StateKindName(pos->second.kind) + " #" +
                              std::to_string(pos->second.id) + " v" +
                              std::to_string(pos->second.version) + " in one snapshot and " +
                              StateKindName(entry.kind) + " #" + std::to_string(id) + " v" +
                              std::to_string(entry.version) + " " + where +
                              " (the old subtasks registered their states differently)");
    }
    auto [id_pos, id_new] = by_id.try_emplace(id, name);
    if (!id_new && id_pos->second != name) {
      return Status::DataLoss("restored keyed state is inconsistent: states '" + id_pos->second +
                              "' and '" + name + "' both have id " + std::to_string(id) + " " +
                              where);
    }
    if (id >= next_id_) next_id_ = static_cast<uint8_t>(id + 1);
  }
  WEIR_RETURN_IF_ERROR(it->status());
  if (names_.empty()) {
    auto any = backend_->Scan(key_groups_, {});
    if (any->Valid()) {
      return Status::FailedPrecondition(
          "restored keyed state for key groups " + GroupsText(key_groups_) +
          " has no state name table: it was written by a Weir version without typed state "
          "and cannot be read by this one");
    }
    WEIR_RETURN_IF_ERROR(any->status());
  }
  return Status::Ok();
}

Status KeyedStateStore::CheckRegistration(std::string_view name, const NameEntry& have,
                                          StateKind kind, uint32_t version) const {
  if (have.kind != kind) {
    return Status::InvalidArgument("state '" + std::string(name) + "' is a " +
                                   StateKindName(have.kind) + " state; it cannot be used as a " +
                                   StateKindName(kind) + " state");
  }
  if (have.version == version) return Status::Ok();
  if (registered_.count(have.id) > 0) {
    return Status::InvalidArgument(
        "state '" + std::string(name) + "' is registered with value version " +
        std::to_string(have.version) + "; it cannot be registered again with version " +
        std::to_string(version));
  }
  // Restored: the operator would misread every value.
  return Status::FailedPrecondition(
      "restored keyed state '" + std::string(name) + "' has values of version " +
      std::to_string(have.version) + ", but this operator reads version " +
      std::to_string(version) + " and has no conversion: restore a snapshot written with version " +
      std::to_string(version) + ", or start without this state");
}

Result<uint8_t> KeyedStateStore::Register(std::string_view name, StateKind kind, bool internal,
                                          uint32_t version) {
  if (version == 0) {
    return Status::InvalidArgument("state '" + std::string(name) + "': versions start at 1");
  }
  if (name.empty() || name.size() > kMaxNameBytes) {
    return Status::InvalidArgument("state name '" + std::string(name) +
                                   "' must have 1 to 200 bytes");
  }
  if (!internal && name.front() == '_') {
    return Status::InvalidArgument("state name '" + std::string(name) +
                                   "' is reserved (names starting with '_' are internal)");
  }
  auto it = names_.find(name);
  if (it != names_.end()) {
    WEIR_RETURN_IF_ERROR(CheckRegistration(name, it->second, kind, version));
    if (registered_.count(it->second.id) > 0) return it->second.id;
  } else {
    if (next_id_ > kMaxStateId) {
      return Status::ResourceExhausted("too many keyed states in one operator (at most " +
                                       std::to_string(kMaxStateId) + "); cannot add '" +
                                       std::string(name) + "'");
    }
    it = names_.emplace(std::string(name), NameEntry{next_id_++, kind, version}).first;
  }
  // Into every key group we own, so that the entry moves with any of them on rescale (also
  // those that a restore brought without it).
  std::string key;
  key.push_back(static_cast<char>(kNameTableId));
  key.append(name);
  // Version 1 is not written: such entries stay as they were before versions, readable by
  // older builds.
  std::string value = {static_cast<char>(kFormatVersion), static_cast<char>(it->second.id),
                       static_cast<char>(kind)};
  if (version != 1) PutVarint(version, &value);
  for (int kg = key_groups_.first; kg <= key_groups_.last; ++kg) {
    WEIR_RETURN_IF_ERROR(backend_->Put(kg, key, value));
  }
  registered_.insert(it->second.id);
  // Whole values read and written by key: cacheable. (Map states: GetMapState decides.)
  if (kind == StateKind::kValue || kind == StateKind::kReducing ||
      kind == StateKind::kAggregating) {
    backend_->HintPointLookups(it->second.id);
  }
  return it->second.id;
}

Status KeyedStateStore::SetCurrentKey(int key_group, std::string_view key) {
  if (!key_groups_.Contains(key_group)) {
    return Status::InvalidArgument(
        "key group " + std::to_string(key_group) + " is not owned by this subtask (it owns " +
        GroupsText(key_groups_) + "): is the input hash-partitioned by the operator's key?");
  }
  current_group_ = key_group;
  current_.resize(1);  // keeps the capacity
  PutVarint(key.size(), &current_);
  current_key_offset_ = current_.size();
  current_.append(key.data(), key.size());
  return Status::Ok();
}

std::string_view KeyedStateStore::ComposeKey(uint8_t id, std::string_view suffix) {
  current_[0] = static_cast<char>(id);
  if (suffix.empty()) return current_;
  key_scratch_.assign(current_);
  key_scratch_.append(suffix.data(), suffix.size());
  return key_scratch_;
}

Result<ValueState> KeyedStateStore::GetValueState(std::string_view name, uint32_t version) {
  WEIR_ASSIGN_OR_RETURN(uint8_t id, Register(name, StateKind::kValue, false, version));
  return ValueState(this, id);
}
Result<ListState> KeyedStateStore::GetListState(std::string_view name, uint32_t version) {
  WEIR_ASSIGN_OR_RETURN(uint8_t id, Register(name, StateKind::kList, false, version));
  return ListState(this, id);
}
Result<MapState> KeyedStateStore::GetMapState(std::string_view name, uint32_t version,
                                              Caching caching) {
  WEIR_ASSIGN_OR_RETURN(uint8_t id, Register(name, StateKind::kMap, false, version));
  // Entries read and written by key (a map's iteration is a scan, which the cache writes
  // through before).
  if (caching == Caching::kCached) backend_->HintPointLookups(id);
  return MapState(this, id);
}
Result<ReducingState> KeyedStateStore::GetReducingState(std::string_view name, ReduceFunction fn,
                                                        uint32_t version) {
  if (!fn)
    return Status::InvalidArgument("reducing state '" + std::string(name) + "' needs a function");
  WEIR_ASSIGN_OR_RETURN(uint8_t id, Register(name, StateKind::kReducing, false, version));
  reduce_fns_.push_back(std::make_unique<ReduceFunction>(std::move(fn)));
  return ReducingState(this, id, reduce_fns_.back().get());
}

Result<InternalTimerService*> KeyedStateStore::GetTimerService(std::string_view name) {
  auto it = timers_.find(name);
  if (it != timers_.end()) return it->second.get();
  if (name.empty() || name.size() > 100) {
    return Status::InvalidArgument("timer service name '" + std::string(name) +
                                   "' must have 1 to 100 bytes");
  }
  std::unique_ptr<InternalTimerService> service(new InternalTimerService(this));
  const std::string base = "_timers/" + std::string(name);
  WEIR_ASSIGN_OR_RETURN(service->event_.id, Register(base + "/event", StateKind::kTimers, true));
  WEIR_ASSIGN_OR_RETURN(service->processing_.id,
                        Register(base + "/processing", StateKind::kTimers, true));
  WEIR_RETURN_IF_ERROR(service->Load(service->event_));
  WEIR_RETURN_IF_ERROR(service->Load(service->processing_));
  InternalTimerService* raw = service.get();
  timers_.emplace(std::string(name), std::move(service));
  return raw;
}

std::map<std::string, uint8_t> KeyedStateStore::StateIds() const {
  std::map<std::string, uint8_t> out;
  for (const auto& [name, e] : names_) out.emplace(name, e.id);
  return out;
}

}  // namespace weir::state
