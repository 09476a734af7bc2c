#include "weir/connectors.h"
#include "weir/operator.h"

namespace weir {

void RegisterMapFilterProject(OperatorRegistry& r);
void RegisterKeyedAggregate(OperatorRegistry& r);
void RegisterWindowAggregate(OperatorRegistry& r);

const OperatorRegistry& BuiltinOperators() {
  static const OperatorRegistry* registry = [] {
    auto* r = new OperatorRegistry();
    RegisterMapFilterProject(*r);
    RegisterKeyedAggregate(*r);
    RegisterWindowAggregate(*r);
    RegisterConnectors(*r);
    return r;
  }();
  return *registry;
}

}  // namespace weir
