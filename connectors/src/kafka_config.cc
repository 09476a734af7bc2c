#include "kafka_config.h"

#include "weir/kafka.h"
#include "weir/text_formats.h"

#include <regex>

namespace weir::kafka {

Result<std::vector<std::pair<std::string, std::string>>> ParseProperties(
    const Config& config, const std::map<std::string, std::string>& reserved) {
  WEIR_ASSIGN_OR_RETURN(Config props, config.GetMap("properties"));
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& key : props.Keys()) {
    auto r = reserved.find(key);
    if (r != reserved.end()) {
      return Status::InvalidArgument(props.path() + "." + key + ": set by Weir; " + r->second);
    }
    WEIR_ASSIGN_OR_RETURN(std::string v, props.GetString(key));
    out.emplace_back(key, std::move(v));
  }
  return out;
}

Status CheckBootstrapKeys(const Config& config) {
  const bool b = config.Has("bootstrap"), f = config.Has("bootstrap_file");
  if (b == f) {
    return Status::InvalidArgument(config.path() + ".bootstrap: required (host:port,... of the "
                                   "brokers), unless bootstrap_file is given; not both");
  }
  const char* key = b ? "bootstrap" : "bootstrap_file";
  WEIR_ASSIGN_OR_RETURN(std::string v, config.GetString(key));
  if (v.empty()) return Status::InvalidArgument(config.path() + "." + key + ": must not be empty");
  return Status::Ok();
}

Schema KafkaSchema() {
  Schema s;
  s.Add("key", Type::kString);
  s.Add("value", Type::kString);
  s.Add("topic", Type::kString);
  s.Add("partition", Type::kInt64);
  s.Add("offset", Type::kInt64);
  s.Add("timestamp", Type::kTimestamp);
  return s;
}

namespace {

// `start:`, `group_fallback:` and `offsets:` of the source.
Status PlanStart(const Config& config, KafkaSourcePlan& p) {
  WEIR_ASSIGN_OR_RETURN(std::string start, config.GetString("start", std::string("group")));
  if (start == "earliest") {
    p.start = StartMode::kEarliest;
  } else if (start == "latest") {
    p.start = StartMode::kLatest;
  } else if (start == "group") {
    p.start = StartMode::kGroup;
  } else if (start == "specific") {
    p.start = StartMode::kSpecific;
  } else {
    return Status::InvalidArgument(config.path() + ".start: expected earliest, latest, group or "
                                   "specific, got '" + start + "'");
  }
  WEIR_ASSIGN_OR_RETURN(std::string fb, config.GetString("group_fallback", std::string("earliest")));
  if (fb != "earliest" && fb != "latest") {
    return Status::InvalidArgument(config.path() + ".group_fallback: expected earliest or latest, "
                                   "got '" + fb + "'");
  }
  p.fallback_latest = fb == "latest";
  if (config.Has("group_fallback") && p.start != StartMode::kGroup) {
    return Status::InvalidArgument(config.path() + ".group_fallback: only with start: group");
  }
  WEIR_ASSIGN_OR_RETURN(Config offsets, config.GetMap("offsets"));
  for (const std::string& k : offsets.Keys()) {
    const size_t slash = k.rfind('/');
    int64_t part = -1;
    if (slash == std::string::npos || slash == 0 ||
        !TryParseInt64(std::string_view(k).substr(slash + 1), &part).ok() || part < 0 ||
        part > INT32_MAX) {
      return Status::InvalidArgument(offsets.path() + "." + k +
                                     ": keys are \"topic/partition\" (e.g. \"orders/3\")");
    }
    WEIR_ASSIGN_OR_RETURN(int64_t off, offsets.GetInt(k));
    if (off < 0) return Status::InvalidArgument(offsets.path() + "." + k + ": must be >= 0");
    p.offsets[{k.substr(0, slash), static_cast<int32_t>(part)}] = off;
  }
  if (p.start == StartMode::kSpecific && p.offsets.empty()) {
    return Status::InvalidArgument(config.path() + ".offsets: required with start: specific "
                                   "({\"topic/partition\": offset, ...})");
  }
  if (p.start != StartMode::kSpecific && !p.offsets.empty()) {
    return Status::InvalidArgument(config.path() + ".offsets: only with start: specific");
  }
  return Status::Ok();
}

}  // namespace

