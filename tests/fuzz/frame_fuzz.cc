// libFuzzer target: the data plane's inbound read loop (InConnection in runtime/src/network.cc)
// driven by a hostile peer over a real loopback connection to a NetworkEnvironment, the way a
// task manager's data port is reached. Covers the 24-byte frame header checks (kind, length
// bounds, OPEN sizes, channel ids opened twice or unopened, credits overspent), OPEN admission
// (forged and valid proofs, duplicate keys) and body reads.
//
// Input: frames, each a 24-byte FrameHeader then up to `length` body bytes as they come (a
// short input is a truncated stream). So that the fuzzer gets past the HMAC proof, an OPEN
// whose header pad[0] is 1 has its body rewritten to "<this input's attempt>/<body>" plus the
// valid proof; other OPENs go as they are (forged). Each input is one connection of a fresh
// job attempt; the attempt is released after it.
// Contract besides sanitizers: the server ends every connection (reads from it end; 30 s of
// silence is a wedge, generous so that a starved machine does not report one), and
// never holds more than its caps.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fuzz_common.h"
#include "weir/network.h"

namespace {

weir::NetworkEnvironment* g_env = nullptr;
uint64_t g_iter = 0;
const std::string kSecret = "fuzz-secret";

// The stream to send for `data`: frames with valid OPENs filled in.
std::string BuildStream(const uint8_t* data, size_t size, const std::string& prefix) {
  std::string out;
  size_t i = 0;
  while (i < size) {
    weir::FrameHeader h{};
    if (size - i < sizeof h) {  // a truncated header
      out.append(reinterpret_cast<const char*>(data + i), size - i);
      break;
    }
    std::memcpy(&h, data + i, sizeof h);
    i += sizeof h;
    const size_t body = std::min<size_t>(h.length, size - i);
    if (h.kind == static_cast<uint8_t>(weir::FrameKind::kOpen) && h.pad[0] == 1) {
      const std::string key =
          prefix + std::string(reinterpret_cast<const char*>(data + i), std::min<size_t>(body, 64));
      const std::string b = key + weir::OpenProof(kSecret, key);
      h.length = static_cast<uint32_t>(b.size());
      out.append(reinterpret_cast<const char*>(&h), sizeof h);
      out += b;
    } else {
      out.append(reinterpret_cast<const char*>(&h), sizeof h);
      out.append(reinterpret_cast<const char*>(data + i), body);
    }
    i += body;
  }
  return out;
}

void Seed(std::string* s, weir::FrameKind kind, uint32_t channel, const std::string& body,
          uint8_t valid = 0, int64_t arg = 0, uint32_t records = 0) {
  weir::FrameHeader h{};
  h.length = static_cast<uint32_t>(body.size());
  h.channel = channel;
  h.kind = static_cast<uint8_t>(kind);
  h.pad[0] = valid;
  h.records = records;
  h.arg = arg;
  s->append(reinterpret_cast<const char*>(&h), sizeof h);
  *s += body;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weir::fuzz::Quiet();
  std::string good, forged, dup;
  Seed(&good, weir::FrameKind::kOpen, 1, "src/0/dst/0", 1);
  Seed(&good, weir::FrameKind::kData, 1, std::string("\x00\x2a\x00\x00\x00\x00\x00\x00\x00", 9), 0,
       0, 1);
  Seed(&good, weir::FrameKind::kWatermark, 1, "", 0, 1000);
  Seed(&good, weir::FrameKind::kBarrier, 1, "", 0, 7);
  Seed(&good, weir::FrameKind::kEndOfStream, 1, "");
  Seed(&forged, weir::FrameKind::kOpen, 1, std::string(40, 'x'));
  Seed(&dup, weir::FrameKind::kOpen, 1, "a", 1);
  Seed(&dup, weir::FrameKind::kOpen, 2, "a", 1);
  Seed(&dup, weir::FrameKind::kData, 3, "zz");
  weir::fuzz::MaybeWriteSeeds({{"good", good}, {"forged", forged}, {"dup", dup}});
  weir::NetworkOptions opt;
  opt.max_frame_bytes = 1 << 16;  // small, so that the bound is reachable
  opt.max_channels_per_connection = 16;
  opt.open_timeout_ms = 100;
  g_env = new weir::NetworkEnvironment(opt);  // lives for the process
  if (!g_env->Start("127.0.0.1", 0).ok()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string prefix = "fz/" + std::to_string(++g_iter) + "/";
  g_env->SetAttemptSecret(prefix, kSecret);
  const std::string stream = BuildStream(data, size, prefix);

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(g_env->port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  // Send what the server takes (it may cut the connection early), draining its credits.
  size_t off = 0;
  char sink[4096];
  while (off < stream.size()) {
    pollfd p{fd, POLLOUT | POLLIN, 0};
    if (::poll(&p, 1, 30000) <= 0) std::abort();  // the server stopped reading: wedged
    if (p.revents & POLLIN) {
      const ssize_t r = ::recv(fd, sink, sizeof sink, 0);
      if (r <= 0) break;  // cut off
    }
    if (p.revents & POLLOUT) {
      const ssize_t w = ::send(fd, stream.data() + off, stream.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    if (p.revents & (POLLERR | POLLHUP)) break;
  }
  ::shutdown(fd, SHUT_WR);
  // The server must end the connection once the stream has ended.
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30000) <= 0) std::abort();
    if (::recv(fd, sink, sizeof sink, 0) <= 0) break;
  }
  ::close(fd);
  g_env->ReleaseChannels(prefix);
  if (g_env->inbound_connections() > 2 * g_env->options().max_connections_per_peer) std::abort();
  return 0;
}
