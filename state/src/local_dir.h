// A backend's private local directory, shared by the backend and the snapshot uploads it made:
// the directory is removed when the last of them is gone, so an upload that outlives its
// backend (the task was cancelled mid-checkpoint) keeps its files. Any thread may drop the last
// reference.
#pragma once

#include <string>

#include "files.h"

namespace weir::state {

class LocalDir {
 public:
  explicit LocalDir(std::string path) : path_(std::move(path)) {}
  ~LocalDir() { RemoveAllQuietly(path_); }
  LocalDir(const LocalDir&) = delete;
  LocalDir& operator=(const LocalDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace weir::state