Result<KafkaSourcePlan> PlanKafkaSource(const Config& config) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys(
      {"bootstrap", "bootstrap_file", "topics", "topic_pattern", "group_id", "start",
       "group_fallback", "offsets", "on_offset_out_of_range", "partition_discovery_interval",
       "max_batch", "idle_wait", "properties"}));
  KafkaSourcePlan p;
  WEIR_RETURN_IF_ERROR(CheckBootstrapKeys(config));
  WEIR_ASSIGN_OR_RETURN(p.bootstrap, config.GetString("bootstrap", std::string()));
  WEIR_ASSIGN_OR_RETURN(p.bootstrap_file, config.GetString("bootstrap_file", std::string()));
  WEIR_ASSIGN_OR_RETURN(p.topics, config.GetStringList("topics"));
  WEIR_ASSIGN_OR_RETURN(p.topic_pattern, config.GetString("topic_pattern", std::string()));
  if (p.topics.empty() == p.topic_pattern.empty()) {
    return Status::InvalidArgument(config.path() +
                                   ".topics: give the topics to read (a list), or topic_pattern "
                                   "(a regular expression); exactly one of them");
  }
  for (const std::string& t : p.topics) {
    if (t.empty()) return Status::InvalidArgument(config.path() + ".topics: empty topic name");
  }
  if (!p.topic_pattern.empty()) {
    try {
      std::regex re(p.topic_pattern);
    } catch (const std::regex_error& e) {
      return Status::InvalidArgument(config.path() + ".topic_pattern: not a valid regular "
                                     "expression: " + e.what());
    }
  }
  WEIR_ASSIGN_OR_RETURN(p.group_id, config.GetString("group_id"));
  if (p.group_id.empty()) {
    return Status::InvalidArgument(config.path() + ".group_id: must not be empty");
  }
  WEIR_RETURN_IF_ERROR(PlanStart(config, p));
  WEIR_ASSIGN_OR_RETURN(std::string oor,
                        config.GetString("on_offset_out_of_range", std::string("fail")));
  if (oor == "fail") {
    p.out_of_range = OutOfRange::kFail;
  } else if (oor == "earliest") {
    p.out_of_range = OutOfRange::kEarliest;
  } else if (oor == "latest") {
    p.out_of_range = OutOfRange::kLatest;
  } else {
    return Status::InvalidArgument(config.path() + ".on_offset_out_of_range: expected fail, "
                                   "earliest or latest, got '" + oor + "'");
  }
  WEIR_ASSIGN_OR_RETURN(p.discovery_ms, config.GetDurationMs("partition_discovery_interval", 10000));
  if (p.discovery_ms < 0) {
    return Status::InvalidArgument(config.path() + ".partition_discovery_interval: must be >= 0");
  }
  WEIR_ASSIGN_OR_RETURN(p.max_batch, config.GetInt("max_batch", 1024));
  if (p.max_batch < 1 || p.max_batch > 1000000) {
    return Status::InvalidArgument(config.path() + ".max_batch: must be 1..1000000");
  }
  WEIR_ASSIGN_OR_RETURN(p.idle_wait_ms, config.GetDurationMs("idle_wait", 5));
  if (p.idle_wait_ms < 0 || p.idle_wait_ms > 100) {
    // Longer would hold up checkpoint triggers, which the task handles between polls.
    return Status::InvalidArgument(config.path() + ".idle_wait: must be 0..100ms");
  }
  WEIR_ASSIGN_OR_RETURN(
      p.properties,
      ParseProperties(
          config, {{"bootstrap.servers", "use bootstrap"},
                   {"group.id", "use group_id"},
                   {"auto.offset.reset", "use on_offset_out_of_range"},
                   {"enable.auto.commit", "offsets are committed after checkpoints"},
                   {"enable.auto.offset.store", "offsets are committed after checkpoints"},
                   {"enable.partition.eof", "not supported"}}));
  return p;
}

