#include "weir/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "weir/text_formats.h"

namespace weir {
namespace {

std::string Render(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "null";
}

// Parses "<number><unit>" with the given unit table; a bare integer uses `bare_scale`.
std::optional<int64_t> ParseWithUnit(const std::string& s,
                                     const std::vector<std::pair<std::string, int64_t>>& units) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double num;
  if (!TryParseDouble(std::string_view(s).substr(0, i), &num).ok()) return std::nullopt;
  std::string unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [name, scale] : units) {
    if (unit == name) return static_cast<int64_t>(num * static_cast<double>(scale));
  }
  return std::nullopt;
}

}  // namespace

Config::Config() : node_(std::make_shared<YAML::Node>(YAML::NodeType::Map)) {}
Config::Config(const YAML::Node& node, std::string path)
    : node_(std::make_shared<YAML::Node>(node)), path_(std::move(path)) {}
Config::~Config() = default;
Config::Config(const Config&) = default;
Config& Config::operator=(const Config&) = default;

Result<Config> Config::Parse(std::string_view text, std::string path) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(path + ": not valid YAML/JSON: line " +
                                   std::to_string(e.mark.line + 1) + ", column " +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!root || root.IsNull()) return Config(YAML::Node(YAML::NodeType::Map), std::move(path));
  if (!root.IsMap()) return Status::InvalidArgument(path + ": expected a mapping at top level");
  return Config(root, std::move(path));
}

Result<Config> Config::Load(const std::string& file, std::string path) {
  std::ifstream in(file);
  if (!in) return Status::NotFound("cannot open " + file);
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), std::move(path));
}

std::string Config::KeyPath(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  // A path ending in ':' names an object ("vertex 'gen':"), not a key.
  if (path_.back() == ':') return path_ + " " + std::string(key);
  return path_ + "." + std::string(key);
}

bool Config::Has(std::string_view key) const {
  if (!node_->IsMap()) return false;
  const YAML::Node n = (*node_)[std::string(key)];
  return n.IsDefined() && !n.IsNull();
}

std::vector<std::string> Config::Keys() const {
  std::vector<std::string> keys;
  if (!node_->IsMap()) return keys;
  for (const auto& kv : *node_) keys.push_back(kv.first.Scalar());
  return keys;
}

Status Config::CheckKeys(const std::vector<std::string_view>& allowed) const {
  for (const std::string& k : Keys()) {
    bool ok = false;
    for (auto a : allowed) ok = ok || a == k;
    if (!ok) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Status::InvalidArgument(KeyPath(k) + ": unknown key (allowed: " + list + ")");
    }
  }
  return Status::Ok();
}

#define WEIR_CONFIG_LOOKUP(key, def)                                                  \
  if (!Has(key)) {                                                                    \
    if (def) return *def;                                                             \
    return Status::InvalidArgument(KeyPath(key) + ": required");                      \
  }                                                                                   \
  const YAML::Node n = (*node_)[std::string(key)];                                    \
  if (!n.IsScalar()) {                                                                \
    return Status::InvalidArgument(KeyPath(key) + ": expected a value, got " + Render(n)); \
  }

Result<int64_t> Config::GetInt(std::string_view key, std::optional<int64_t> def) const {
  WEIR_CONFIG_LOOKUP(key, def)
  const std::string& s = n.Scalar();
  int64_t v;
  if (TryParseInt64(s, &v).ok()) return v;
  // YAML, like JSON, has one number type: "1e6" is an integer when exact.
  double d;
  if (TryParseDouble(s, &d).ok() && ExactDoubleToInt64(d, &v)) return v;
  return Status::InvalidArgument(KeyPath(key) + ": expected an integer, got '" + s + "'");
}

Result<double> Config::GetDouble(std::string_view key, std::optional<double> def) const {
  WEIR_CONFIG_LOOKUP(key, def)
  const std::string& s = n.Scalar();
  double v;
  if (TryParseDouble(s, &v).ok()) return v;
  return Status::InvalidArgument(KeyPath(key) + ": expected a number, got '" + s + "'");
}

Result<bool> Config::GetBool(std::string_view key, std::optional<bool> def) const {
  WEIR_CONFIG_LOOKUP(key, def)
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "False" || s == "no" || s == "off") return false;
  return Status::InvalidArgument(KeyPath(key) + ": expected true or false, got '" + s + "'");
}

