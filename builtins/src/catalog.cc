#include "light_operators.h"
#include "weir/builtins.h"
#include "weir/connectors.h"
#include "weir/kafka.h"
#include "weir/operators.h"

namespace weir {

void RegisterLightOperators(OperatorRegistry& r) {
  RegisterMapFilterProject(r);
  r.Register("parse", MakeParseFactory());
  r.Register("lookup_join", MakeLookupJoinFactory());
  RegisterConnectors(r);
}

const OperatorRegistry& BuiltinCatalog() {
  static const OperatorRegistry* registry = [] {
    auto* r = new OperatorRegistry();
    RegisterLightOperators(*r);
    r->Register("keyed_aggregate", MakeKeyedAggregateSpec());
    r->Register("window_aggregate", MakeWindowAggregateSpec());
    r->Register("dedup", MakeDedupSpec());
    r->Register("top_n", MakeTopNSpec());
    RegisterJoinSpecs(*r);
    r->Register("kafka", MakeKafkaSourceSpec());
    r->Register("kafka_sink", MakeKafkaSinkSpec());
    return r;
  }();
  return *registry;
}

}  // namespace weir
