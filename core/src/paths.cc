#include "weir/paths.h"

#include <filesystem>
#include <system_error>

namespace weir {
namespace {

namespace fs = std::filesystem;

// Whether `child` equals `parent` or lies below it, both absolute and lexically normal,
// compared by segments (a trailing empty segment from "dir/" is ignored).
bool Under(const fs::path& child, const fs::path& parent) {
  auto c = child.begin();
  for (auto p = parent.begin(); p != parent.end(); ++p) {
    if (p->empty()) continue;  // "/a/b/" normalises to "/a/b/" with an empty last segment
    if (c == child.end() || *c != *p) return false;
    ++c;
  }
  return true;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Status CheckAllowedPath(const std::string& path, const std::vector<std::string>& allowed,
                        const std::string& what) {
  if (allowed.empty()) return Status::Ok();
  const std::string under = " (security.allowed_paths: " + Joined(allowed) + ")";
  if (path.empty() || path.find('\0') != std::string::npos || path.front() != '/') {
    return Status::InvalidArgument(what + ": '" + path + "' must be an absolute path" + under);
  }
  const fs::path p(path);
  for (const fs::path& seg : p) {
    if (seg == ".." || seg == ".") {
      return Status::InvalidArgument(what + ": '" + path + "' must not have . or .. segments" +
                                      under);
    }
  }
  const fs::path normal = p.lexically_normal();
  bool lexical = false, resolved = false;
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(normal, ec);
  const bool can_resolve = !ec;
  for (const std::string& a : allowed) {
    if (a.empty() || a.front() != '/') continue;  // only absolute prefixes mean anything
    const fs::path an = fs::path(a).lexically_normal();
    if (!Under(normal, an)) continue;
    lexical = true;
    if (!can_resolve) {
      resolved = true;
      break;
    }
    std::error_code aec;
    const fs::path acanon = fs::weakly_canonical(an, aec);
    if (Under(canon, aec ? an : acanon)) {
      resolved = true;
      break;
    }
  }
  if (!lexical) {
    return Status::InvalidArgument(what + ": '" + path + "' is outside the allowed paths" +
                                    under);
  }
  if (!resolved) {
    return Status::InvalidArgument(what + ": '" + path + "' resolves (through a symlink) to '" +
                                    canon.string() + "', outside the allowed paths" + under);
  }
  return Status::Ok();
}

}  // namespace weir