Result<std::string> Config::GetString(std::string_view key,
                                      std::optional<std::string> def) const {
  WEIR_CONFIG_LOOKUP(key, def)
  return n.Scalar();
}

#undef WEIR_CONFIG_LOOKUP

Result<std::vector<std::string>> Config::GetStringList(std::string_view key) const {
  std::vector<std::string> out;
  if (!Has(key)) return out;
  const YAML::Node n = (*node_)[std::string(key)];
  if (n.IsScalar()) {
    out.push_back(n.Scalar());
    return out;
  }
  if (!n.IsSequence()) {
    return Status::InvalidArgument(KeyPath(key) + ": expected a list of names, got " + Render(n));
  }
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      return Status::InvalidArgument(KeyPath(key) + "[" + std::to_string(i) +
                                     "]: expected a name, got " + Render(n[i]));
    }
    out.push_back(n[i].Scalar());
  }
  return out;
}

Result<Config> Config::GetMap(std::string_view key) const {
  if (!Has(key)) return Config(YAML::Node(YAML::NodeType::Map), KeyPath(key));
  const YAML::Node n = (*node_)[std::string(key)];
  if (!n.IsMap()) {
    return Status::InvalidArgument(KeyPath(key) + ": expected a mapping, got " + Render(n));
  }
  return Config(n, KeyPath(key));
}

Result<std::vector<Config>> Config::GetMapList(std::string_view key) const {
  std::vector<Config> out;
  if (!Has(key)) return out;
  const YAML::Node n = (*node_)[std::string(key)];
  if (!n.IsSequence()) {
    return Status::InvalidArgument(KeyPath(key) + ": expected a list, got " + Render(n));
  }
  for (size_t i = 0; i < n.size(); ++i) {
    std::string p = KeyPath(key) + "[" + std::to_string(i) + "]";
    if (!n[i].IsMap()) {
      return Status::InvalidArgument(p + ": expected a mapping, got " + Render(n[i]));
    }
    out.emplace_back(n[i], p);
  }
  return out;
}

Result<int64_t> Config::GetDurationMs(std::string_view key, std::optional<int64_t> def) const {
  if (!Has(key)) {
    if (def) return *def;
    return Status::InvalidArgument(KeyPath(key) + ": required");
  }
  WEIR_ASSIGN_OR_RETURN(std::string s, GetString(key));
  auto v = ParseWithUnit(s, {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000},
                             {"h", 3600000}});
  if (!v || *v < 0) {
    return Status::InvalidArgument(KeyPath(key) + ": expected a duration like 500ms, 2s, 1m, got '" +
                                   s + "'");
  }
  return *v;
}

Result<int64_t> Config::GetSignedDurationMs(std::string_view key,
                                            std::optional<int64_t> def) const {
  if (!Has(key)) return GetDurationMs(key, def);
  WEIR_ASSIGN_OR_RETURN(std::string s, GetString(key));
  if (s.empty() || s[0] != '-') return GetDurationMs(key, def);
  auto v = ParseWithUnit(
      s.substr(1), {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}});
  if (!v || *v < 0) {
    return Status::InvalidArgument(KeyPath(key) +
                                   ": expected a duration like -2s, 500ms, 1m, got '" + s + "'");
  }
  return -*v;
}

Result<int64_t> Config::GetBytes(std::string_view key, std::optional<int64_t> def) const {
  if (!Has(key)) {
    if (def) return *def;
    return Status::InvalidArgument(KeyPath(key) + ": required");
  }
  WEIR_ASSIGN_OR_RETURN(std::string s, GetString(key));
  auto v = ParseWithUnit(s, {{"", 1}, {"b", 1}, {"kb", 1024}, {"k", 1024}, {"mb", 1 << 20},
                             {"m", 1 << 20}, {"gb", int64_t{1} << 30}, {"g", int64_t{1} << 30}});
  if (!v || *v < 0) {
    return Status::InvalidArgument(KeyPath(key) + ": expected a size like 64kb, 128mb, got '" + s +
                                   "'");
  }
  return *v;
}

std::string Config::ToYaml() const {
  YAML::Emitter out;
  out << YAML::Flow << *node_;
  return out.c_str();
}

}  // namespace weir
