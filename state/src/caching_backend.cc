#include "weir/state/caching_backend.h"

#include <array>
#include <list>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "restore.h"  // KeyGroupOf

namespace weir::state {
namespace {

// What an entry costs besides its key and value bytes: the hash node, its bucket, the LRU list
// node, the ordered index's node and a dirty-list slot, rounded up.
constexpr size_t kEntryOverhead = 192;
// Admission: lookups are counted in windows. A window that evicted and where fewer than 1 in
// kMinHitRate lookups hit (keys spread far wider than the cache, e.g. uniformly random over
// millions) turns admission off: new keys then go straight to the backend, as without a cache, and
// the cache stops costing inserts, evictions and CPU-cache room for nothing; cached keys are still
// served. Every kProbeEvery-th window admits again, to notice hot keys coming back.
constexpr int64_t kWindow = 1 << 16;
constexpr int64_t kMinHitRate = 8;
constexpr int64_t kProbeEvery = 16;

struct Entry {
  std::string value;
  bool present = false;  // false: known absent (deleted, or missing when read)
  bool dirty = false;    // differs from the backend
  size_t dirty_pos = 0;  // while dirty: its index in the dirty list
  std::list<const std::string*>::iterator lru;
};

struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

class CachingBackend : public SnapshottableBackend {
 public:
  CachingBackend(std::unique_ptr<SnapshottableBackend> inner, size_t capacity)
      : inner_(std::move(inner)), capacity_(capacity), low_water_(capacity - capacity / 8) {
    cacheable_.fill(false);
  }

  bool Get(int key_group, std::string_view key, std::string* value) override {
    if (!Cacheable(key)) return inner_->Get(key_group, key, value);
    Compose(key_group, key);
    auto it = map_.find(std::string_view(scratch_));
    if (it != map_.end()) {
      Count(true);
      Touch(it->second);
      if (!it->second.present) return false;
      value->assign(it->second.value);
      return true;
    }
    Count(false);
    const bool found = inner_->Get(key_group, key, value);
    if (admitting_) {
      Insert(found ? std::string_view(*value) : std::string_view(), found, /*dirty=*/false);
    }
    return found;
  }

  Status Put(int key_group, std::string_view key, std::string_view value) override {
    if (!Cacheable(key)) return inner_->Put(key_group, key, value);
    return Set(key_group, key, value, true);
  }

  Status Delete(int key_group, std::string_view key) override {
    if (!Cacheable(key)) return inner_->Delete(key_group, key);
    return Set(key_group, key, {}, false);
  }

  Status Append(int key_group, std::string_view key, std::string_view bytes) override {
    if (Cacheable(key)) {
      Compose(key_group, key);
      auto it = map_.find(std::string_view(scratch_));
      if (it != map_.end()) {
        Entry& e = it->second;
        const size_t before = e.value.capacity();
        if (e.present) {
          e.value.append(bytes);
        } else {
          e.value.assign(bytes);
        }
        e.present = true;
        Changed(e, before);
        return MaybeEvict();
      }
    }
    return inner_->Append(key_group, key, bytes);  // the backend has the whole value
  }

  // Write: the base class's, one Put or Delete each, through the cache.

  std::unique_ptr<StateIterator> Scan(KeyGroupRange groups, std::string_view prefix) override {
    if (Overlaps(prefix)) {
      Status s = FlushAll();
      if (!s.ok()) return std::make_unique<FailedIterator>(std::move(s));
    }
    return inner_->Scan(groups, prefix);
  }

  Status DeletePrefix(int key_group, std::string_view prefix) override {
    if (Overlaps(prefix)) {
      // Written through, and the cached entries of the range dropped (found in key order, so a
      // map state's Clear of one key costs what that key has cached).
      WEIR_RETURN_IF_ERROR(FlushAll());
      Compose(key_group, prefix);
      const std::string_view p(scratch_);
      for (auto o = ordered_.lower_bound(p); o != ordered_.end() && o->substr(0, p.size()) == p;) {
        const std::string_view key = *o++;  // Erase removes it from ordered_
        Erase(map_.find(key));
      }
    }
    return inner_->DeletePrefix(key_group, prefix);
  }

  Status ForEach(
      const std::function<Status(int, std::string_view, std::string_view)>& fn) override {
    WEIR_RETURN_IF_ERROR(FlushAll());
    return inner_->ForEach(fn);
  }

