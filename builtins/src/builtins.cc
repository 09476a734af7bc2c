#include "weir/builtins.h"

#include "light_operators.h"
#include "weir/kafka.h"
#include "weir/operators.h"

namespace weir {

const OperatorRegistry& BuiltinOperators() {
  static const OperatorRegistry* registry = [] {
    auto* r = new OperatorRegistry();
    RegisterLightOperators(*r);
    RegisterKeyedAggregate(*r);
    RegisterWindowAggregate(*r);
    RegisterDedup(*r);
    RegisterTopN(*r);
    RegisterJoins(*r);
    r->Register("kafka", MakeKafkaSourceFactory());
    r->Register("kafka_sink", MakeKafkaSinkFactory());
    return r;
  }();
  return *registry;
}

}  // namespace weir
