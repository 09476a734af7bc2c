#include "kafka_config.h"

#include "weir/kafka.h"
#include "weir/text_formats.h"

#include <regex>

namespace weir::kafka {

namespace {

// From librdkafka 2.0.2's CONFIGURATION.md (/usr/share/doc/librdkafka-dev/CONFIGURATION.md.gz,
// the version Debian ships and Weir links); the reasons are what the property does there.
struct Forbidden {
  const char* name;
  const char* why;
};
constexpr Forbidden kForbidden[] = {
    // Load code into the process.
    {"plugin.library.paths", "loads shared libraries (dlopen) into the process"},
    {"ssl.engine.location", "loads an OpenSSL engine library into the process"},
    {"ssl.engine.id", "selects an OpenSSL engine to load"},
    {"ssl.providers", "loads OpenSSL 3 provider modules into the process"},
    {"interceptors", "interceptor hooks run code in the process"},
    // Run commands.
    {"sasl.kerberos.kinit.cmd", "is a shell command librdkafka runs"},
    // Fetch a URL the job chooses (OIDC token endpoint): requests from the cluster's hosts.
    {"sasl.oauthbearer.token.endpoint.url", "makes the task managers fetch a URL (OIDC)"},
    // Write local files.
    {"offset.store.path", "writes offset files at a local path"},
    {"offset.store.method", "file offset storage writes local files; offsets are Weir's"},
    // Pointers and callbacks (set through the C API only; refused here so no name that means
    // code can reach librdkafka from a job file).
    {"opaque", "is a pointer set by the application"},
    {"default_topic_conf", "is a pointer set by the application"},
    {"ssl_engine_callback_data", "is a pointer set by the application"},
    {"ssl_key", "is a pointer set by the application"},
    {"ssl_certificate", "is a pointer set by the application"},
    {"ssl_ca", "is a pointer set by the application"},
    {"oauthbearer_token_refresh_cb", "is a callback set by the application"},
    {"ssl.certificate.verify_cb", "is a callback set by the application"},
};

// sasl.kerberos.keytab and .principal are interpolated into the default kinit command line
// (kinit -R -t "%{sasl.kerberos.keytab}" -k %{sasl.kerberos.principal} ...), run by a shell.
bool PlainKerberosName(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '/' || c == '@';
    if (!ok) return false;
  }
  return v.front() != '-';
}

}  // namespace

Status CheckPropertyPolicy(std::string_view key, std::string_view value,
                           const std::string& where) {
  std::string_view k = key;
  if (k.starts_with("topic.")) k.remove_prefix(6);  // librdkafka's topic-level prefix
  auto refuse = [&](std::string_view why) {
    return Status::InvalidArgument(where + "." + std::string(key) +
                                   ": not allowed in a job (it " + std::string(why) +
                                   "; docs/security-policy.md)");
  };
  for (const Forbidden& f : kForbidden) {
    if (k == f.name) return refuse(f.why);
  }
  if (k.ends_with("_cb")) return refuse("is a callback set by the application");
  if (k == "sasl.oauthbearer.method" && value != "default") {
    return refuse("with oidc makes the task managers fetch a URL");
  }
  if ((k == "sasl.kerberos.keytab" || k == "sasl.kerberos.principal") &&
      !PlainKerberosName(value)) {
    return refuse("is put into a shell command line; only letters, digits and . _ - / @ are "
                  "allowed");
  }
  return Status::Ok();
}

OperatorListState<proto::KafkaSourceEntry> OffsetState() {
  return OperatorListState<proto::KafkaSourceEntry>("kafka", 1, proto::NamedList::UNION);
}

namespace {

constexpr std::string_view kLegacyList = "kafka_offsets";
constexpr int64_t kOffsetBeginning = -2;  // RD_KAFKA_OFFSET_BEGINNING (librdkafka not linked)
// Old parallelism: what a job can have (kMaxMaxParallelism), so sums and compares stay exact.
constexpr int64_t kMaxOldParallelism = 32768;

Status CorruptOffsets() { return Status::DataLoss("kafka: corrupt entry in restored state"); }

struct OffsetDecoder {
  RestoredOffsets* out;
  int64_t old_parallelism = -1;
  int64_t started = 0;

  Status Partition(std::string topic, int64_t part, int64_t next) {
    if (topic.empty() || part < 0 || part > INT32_MAX || (next < 0 && next != kOffsetBeginning)) {
      return CorruptOffsets();
    }
    out->partitions.push_back({{std::move(topic), static_cast<int32_t>(part)}, next});
    return Status::Ok();
  }
  Status Subtask(int64_t parallelism, int64_t started_count) {
    if (parallelism < 1 || parallelism > kMaxOldParallelism || started_count < 0 ||
        started_count > 1) {
      return CorruptOffsets();
    }
    old_parallelism = parallelism;
    started += started_count;
    return Status::Ok();
  }
  Status Legacy(std::string_view e) {
    std::vector<std::string_view> f;
    size_t start = 0;
    while (true) {
      const size_t end = e.find('\0', start);
      f.push_back(e.substr(start, end == std::string_view::npos ? end : end - start));
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    if (f.size() != 4) return CorruptOffsets();
    int64_t a = 0, b = 0, c = 0;
    if (!TryParseInt64(f[2], &b).ok() || !TryParseInt64(f[3], &c).ok()) return CorruptOffsets();
    if (f[0] == "p1") return Partition(std::string(f[1]), b, c);
    if (f[0] == "s1" && TryParseInt64(f[1], &a).ok()) return Subtask(b, c);
    return CorruptOffsets();
  }
};

}  // namespace

Result<RestoredOffsets> DecodeOffsetState(const RestoredState* restored) {
  RestoredOffsets out;
  if (restored == nullptr) return out;
  OffsetDecoder d{&out};
  WEIR_ASSIGN_OR_RETURN(auto entries, OffsetState().Decode(restored, "kafka"));
  if (entries) {
    out.any = true;
    for (const proto::KafkaSourceEntry& e : *entries) {
      if (e.has_partition()) {
        const auto& p = e.partition();
        WEIR_RETURN_IF_ERROR(d.Partition(p.topic(), p.partition(), p.next_offset()));
      } else if (e.has_subtask()) {
        WEIR_RETURN_IF_ERROR(d.Subtask(e.subtask().parallelism(), e.subtask().started() ? 1 : 0));
      } else {
        return CorruptOffsets();
      }
    }
  } else {
    for (const proto::NamedList& list : restored->operator_state) {
      if (list.name() != kLegacyList) continue;
      out.any = true;
      for (const std::string& e : list.entries()) WEIR_RETURN_IF_ERROR(d.Legacy(e));
    }
  }
  out.all_started = d.started == d.old_parallelism;
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseProperties(
    const Config& config, const std::map<std::string, std::string>& reserved) {
  WEIR_ASSIGN_OR_RETURN(Config props, config.GetMap("properties"));
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& key : props.Keys()) {
    // librdkafka's spellings of the same property: a "topic." prefix and aliases.
    std::string_view canon = key;
    if (canon.starts_with("topic.")) canon.remove_prefix(6);
    if (canon == "metadata.broker.list") canon = "bootstrap.servers";
    if (canon == "auto.commit.enable") canon = "enable.auto.commit";
    auto r = reserved.find(std::string(canon));
    if (r != reserved.end()) {
      return Status::InvalidArgument(props.path() + "." + key + ": set by Weir; " + r->second);
    }
    WEIR_ASSIGN_OR_RETURN(std::string v, props.GetString(key));
    WEIR_RETURN_IF_ERROR(CheckPropertyPolicy(key, v, props.path()));
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