  size_t ApproximateCount() const override { return inner_->ApproximateCount(); }
  BackendStats Stats() const override { return inner_->Stats(); }

  void HintPointLookups(uint8_t first_byte) override {
    cacheable_[first_byte] = true;
    inner_->HintPointLookups(first_byte);
  }

  Result<std::unique_ptr<SnapshotUpload>> Snapshot(int64_t checkpoint_id) override {
    WEIR_RETURN_IF_ERROR(FlushAll());
    return inner_->Snapshot(checkpoint_id);
  }
  void NotifyCheckpointComplete(int64_t id) override { inner_->NotifyCheckpointComplete(id); }
  void NotifyCheckpointAborted(int64_t id) override { inner_->NotifyCheckpointAborted(id); }

  CacheStats cache_stats() const {
    CacheStats s = stats_;
    s.bytes = static_cast<int64_t>(bytes_);
    s.entries = static_cast<int64_t>(map_.size());
    s.dirty = static_cast<int64_t>(dirty_list_.size());
    s.admitting = admitting_;
    return s;
  }

 private:
  using Map = std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>>;

  class FailedIterator : public StateIterator {
   public:
    explicit FailedIterator(Status s) : s_(std::move(s)) {}
    bool Valid() const override { return false; }
    void Next() override {}
    int key_group() const override { return -1; }
    std::string_view key() const override { return {}; }
    std::string_view value() const override { return {}; }
    Status status() const override { return s_; }

   private:
    Status s_;
  };

  bool Cacheable(std::string_view key) const {
    return !key.empty() && cacheable_[static_cast<uint8_t>(key.front())];
  }
  // Whether a prefix operation may cover cached keys.
  bool Overlaps(std::string_view prefix) const { return prefix.empty() || Cacheable(prefix); }

  void Compose(int key_group, std::string_view key) { ComposeKey(key_group, key, &scratch_); }

  void Touch(Entry& e) { lru_.splice(lru_.begin(), lru_, e.lru); }

  // The dirty list makes a flush cost the dirty entries, not the whole cache: map states flush
  // before every scan of a key.
  void MarkDirty(Entry& e) {
    if (e.dirty) return;
    e.dirty = true;
    e.dirty_pos = dirty_list_.size();
    dirty_list_.push_back({*e.lru, &e});
  }
  void MarkClean(Entry& e) {
    if (!e.dirty) return;
    e.dirty = false;
    const size_t pos = e.dirty_pos;
    dirty_list_[pos] = dirty_list_.back();
    dirty_list_[pos].second->dirty_pos = pos;
    dirty_list_.pop_back();
  }

  // What an entry is counted as against the bound.
  static size_t Cost(const std::string& key, const Entry& e) {
    return key.capacity() + e.value.capacity() + kEntryOverhead;
  }

  // A cached entry's value changed (its capacity was `old_capacity`): dirty, recently used.
  void Changed(Entry& e, size_t old_capacity) {
    MarkDirty(e);
    Touch(e);
    bytes_ += e.value.capacity();  // capacities never shrink: this never wraps
    bytes_ -= old_capacity;
  }

  // Inserts scratch_ (absent from the map).
  void Insert(std::string_view value, bool present, bool dirty) {
    auto [it, inserted] = map_.emplace(scratch_, Entry{});
    Entry& e = it->second;
    e.value.assign(value);
    e.present = present;
    lru_.push_front(&it->first);
    e.lru = lru_.begin();
    ordered_.insert(std::string_view(it->first));
    if (dirty) MarkDirty(e);
    bytes_ += Cost(it->first, e);
  }

  // One lookup, for the admission windows.
  void Count(bool hit) {
    if (hit) {
      ++stats_.hits;
      ++window_hits_;
    } else {
      ++stats_.misses;
    }
    if (++window_lookups_ < kWindow) return;
    const bool good = window_hits_ * kMinHitRate >= window_lookups_;
    window_hits_ = window_lookups_ = 0;
    if (admitting_) {
      // A cold cache misses while it fills: only a full one (evicting) can be thrashing.
      admitting_ = good || stats_.evictions == evictions_at_window_;
      evictions_at_window_ = stats_.evictions;
      skipped_windows_ = 0;
    } else if (++skipped_windows_ % kProbeEvery == 0) {
      admitting_ = true;  // a probe window: stays on if it does better
    }
  }

