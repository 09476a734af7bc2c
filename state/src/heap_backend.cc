#include <unordered_map>

#include "weir/state/keyed_state.h"

namespace weir::state {

void ComposeKey(int key_group, std::string_view key, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>((key_group >> 8) & 0xff));
  out->push_back(static_cast<char>(key_group & 0xff));
  out->append(key.data(), key.size());
}

namespace {

class HeapBackend : public KeyedStateBackend {
 public:
  bool Get(int key_group, std::string_view key, std::string* value) override {
    ComposeKey(key_group, key, &scratch_);
    auto it = map_.find(scratch_);
    if (it == map_.end()) return false;
    value->assign(it->second);
    return true;
  }
  Status Put(int key_group, std::string_view key, std::string_view value) override {
    ComposeKey(key_group, key, &scratch_);
    auto it = map_.find(scratch_);
    if (it == map_.end()) {
      map_.emplace(scratch_, std::string(value));
    } else {
      it->second.assign(value.data(), value.size());
    }
    return Status::Ok();
  }
  Status Delete(int key_group, std::string_view key) override {
    ComposeKey(key_group, key, &scratch_);
    map_.erase(scratch_);
    return Status::Ok();
  }
  Status ForEach(const std::function<Status(int, std::string_view, std::string_view)>& fn) override {
    for (const auto& [k, v] : map_) {
      int kg = (static_cast<uint8_t>(k[0]) << 8) | static_cast<uint8_t>(k[1]);
      WEIR_RETURN_IF_ERROR(fn(kg, std::string_view(k).substr(2), v));
    }
    return Status::Ok();
  }
  size_t ApproximateCount() const override { return map_.size(); }

 private:
  std::unordered_map<std::string, std::string> map_;
  std::string scratch_;
};

}  // namespace

std::unique_ptr<KeyedStateBackend> NewHeapBackend() { return std::make_unique<HeapBackend>(); }

}  // namespace weir::state