Result<KafkaSinkPlan> PlanKafkaSink(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"bootstrap", "bootstrap_file", "topic", "key", "value",
                                         "value_field", "timestamp_field", "flush_timeout",
                                         "properties"}));
  KafkaSinkPlan p;
  WEIR_RETURN_IF_ERROR(CheckBootstrapKeys(config));
  WEIR_ASSIGN_OR_RETURN(p.bootstrap, config.GetString("bootstrap", std::string()));
  WEIR_ASSIGN_OR_RETURN(p.bootstrap_file, config.GetString("bootstrap_file", std::string()));
  WEIR_ASSIGN_OR_RETURN(p.topic, config.GetString("topic"));
  if (p.topic.empty()) return Status::InvalidArgument(config.path() + ".topic: must not be empty");
  WEIR_ASSIGN_OR_RETURN(std::vector<std::string> key, config.GetStringList("key"));
  for (const std::string& k : key) {
    const int i = input.IndexOf(k);
    if (i < 0) {
      return Status::InvalidArgument(config.path() + ".key: no field '" + k + "' in the input (" +
                                     input.FieldNames() + ")");
    }
    p.key_fields.push_back(i);
    p.key_schema.Add(k, input.field(static_cast<size_t>(i)).type);
  }
  WEIR_ASSIGN_OR_RETURN(std::string value, config.GetString("value", std::string("json")));
  if (value != "json" && value != "raw") {
    return Status::InvalidArgument(config.path() + ".value: expected json or raw, got '" + value +
                                   "'");
  }
  p.raw = value == "raw";
  if (p.raw) {
    WEIR_ASSIGN_OR_RETURN(std::string vf, config.GetString("value_field"));
    p.value_field = input.IndexOf(vf);
    if (p.value_field < 0) {
      return Status::InvalidArgument(config.path() + ".value_field: no field '" + vf +
                                     "' in the input (" + input.FieldNames() + ")");
    }
    const Type t = input.field(static_cast<size_t>(p.value_field)).type;
    if (t != Type::kString && t != Type::kBytes) {
      return Status::InvalidArgument(config.path() + ".value_field: '" + vf +
                                     "' must be a string or bytes field, not " + TypeName(t));
    }
  } else if (config.Has("value_field")) {
    return Status::InvalidArgument(config.path() + ".value_field: only with value: raw");
  }
  if (config.Has("timestamp_field")) {
    WEIR_ASSIGN_OR_RETURN(std::string tf, config.GetString("timestamp_field"));
    p.timestamp_field = input.IndexOf(tf);
    if (p.timestamp_field < 0) {
      return Status::InvalidArgument(config.path() + ".timestamp_field: no field '" + tf +
                                     "' in the input (" + input.FieldNames() + ")");
    }
    const Type t = input.field(static_cast<size_t>(p.timestamp_field)).type;
    if (t != Type::kTimestamp && t != Type::kInt64) {
      return Status::InvalidArgument(config.path() + ".timestamp_field: '" + tf +
                                     "' must be a timestamp or int64 (ms) field, not " +
                                     TypeName(t));
    }
  }
  WEIR_ASSIGN_OR_RETURN(p.flush_timeout_ms, config.GetDurationMs("flush_timeout", 10000));
  if (p.flush_timeout_ms < 1) {
    return Status::InvalidArgument(config.path() + ".flush_timeout: must be > 0");
  }
  WEIR_ASSIGN_OR_RETURN(
      p.properties,
      ParseProperties(config, {{"bootstrap.servers", "use bootstrap"},
                                      {"transactional.id", "transactions are not supported"}}));
  return p;
}

Result<Schema> KafkaSourceSpec::Validate(const Config& config, const Schema&) const {
  WEIR_RETURN_IF_ERROR(PlanKafkaSource(config).status());
  return KafkaSchema();
}

Result<Schema> KafkaSinkSpec::Validate(const Config& config, const Schema& input) const {
  WEIR_RETURN_IF_ERROR(PlanKafkaSink(config, input).status());
  return Schema();
}

}  // namespace weir::kafka

namespace weir {

int KafkaPartitionOwner(std::string_view topic, int32_t partition, int parallelism) {
  if (parallelism <= 1) return 0;
  int32_t h = 0;  // Java's String.hashCode over the bytes (equal for ASCII topic names)
  for (unsigned char c : topic) h = static_cast<int32_t>(31u * static_cast<uint32_t>(h) + c);
  const int64_t start = static_cast<int64_t>((static_cast<uint32_t>(h) * 31u) & 0x7fffffffu) %
                        parallelism;
  return static_cast<int>((start + partition) % parallelism);
}

std::unique_ptr<OperatorFactory> MakeKafkaSourceSpec() {
  return std::make_unique<kafka::KafkaSourceSpec>();
}
std::unique_ptr<OperatorFactory> MakeKafkaSinkSpec() {
  return std::make_unique<kafka::KafkaSinkSpec>();
}

}  // namespace weir
