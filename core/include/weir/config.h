// Config: a read-only view of a YAML (or JSON) mapping, with typed getters whose errors name the
// full path of the offending key ("vertex 'gen': config.total: expected an integer, got 'abc'").
// Used for job-file vertex configs and the cluster config file. Copies share the parsed tree;
// const methods may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weir/status.h"

namespace YAML {
class Node;
}

namespace weir {

class Config {
 public:
  // An empty mapping.
  Config();
  // Wraps a node; `path` prefixes every error ("vertex 'gen': config").
  Config(const YAML::Node& node, std::string path);
  ~Config();
  Config(const Config&);
  Config& operator=(const Config&);

  // Parses YAML/JSON text whose top level must be a mapping (or empty).
  static Result<Config> Parse(std::string_view text, std::string path);
  // Reads and parses a file.
  static Result<Config> Load(const std::string& file, std::string path);

  const std::string& path() const { return path_; }
  bool Has(std::string_view key) const;
  std::vector<std::string> Keys() const;
  // Fails naming the first key not in `allowed` (catches typos in job files).
  Status CheckKeys(const std::vector<std::string_view>& allowed) const;

  // Typed getters. With a default, a missing key yields the default; without, it is an error.
  Result<int64_t> GetInt(std::string_view key, std::optional<int64_t> def = std::nullopt) const;
  Result<double> GetDouble(std::string_view key, std::optional<double> def = std::nullopt) const;
  Result<bool> GetBool(std::string_view key, std::optional<bool> def = std::nullopt) const;
  Result<std::string> GetString(std::string_view key,
                                std::optional<std::string> def = std::nullopt) const;
  // A list of strings; a single scalar is accepted as a one-element list. Missing -> empty.
  Result<std::vector<std::string>> GetStringList(std::string_view key) const;
  // A nested mapping (missing -> empty mapping).
  Result<Config> GetMap(std::string_view key) const;
  // A list of mappings (missing -> empty list).
  Result<std::vector<Config>> GetMapList(std::string_view key) const;
  // Durations: an integer (milliseconds) or a string like "500ms", "2s", "1m", "1h".
  Result<int64_t> GetDurationMs(std::string_view key, std::optional<int64_t> def = std::nullopt) const;
  // The same, also negative with a leading '-' ("-5s"): offsets such as an interval join's
  // bounds.
  Result<int64_t> GetSignedDurationMs(std::string_view key,
                                      std::optional<int64_t> def = std::nullopt) const;
  // Sizes: an integer (bytes) or "64kb", "128mb", "1gb".
  Result<int64_t> GetBytes(std::string_view key, std::optional<int64_t> def = std::nullopt) const;

  // The mapping as YAML text (flow style), for shipping in a protobuf.
  std::string ToYaml() const;
  const YAML::Node& node() const { return *node_; }

 private:
  std::string KeyPath(std::string_view key) const;
  std::shared_ptr<YAML::Node> node_;
  std::string path_;
};

}  // namespace weir
