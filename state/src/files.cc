#include "files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>

#include "crc32c.h"

namespace weir::state {

namespace fs = std::filesystem;

namespace {

constexpr size_t kCopyBuffer = 1 << 20;

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return Status::NotFound(msg);
  return Status::IoError(msg);
}

// Closes the descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error (close can report a deferred write error).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

// Reads up to n bytes; returns the count (0 at end of file) or -1 with errno set.
ssize_t ReadSome(int fd, char* p, size_t n) {
  while (true) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

std::string TempNameFor(const std::string& path) {
  return path + ".tmp-" + RandomHex(8);
}

// Syncs, closes and renames `tmp` to `path`; removes `tmp` on failure.
Status FinishAtomicWrite(Fd& fd, const std::string& tmp, const std::string& path) {
  if (::fsync(fd.get()) != 0) {
    Status st = ErrnoStatus("cannot fsync", tmp, errno);
    ::unlink(tmp.c_str());
    return st;
  }
  if (fd.Close() != 0) {
    Status st = ErrnoStatus("cannot close", tmp, errno);
    ::unlink(tmp.c_str());
    return st;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = ErrnoStatus("cannot rename " + tmp + " to", path, errno);
    ::unlink(tmp.c_str());
    return st;
  }
  return Status::Ok();
}

}  // namespace

std::string RandomHex(int bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  out.reserve(static_cast<size_t>(bytes) * 2);
  uint32_t word = 0;
  for (int i = 0; i < bytes; ++i) {
    if (i % 4 == 0) word = rd();
    uint8_t b = static_cast<uint8_t>(word >> ((i % 4) * 8));
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

Status WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& pieces) {
  const std::string tmp = TempNameFor(path);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus("cannot create", tmp, errno);
  for (std::string_view piece : pieces) {
    Status st = WriteAll(fd.get(), piece.data(), piece.size(), tmp);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  return FinishAtomicWrite(fd, tmp, path);
}

Result<uint64_t> CopyFileAtomically(const std::string& src, const std::string& dst) {
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoStatus("cannot open", src, errno);
  const std::string tmp = TempNameFor(dst);
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) return ErrnoStatus("cannot create", tmp, errno);
  auto buf = std::make_unique<char[]>(kCopyBuffer);
  uint64_t total = 0;
  while (true) {
    ssize_t r = ReadSome(in.get(), buf.get(), kCopyBuffer);
    if (r < 0) {
      Status st = ErrnoStatus("cannot read", src, errno);
      ::unlink(tmp.c_str());
      return st;
    }
    if (r == 0) break;
    Status st = WriteAll(out.get(), buf.get(), static_cast<size_t>(r), tmp);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
    total += static_cast<uint64_t>(r);
  }
  WEIR_RETURN_IF_ERROR(FinishAtomicWrite(out, tmp, dst));
  return total;
}

Result<uint64_t> LinkOrCopyFileAtomically(const std::string& src, const std::string& dst) {
  const std::string tmp = TempNameFor(dst);
  if (::link(src.c_str(), tmp.c_str()) == 0) {
    // RocksDB syncs an SST when it finishes writing it; syncing again is cheap and makes the
    // guarantee ours rather than RocksDB's.
    Fd f(::open(tmp.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.get() < 0 || ::fsync(f.get()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot sync", tmp, err);
    }
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus("cannot rename into", dst, err);
    }
    return uint64_t{0};
  }
  // EXDEV (another file system) and the like: copy.
  return CopyFileAtomically(src, dst);
}

Result<uint32_t> CopyFileChecked(const std::string& src, const std::string& dst,
                                 uint64_t expected_size) {
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoStatus("cannot open state file", src, errno);
  struct stat sb;
  if (::fstat(in.get(), &sb) != 0) return ErrnoStatus("cannot stat state file", src, errno);
  if (static_cast<uint64_t>(sb.st_size) != expected_size) {
    return Status::DataLoss("state file " + src + " has " + std::to_string(sb.st_size) +
                            " bytes, the checkpoint recorded " + std::to_string(expected_size) +
                            " (truncated or replaced)");
  }
  Fd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) return ErrnoStatus("cannot create", dst, errno);
  auto buf = std::make_unique<char[]>(kCopyBuffer);
  uint32_t crc = 0;
  uint64_t total = 0;
  while (true) {
    ssize_t r = ReadSome(in.get(), buf.get(), kCopyBuffer);
    if (r < 0) return ErrnoStatus("cannot read state file", src, errno);
    if (r == 0) break;
    crc = Crc32cExtend(crc, buf.get(), static_cast<size_t>(r));
    WEIR_RETURN_IF_ERROR(WriteAll(out.get(), buf.get(), static_cast<size_t>(r), dst));
    total += static_cast<uint64_t>(r);
  }
  if (total != expected_size) {
    return Status::DataLoss("state file " + src + " changed size while being read");
  }
  if (out.Close() != 0) return ErrnoStatus("cannot close", dst, errno);
  return crc;
}

Result<std::string> ReadFile(const std::string& path) {
  Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoStatus("cannot open state file", path, errno);
  struct stat sb;
  if (::fstat(in.get(), &sb) != 0) return ErrnoStatus("cannot stat state file", path, errno);
  std::string data;
  data.resize(static_cast<size_t>(sb.st_size));
  size_t got = 0;
  while (got < data.size()) {
    ssize_t r = ReadSome(in.get(), data.data() + got, data.size() - got);
    if (r < 0) return ErrnoStatus("cannot read state file", path, errno);
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  data.resize(got);
  return data;
}

Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return ErrnoStatus("cannot fsync directory", dir, errno);
  return Status::Ok();
}

Status SyncDirChain(const std::string& dir, const std::string& root) {
  fs::path p = NormalizePath(dir);
  const fs::path stop = NormalizePath(root);
  while (true) {
    WEIR_RETURN_IF_ERROR(SyncDir(p.string()));
    if (p == stop || p.parent_path() == p || p.string().size() <= stop.string().size()) break;
    p = p.parent_path();
  }
  return Status::Ok();
}

Status CreateDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create directory " + dir + ": " + ec.message());
  return Status::Ok();
}

void RemoveAllQuietly(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return Status::IoError("cannot remove " + path + ": " + ec.message());
  return Status::Ok();
}

Result<std::vector<DirEntry>> ListFiles(const std::string& dir) {
  std::vector<DirEntry> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return Status::IoError("cannot list " + dir + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    uint64_t size = it->file_size(ec2);
    if (ec2) return Status::IoError("cannot stat " + it->path().string() + ": " + ec2.message());
    out.push_back({it->path().filename().string(), size});
  }
  if (ec) return Status::IoError("cannot list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return out;
}

int64_t FileSizeOrMinusOne(const std::string& path) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) return -1;
  return static_cast<int64_t>(sb.st_size);
}

std::string NormalizePath(const std::string& p) {
  std::string out = fs::path(p).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string JoinPath(std::string_view a, std::string_view b) {
  std::string out(a);
  if (!out.empty() && out.back() != '/') out.push_back('/');
  out.append(b);
  return out;
}

}  // namespace weir::state
