// Path checks for names that come from outside the process (checkpoint handles, operator
// state, acknowledgements) and the security.allowed_paths policy on where jobs write
// (docs/security-policy.md): pure functions (CheckAllowedPath reads the file system to resolve
// symlinks), any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "weir/status.h"

namespace weir {

// A relative path that stays below its base: not empty, no leading '/', no NUL, and no empty,
// "." or ".." segment.
inline bool IsSafeRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return true;
}

// One path segment: a safe relative path without '/'.
inline bool IsPlainName(std::string_view name) {
  return IsSafeRelativePath(name) && name.find('/') == std::string_view::npos;
}

// security.allowed_paths: whether a job may write under `path` (a sink's output, a checkpoint
// or savepoint directory). Empty `allowed`: anything. Otherwise `path` must be absolute, have
// no "." or ".." segment and no NUL, and lie under one of `allowed` compared segment by segment
// after lexical normalisation (/data/out allows /data/out and /data/out/x, not /data/outside).
// Symlinks: the part of `path` that exists now is resolved on this host (weakly_canonical) and
// the result must also lie under a resolved allowed prefix, so a symlink inside an allowed
// directory pointing elsewhere is refused; a symlink created after the check is not seen.
// Errors name `what` (e.g. "vertex 'out': config.path") and the allowed prefixes.
Status CheckAllowedPath(const std::string& path, const std::vector<std::string>& allowed,
                        const std::string& what);

}  // namespace weir
