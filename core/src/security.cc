#include "weir/security.h"

#include <fstream>
#include <sstream>

namespace weir {
namespace {

Status Readable(const std::string& key, const std::string& file) {
  std::ifstream in(file);
  if (!in) return Status::InvalidArgument(key + ": cannot read '" + file + "'");
  return Status::Ok();
}

}  // namespace

Result<SecurityOptions> ParseSecurityOptions(const Config& cluster_config) {
  SecurityOptions o;
  WEIR_ASSIGN_OR_RETURN(Config sec, cluster_config.GetMap("security"));
  WEIR_RETURN_IF_ERROR(sec.CheckKeys({"tls", "token_file", "allowed_paths"}));
  WEIR_ASSIGN_OR_RETURN(Config tls, sec.GetMap("tls"));
  WEIR_RETURN_IF_ERROR(tls.CheckKeys({"cert", "key", "ca"}));
  WEIR_ASSIGN_OR_RETURN(o.tls.cert, tls.GetString("cert", std::string()));
  WEIR_ASSIGN_OR_RETURN(o.tls.key, tls.GetString("key", std::string()));
  WEIR_ASSIGN_OR_RETURN(o.tls.ca, tls.GetString("ca", std::string()));
  const int set = !o.tls.cert.empty() + !o.tls.key.empty() + !o.tls.ca.empty();
  if (set != 0 && set != 3) {
    return Status::InvalidArgument("security.tls: cert, key and ca must be given together");
  }
  if (set == 3) {
    WEIR_RETURN_IF_ERROR(Readable("security.tls.cert", o.tls.cert));
    WEIR_RETURN_IF_ERROR(Readable("security.tls.key", o.tls.key));
    WEIR_RETURN_IF_ERROR(Readable("security.tls.ca", o.tls.ca));
  }
  WEIR_ASSIGN_OR_RETURN(o.token_file, sec.GetString("token_file", std::string()));
  if (!o.token_file.empty()) WEIR_RETURN_IF_ERROR(ReadSecretFile(o.token_file).status());
  WEIR_ASSIGN_OR_RETURN(o.allowed_paths, sec.GetStringList("allowed_paths"));
  for (const std::string& p : o.allowed_paths) {
    if (p.empty() || p[0] != '/') {
      return Status::InvalidArgument("security.allowed_paths: '" + p +
                                     "' is not an absolute path");
    }
  }
  return o;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read the token file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.empty()) return Status::InvalidArgument("the token file '" + path + "' is empty");
  return s;
}

}  // namespace weir
