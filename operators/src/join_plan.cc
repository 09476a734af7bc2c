#include "join_plan.h"

#include "weir/operators.h"

namespace weir {
namespace {

const std::vector<std::string> kInputNames = {"left", "right"};

// `<side>_key:` (required, non-empty, fields of `input`): their indexes.
Result<std::vector<int>> ParseJoinKey(const Config& config, const std::string& side,
                                      const Schema& input) {
  const std::string key = side + "_key";
  WEIR_ASSIGN_OR_RETURN(auto fields, config.GetStringList(key));
  if (fields.empty())
    return Status::InvalidArgument(config.path() + "." + key + ": required, non-empty");
  std::vector<int> idx;
  for (const auto& f : fields) {
    const int i = input.IndexOf(f);
    if (i < 0) {
      return Status::InvalidArgument(config.path() + "." + key + ": unknown field '" + f + "' (" +
                                     side + " input fields: " + input.FieldNames() + ")");
    }
    idx.push_back(i);
  }
  return idx;
}

// `key` (required; default <side>_time): a timestamp or int64 (milliseconds) field of `input`.
Result<int> ParseTimeField(const Config& config, const std::string& side, const Schema& input,
                           std::string key = "") {
  if (key.empty()) key = side + "_time";
  WEIR_ASSIGN_OR_RETURN(std::string f, config.GetString(key));
  const int i = input.IndexOf(f);
  if (i < 0) {
    return Status::InvalidArgument(config.path() + "." + key + ": unknown field '" + f + "' (" +
                                   side + " input fields: " + input.FieldNames() + ")");
  }
  const Type t = input.field(static_cast<size_t>(i)).type;
  if (t != Type::kTimestamp && t != Type::kInt64) {
    return Status::InvalidArgument(config.path() + "." + key + ": field '" + f +
                                   "' must be a timestamp or an integer (milliseconds), not " +
                                   TypeName(t));
  }
  return i;
}

// Output fields: the left input's, then the right input's (AppendRightField's renaming).
Status JoinedSchema(const Config& config, JoinPlan& p) {
  p.output = p.left;
  for (const Field& f : p.right.fields())
    WEIR_RETURN_IF_ERROR(AppendRightField(config, f, p.output));
  if (p.type != JoinType::kWindow) return Status::Ok();
  for (const char* name : {"window_start", "window_end"}) {
    if (p.output.IndexOf(name) >= 0) {
      return Status::InvalidArgument(config.path() + ": input field '" + name +
                                     "' clashes with the output field of the same name");
    }
    p.output.Add(name, Type::kTimestamp);
  }
  return Status::Ok();
}

Status PlanKind(const Config& config, JoinPlan& p) {
  switch (p.type) {
    case JoinType::kRegular: {
      WEIR_RETURN_IF_ERROR(config.CheckKeys({"left_key", "right_key", "kind", "state_ttl"}));
      WEIR_ASSIGN_OR_RETURN(std::string kind, config.GetString("kind", std::string("inner")));
      if (kind != "inner" && kind != "left") {
        return Status::InvalidArgument(config.path() + ".kind: expected inner or left, got '" +
                                       kind + "'");
      }
      p.left_outer = kind == "left";
      WEIR_ASSIGN_OR_RETURN(p.ttl_ms, config.GetDurationMs("state_ttl"));
      if (p.ttl_ms <= 0) {
        return Status::InvalidArgument(config.path() +
                                       ".state_ttl: must be positive (it bounds the state)");
      }
      return Status::Ok();
    }
    case JoinType::kInterval: {
      WEIR_RETURN_IF_ERROR(config.CheckKeys(
          {"left_key", "right_key", "left_time", "right_time", "lower", "upper", "upper_field"}));
      WEIR_ASSIGN_OR_RETURN(p.lower_ms, config.GetSignedDurationMs("lower"));
      if (config.Has("upper_field")) {
        // A per-row upper bound: l.time <= r.<upper_field> (e.g. an auction's expires).
        if (config.Has("upper")) {
          return Status::InvalidArgument(config.path() +
                                         ".upper_field: give upper or upper_field, not both");
        }
        WEIR_ASSIGN_OR_RETURN(p.right_upper,
                              ParseTimeField(config, "right", p.right, "upper_field"));
        break;
      }
      WEIR_ASSIGN_OR_RETURN(p.upper_ms, config.GetSignedDurationMs("upper"));
      if (p.lower_ms > p.upper_ms) {
        return Status::InvalidArgument(config.path() + ".lower: must not exceed upper (" +
                                       std::to_string(p.lower_ms) + " ms > " +
                                       std::to_string(p.upper_ms) + " ms)");
      }
      break;
    }
    case JoinType::kWindow: {
      WEIR_RETURN_IF_ERROR(
          config.CheckKeys({"left_key", "right_key", "left_time", "right_time", "size", "slide"}));
      WEIR_ASSIGN_OR_RETURN(p.size_ms, config.GetDurationMs("size"));
      WEIR_ASSIGN_OR_RETURN(p.slide_ms, config.GetDurationMs("slide", p.size_ms));
      if (p.size_ms <= 0) return Status::InvalidArgument(config.path() + ".size: must be positive");
      if (p.slide_ms <= 0 || p.slide_ms > p.size_ms) {
        return Status::InvalidArgument(config.path() + ".slide: must be positive and at most size");
      }
      break;
    }
  }
  WEIR_ASSIGN_OR_RETURN(p.left_time, ParseTimeField(config, "left", p.left));
  WEIR_ASSIGN_OR_RETURN(p.right_time, ParseTimeField(config, "right", p.right));
  return Status::Ok();
}

}  // namespace

Status AppendRightField(const Config& config, const Field& field, Schema& out) {
  std::string name = field.name;
  if (out.IndexOf(name) >= 0) name = "right_" + name;
  if (out.IndexOf(name) >= 0) {
    return Status::InvalidArgument(config.path() + ": right field '" + field.name +
                                   "' and its renaming '" + name +
                                   "' both clash with left fields (project one side first)");
  }
  out.Add(std::move(name), field.type);
  return Status::Ok();
}

Result<JoinPlan> PlanJoin(JoinType type, const Config& config, const std::vector<Schema>& inputs) {
  if (inputs.size() != 2) {
    return Status::InvalidArgument(config.path() + ": a join has two inputs, left and right");
  }
  JoinPlan p;
  p.type = type;
  p.left = inputs[0];
  p.right = inputs[1];
  WEIR_RETURN_IF_ERROR(PlanKind(config, p));
  WEIR_ASSIGN_OR_RETURN(p.left_key, ParseJoinKey(config, "left", p.left));
  WEIR_ASSIGN_OR_RETURN(p.right_key, ParseJoinKey(config, "right", p.right));
  if (p.left_key.size() != p.right_key.size()) {
    return Status::InvalidArgument(
        config.path() + ".right_key: " + std::to_string(p.right_key.size()) +
        " field(s), but left_key has " + std::to_string(p.left_key.size()));
  }
  for (size_t i = 0; i < p.left_key.size(); ++i) {
    const Field& l = p.left.field(static_cast<size_t>(p.left_key[i]));
    const Field& r = p.right.field(static_cast<size_t>(p.right_key[i]));
    // Equal types hash alike (HashValue), so both sides of a key meet in one key group.
    if (l.type != r.type) {
      return Status::InvalidArgument(config.path() + ".right_key: field '" + r.name + "' is " +
                                     TypeName(r.type) + " but left_key field '" + l.name + "' is " +
                                     TypeName(l.type) +
                                     " (join keys must have equal types; convert one with map)");
    }
    p.key_schema.Add(l.name, l.type);
  }
  WEIR_RETURN_IF_ERROR(JoinedSchema(config, p));
  return p;
}

Result<Schema> JoinSpec::Validate(const Config& config, const Schema&) const {
  return Status::InvalidArgument(config.path() + ": a join has two inputs, left and right");
}

std::vector<std::string> JoinSpec::InputNames(const Config&) const {
  return kInputNames;
}

Result<Schema> JoinSpec::ValidateInputs(const Config& config,
                                        const std::vector<Schema>& inputs) const {
  WEIR_ASSIGN_OR_RETURN(JoinPlan p, PlanJoin(type_, config, inputs));
  return p.output;
}

std::vector<std::vector<std::string>> JoinSpec::RequiredInputKeys(const Config& config) const {
  auto l = config.GetStringList("left_key");
  auto r = config.GetStringList("right_key");
  return {l.ok() ? l.value() : std::vector<std::string>{},
          r.ok() ? r.value() : std::vector<std::string>{}};
}

Result<std::vector<SideOutputSpec>> JoinSpec::SideOutputsWithInputs(
    const Config& config, const std::vector<Schema>& inputs) const {
  std::vector<SideOutputSpec> out;
  if (type_ == JoinType::kRegular || inputs.size() != 2) return out;
  out.push_back(SideOutputSpec{"late_left", inputs[0], ""});
  out.push_back(SideOutputSpec{"late_right", inputs[1], ""});
  return out;
}

void RegisterJoinSpecs(OperatorRegistry& r) {
  for (const JoinTypeName& t : kJoinTypes) r.Register(t.name, std::make_unique<JoinSpec>(t.type));
}

}  // namespace weir