  Status Set(int key_group, std::string_view key, std::string_view value, bool present) {
    if (!error_.ok()) return error_;
    Compose(key_group, key);
    auto it = map_.find(std::string_view(scratch_));
    if (it == map_.end()) {
      if (!admitting_) {
        return present ? inner_->Put(key_group, key, value) : inner_->Delete(key_group, key);
      }
      Insert(value, present, /*dirty=*/true);
    } else {
      Entry& e = it->second;
      const size_t before = e.value.capacity();
      e.value.assign(value);
      e.present = present;
      Changed(e, before);
    }
    return MaybeEvict();
  }

  Map::iterator Erase(Map::iterator it) {
    Entry& e = it->second;
    MarkClean(e);
    bytes_ -= Cost(it->first, e);
    lru_.erase(e.lru);
    ordered_.erase(std::string_view(it->first));
    return map_.erase(it);
  }

  static Change ChangeOf(const std::string& composed, const Entry& e) {
    return Change{KeyGroupOf(composed), std::string_view(composed).substr(2), e.value, !e.present};
  }

  // Over the bound: the least recently used entries go until the cache is at its low-water
  // mark; the dirty ones among them are written first, in one batch.
  Status MaybeEvict() {
    if (bytes_ <= capacity_) return Status::Ok();
    changes_.clear();
    victims_.clear();
    size_t freed = 0;
    for (auto l = lru_.rbegin(); l != lru_.rend() && bytes_ - freed > low_water_; ++l) {
      auto it = map_.find(std::string_view(**l));
      freed += Cost(it->first, it->second);
      if (it->second.dirty) changes_.push_back(ChangeOf(it->first, it->second));
      victims_.push_back(it);
    }
    if (!changes_.empty()) {
      ++stats_.flushes;
      Status s = inner_->Write(changes_);
      changes_.clear();
      if (!s.ok()) {
        error_ = s;  // nothing is dropped: the task fails and restores its last checkpoint
        return s;
      }
    }
    for (auto it : victims_) Erase(it);
    stats_.evictions += static_cast<int64_t>(victims_.size());
    victims_.clear();
    return Status::Ok();
  }

  // Writes every dirty entry in one batch; they stay cached, clean.
  Status FlushAll() {
    if (!error_.ok()) return error_;
    if (dirty_list_.empty()) return Status::Ok();
    changes_.clear();
    for (const auto& [key, e] : dirty_list_) changes_.push_back(ChangeOf(*key, *e));
    ++stats_.flushes;
    Status s = inner_->Write(changes_);
    changes_.clear();
    if (!s.ok()) {
      error_ = s;
      return s;
    }
    for (const auto& d : dirty_list_) d.second->dirty = false;
    dirty_list_.clear();
    return Status::Ok();
  }

  std::unique_ptr<SnapshottableBackend> inner_;
  const size_t capacity_;
  const size_t low_water_;
  std::array<bool, 256> cacheable_;
  Map map_;
  std::list<const std::string*> lru_;   // most recently used first
  std::set<std::string_view> ordered_;  // the keys of map_, in order, for prefix deletes
  // The dirty entries (Entry::dirty_pos indexes this), with their keys.
  std::vector<std::pair<const std::string*, Entry*>> dirty_list_;
  size_t bytes_ = 0;
  std::string scratch_;
  std::vector<Change> changes_;         // reused
  std::vector<Map::iterator> victims_;  // reused
  CacheStats stats_;
  Status error_;
  bool admitting_ = true;
  int64_t window_lookups_ = 0;
  int64_t window_hits_ = 0;
  int64_t skipped_windows_ = 0;
  int64_t evictions_at_window_ = 0;
};

}  // namespace

std::unique_ptr<SnapshottableBackend> NewCachingBackend(std::unique_ptr<SnapshottableBackend> inner,
                                                        size_t capacity_bytes) {
  if (capacity_bytes == 0 || inner == nullptr) return inner;
  return std::make_unique<CachingBackend>(std::move(inner), capacity_bytes);
}

bool GetCacheStats(const KeyedStateBackend& backend, CacheStats* out) {
  const auto* c = dynamic_cast<const CachingBackend*>(&backend);
  if (c == nullptr) return false;
  *out = c->cache_stats();
  return true;
}

}  // namespace weir::state
