// libFuzzer target: the data plane's inbound read loop (InConnection in runtime/src/network.cc)
// driven by a hostile peer: NetworkEnvironment::ServeInbound reads a socketpair on the fuzzer's
// thread with the same InConnection, checks and admission as a connection from the task
// manager's data port (no thread or TCP connection per input: thousands of inputs a second). Covers
// the 24-byte frame header checks (kind, length bounds, OPEN sizes, channel ids opened twice or
// unopened, credits overspent), OPEN admission (forged and valid proofs, duplicate keys) and body
// reads.
//
// Input: frames, each a 24-byte FrameHeader then up to `length` body bytes as they come (a
// short input is a truncated stream). So that the fuzzer gets past the HMAC proof, an OPEN
// whose header pad[0] is 1 has its body rewritten to "<this input's attempt>/<body>" plus the
// valid proof; other OPENs go as they are (forged). Each input is one connection of a fresh
// job attempt; the attempt is released after it.
// Contract besides sanitizers: the server ends every connection once the stream has ended
// (ServeInbound returns, and the peer then reads the end; a wedge is libFuzzer's -timeout),
// and never holds more than its caps.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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

  // The stream goes into one end of a socketpair, which is then closed for writing; the server
  // reads the other end on this thread, as a connection from its listener would be read.
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  const int big = 4 << 20;
  for (int fd : sv) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
  // Inputs are at most -max_len (a few KiB) plus proofs: the buffer holds them whole. A
  // longer stream is cut, which is just a truncated stream.
  size_t off = 0;
  while (off < stream.size()) {
    const ssize_t w =
        ::send(sv[0], stream.data() + off, stream.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  ::shutdown(sv[0], SHUT_WR);
  g_env->ServeInbound(sv[1], "fuzz-peer");  // returns when the connection ended
  // Contract: a connection the server is done with is shut down, so the peer sees its end
  // at once (whatever the server wrote, credits or refusals, comes first).
  char sink[4096];
  for (;;) {
    const ssize_t r = ::recv(sv[0], sink, sizeof sink, MSG_DONTWAIT);
    if (r > 0) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) std::abort();  // left open
    break;  // the end, or ECONNRESET: the server closed with our bytes unread
  }
  ::close(sv[0]);
  g_env->ReleaseChannels(prefix);
  if (g_env->inbound_connections() > 2 * g_env->options().max_connections_per_peer) std::abort();
  return 0;
}
