#include "weir/operator.h"

namespace weir {

void OperatorRegistry::Register(std::string type, std::unique_ptr<OperatorFactory> factory) {
  factories_[std::move(type)] = std::move(factory);
}

const OperatorFactory* OperatorRegistry::Find(const std::string& type) const {
  auto it = factories_.find(type);
  return it == factories_.end() ? nullptr : it->second.get();
}

std::string OperatorRegistry::TypeNames() const {
  std::string out;
  for (const auto& [name, f] : factories_) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace weir
