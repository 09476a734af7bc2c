// The authenticated data plane (docs/data-plane.md, docs/security-data-plane.md): mutual TLS,
// OPENs proven with the attempt's channel secret, duplicate OPENs, frame and credit checks,
// connection caps and the handshake timeout. Certificates are made at test time by
// deploy/gen-certs.sh (a CA with two members, and a second CA with a rogue member).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "weir/channel.h"
#include "weir/network.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

const char* kKey = "job/0/c/0/p/0";
const char* kAttempt = "job/0/";
const char* kSecret = "0123456789abcdef0123456789abcdef";

NetBuffer Data(int64_t n) {
  NetBuffer b;
  b.kind = EventKind::kData;
  b.records = 1;
  b.arg = n;
  b.bytes.assign(static_cast<size_t>(1000 + n % 7), static_cast<uint8_t>(n));
  return b;
}

template <typename F>
bool Eventually(F f, int ms = 5000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

// Certificates for the whole suite: made once.
class Certs {
 public:
  static const Certs& Get() {
    static Certs c;
    return c;
  }
  TlsFiles Member(const std::string& name) const {
    return {(dir / (name + ".pem")).string(), (dir / (name + ".key")).string(),
            (dir / "ca.pem").string()};
  }
  // A member of another CA, trusting ours (so only the server's check can refuse it).
  TlsFiles Rogue() const {
    return {(dir / "other" / "rogue.pem").string(), (dir / "other" / "rogue.key").string(),
            (dir / "ca.pem").string()};
  }
  fs::path dir;
  bool ok = false;

 private:
  Certs() {
    dir = fs::temp_directory_path() / ("weir-dp-certs-" + std::to_string(::getpid()));
    const std::string script = std::string(WEIR_SOURCE_DIR) + "/deploy/gen-certs.sh";
    ok = std::system(("bash " + script + " " + dir.string() + " tm1 tm2 2>/dev/null").c_str()) ==
             0 &&
         std::system(
             ("bash " + script + " " + (dir / "other").string() + " rogue 2>/dev/null").c_str()) ==
             0;
  }
  ~Certs() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string Addr(const NetworkEnvironment& env) {
  return "127.0.0.1:" + std::to_string(env.port());
}

// Receives n buffers from the gate in order (arg 0..n-1 on channel 0).
void ExpectInOrder(InputGate& gate, int from, int n) {
  for (int i = from; i < from + n; ++i) {
    int ch;
    NetBuffer buf;
    Status err;
    ASSERT_EQ(gate.Poll(&ch, &buf, std::chrono::seconds(5), &err), InputGate::Next::kBuffer)
        << err.ToString();
    EXPECT_EQ(buf.arg, i);
    EXPECT_EQ(buf.bytes, Data(i).bytes);
  }
}

// A send that must fail (the connection was refused or cut): the sender waits for credit
// until the connection breaks.
Status SendFails(ChannelSender* s) {
  Status st;
  for (int i = 0; i < 100 && st.ok(); ++i) st = s->Send(Data(i));
  return st;
}

int RawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True if the peer closed fd within ms (reading and discarding what it sent before).
bool ClosedByPeer(int fd, int ms = 3000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  char buf[256];
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
  }
  return false;
}

void SendRaw(int fd, const FrameHeader& h, const std::string& body = "") {
  ASSERT_EQ(::send(fd, &h, sizeof h, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof h));
  if (!body.empty()) {
    ASSERT_EQ(::send(fd, body.data(), body.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(body.size()));
  }
}

void SendOpen(int fd, uint32_t id, const std::string& key, const std::string& secret) {
  const std::string body = key + OpenProof(secret, key);
  FrameHeader h{};
  h.length = static_cast<uint32_t>(body.size());
  h.channel = id;
  h.kind = static_cast<uint8_t>(FrameKind::kOpen);
  SendRaw(fd, h, body);
}

// Reads one frame header (a CREDIT or REFUSE) sent to a raw client.
bool ReadHeader(int fd, FrameHeader* h, int ms = 3000) {
  size_t got = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (got < sizeof *h && std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, reinterpret_cast<char*>(h) + got, sizeof *h - got, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return got == sizeof *h;
}

// ------------------------------------------------------------------ TLS

TEST(DataPlaneTlsTest, MutualTlsRoundTrip) {
  const Certs& c = Certs::Get();
  ASSERT_TRUE(c.ok) << "deploy/gen-certs.sh failed";
  NetworkOptions ro, so;
  ro.tls = c.Member("tm1");
  so.tls = c.Member("tm2");
  NetworkEnvironment receiver(ro), sender(so);
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  receiver.SetAttemptSecret(kAttempt, kSecret);
  sender.SetAttemptSecret(kAttempt, kSecret);
  std::atomic<bool> cancel{false};
  auto s = sender.ConnectRemote(Addr(receiver), kKey, &cancel);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel(kKey));
  const int kN = 300;  // many times the credits: credits flow back over TLS too
  std::thread p([&] {
    for (int i = 0; i < kN; ++i) ASSERT_TRUE(s.value()->Send(Data(i)).ok());
  });
  ExpectInOrder(gate, 0, kN);
  p.join();
  // A big frame (several TLS records) arrives whole.
  NetBuffer big;
  big.bytes.assign(1 << 20, 7);
  big.arg = 99;
  ASSERT_TRUE(s.value()->Send(std::move(big)).ok());
  int ch;
  NetBuffer got;
  Status err;
  ASSERT_EQ(gate.Poll(&ch, &got, std::chrono::seconds(5), &err), InputGate::Next::kBuffer);
  EXPECT_EQ(got.bytes.size(), size_t{1} << 20);
  EXPECT_EQ(got.arg, 99);
  EXPECT_EQ(receiver.refused_connections(), 0u);
}

TEST(DataPlaneTlsTest, PlaintextPeerIsRefused) {
  const Certs& c = Certs::Get();
  ASSERT_TRUE(c.ok);
  NetworkOptions ro;
  ro.tls = c.Member("tm1");
  NetworkEnvironment receiver(ro), sender;  // the sender speaks plaintext
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  receiver.SetAttemptSecret(kAttempt, kSecret);
  sender.SetAttemptSecret(kAttempt, kSecret);
  std::atomic<bool> cancel{false};
  auto s = sender.ConnectRemote(Addr(receiver), kKey, &cancel);
  ASSERT_TRUE(s.ok());  // TCP connected and the OPEN written; the handshake then fails
  EXPECT_FALSE(SendFails(s.value().get()).ok());
  EXPECT_TRUE(Eventually([&] { return receiver.refused_connections() >= 1; }));
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel(kKey));
  int ch;
  NetBuffer buf;
  Status err;
  EXPECT_EQ(gate.Poll(&ch, &buf, std::chrono::milliseconds(200), &err), InputGate::Next::kTimeout)
      << "nothing of the plaintext peer reached the channel";
}

TEST(DataPlaneTlsTest, ClientWithoutCertificateIsRefused) {
  const Certs& c = Certs::Get();
  ASSERT_TRUE(c.ok);
  NetworkOptions ro;
  ro.tls = c.Member("tm1");
  NetworkEnvironment receiver(ro);
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  // A TLS client that trusts the cluster's CA but has no certificate of its own.
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx, c.Member("tm1").ca.c_str(), nullptr), 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  int fd = RawConnect(receiver.port());
  ASSERT_GE(fd, 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  int hs = SSL_connect(ssl);  // TLS 1.3: the client may finish before the server refuses it
  bool refused = hs != 1;
  if (!refused) {
    char b;
    refused = SSL_read(ssl, &b, 1) <= 0;  // the server's alert, then EOF
  }
  EXPECT_TRUE(refused);
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  EXPECT_TRUE(Eventually([&] { return receiver.refused_connections() >= 1; }));
}

TEST(DataPlaneTlsTest, CertificateFromAnotherCaIsRefused) {
  const Certs& c = Certs::Get();
  ASSERT_TRUE(c.ok);
  NetworkOptions ro, so;
  ro.tls = c.Member("tm1");
  so.tls = c.Rogue();
  NetworkEnvironment receiver(ro), sender(so);
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  receiver.SetAttemptSecret(kAttempt, kSecret);
  sender.SetAttemptSecret(kAttempt, kSecret);
  std::atomic<bool> cancel{false};
  auto s = sender.ConnectRemote(Addr(receiver), kKey, &cancel);
  if (s.ok()) {
    EXPECT_FALSE(SendFails(s.value().get()).ok());
  }
  EXPECT_TRUE(Eventually([&] { return receiver.refused_connections() >= 1; }));
  // And the other way round: a member does not accept a server of another CA.
  NetworkOptions rogue_server;
  rogue_server.tls = {c.Rogue().cert, c.Rogue().key, (c.dir / "other" / "ca.pem").string()};
  NetworkEnvironment rogue(rogue_server), member(NetworkOptions{.tls = c.Member("tm2")});
  ASSERT_TRUE(rogue.Start("127.0.0.1", 0).ok());
  member.SetAttemptSecret(kAttempt, kSecret);
  auto m = member.ConnectRemote(Addr(rogue), kKey, &cancel);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("TLS handshake"), std::string::npos) << m.status().ToString();
}

TEST(DataPlaneTlsTest, BadTlsFilesAreAnErrorNamingTheFile) {
  NetworkOptions o;
  o.tls = {"/nonexistent/tm.pem", "/nonexistent/tm.key", "/nonexistent/ca.pem"};
  NetworkEnvironment env(o);
  Status st = env.Start("127.0.0.1", 0);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/tm.pem"), std::string::npos) << st.ToString();
}

// ------------------------------------------------------------------ OPEN authentication

TEST(DataPlaneAuthTest, ForgedOpenIsRefusedAndTheRealChannelUnaffected) {
  NetworkEnvironment receiver, real, forger;
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  receiver.SetAttemptSecret(kAttempt, kSecret);
  real.SetAttemptSecret(kAttempt, kSecret);
  forger.SetAttemptSecret(kAttempt, "not the secret");
  std::atomic<bool> cancel{false};
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel(kKey));
  auto s = real.ConnectRemote(Addr(receiver), kKey, &cancel);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.value()->Send(Data(i)).ok());
  ExpectInOrder(gate, 0, 3);
  // The same key, and a key not opened yet, with a wrong secret: cut off.
  auto f = forger.ConnectRemote(Addr(receiver), kKey, &cancel);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(SendFails(f.value().get()).ok());
  NetworkEnvironment forger2;
  forger2.SetAttemptSecret(kAttempt, "not the secret");
  auto f2 = forger2.ConnectRemote(Addr(receiver), "job/0/c/0/p/1", &cancel);
  ASSERT_TRUE(f2.ok());
  EXPECT_FALSE(SendFails(f2.value().get()).ok());
  // A raw OPEN with the key and no proof at all: cut off.
  int fd = RawConnect(receiver.port());
  FrameHeader h{};
  const std::string key = kKey;
  h.length = static_cast<uint32_t>(key.size());
  h.channel = 1;
  h.kind = static_cast<uint8_t>(FrameKind::kOpen);
  SendRaw(fd, h, key);
  EXPECT_TRUE(ClosedByPeer(fd));
  ::close(fd);
  EXPECT_GE(receiver.refused_opens(), 2u);
  // The real producer goes on as if nothing happened.
  std::thread p([&] {
    for (int i = 3; i < 40; ++i) ASSERT_TRUE(s.value()->Send(Data(i)).ok());
  });
  ExpectInOrder(gate, 3, 37);
  p.join();
}

// ServeInbound (what frame_fuzz drives) reads a connection on the caller's thread with the
// same checks as one from the listener: a valid OPEN gets its credits and its data, a forged
// one is refused, and the peer sees the end once the stream has ended.
TEST(DataPlaneAuthTest, ServeInboundChecksAConnectionOnTheCallersThread) {
  NetworkEnvironment receiver;
  receiver.SetAttemptSecret(kAttempt, kSecret);
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel(kKey));
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  SendOpen(sv[0], 1, kKey, kSecret);
  FrameHeader d{};
  d.kind = static_cast<uint8_t>(FrameKind::kData);
  d.channel = 1;
  d.records = 1;
  d.arg = 7;
  d.length = 3;
  SendRaw(sv[0], d, "abc");
  const std::string forged_key = "job/0/c/0/p/9";
  FrameHeader o{};
  o.kind = static_cast<uint8_t>(FrameKind::kOpen);
  o.channel = 2;
  o.length = static_cast<uint32_t>(forged_key.size() + kOpenMacBytes);
  SendRaw(sv[0], o, forged_key + std::string(kOpenMacBytes, 'x'));
  ::shutdown(sv[0], SHUT_WR);
  receiver.ServeInbound(sv[1], "test-peer");  // returns: the stream ended
  EXPECT_EQ(receiver.refused_opens(), 1u);
  EXPECT_EQ(receiver.inbound_connections(), 0u);  // outside the listener's list
  // What the server wrote: credits for channel 1, then the end (it closed its side).
  FrameHeader h{};
  ASSERT_EQ(::recv(sv[0], &h, sizeof h, MSG_WAITALL), static_cast<ssize_t>(sizeof h));
  EXPECT_EQ(h.kind, static_cast<uint8_t>(FrameKind::kCredit));
  EXPECT_EQ(h.channel, 1u);
  EXPECT_TRUE(ClosedByPeer(sv[0]));
  ::close(sv[0]);
  int ch = 0;
  NetBuffer got;
  Status err;
  ASSERT_EQ(gate.Poll(&ch, &got, std::chrono::seconds(5), &err), InputGate::Next::kBuffer);
  EXPECT_EQ(got.arg, 7);
  EXPECT_EQ(std::string(got.bytes.begin(), got.bytes.end()), "abc");
}

TEST(DataPlaneAuthTest, SecondOpenOfAKeyInUseIsRefused) {
  NetworkEnvironment receiver, real, second;
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  for (auto* e : {&receiver, &real, &second}) e->SetAttemptSecret(kAttempt, kSecret);
  std::atomic<bool> cancel{false};
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel(kKey));
  auto s = real.ConnectRemote(Addr(receiver), kKey, &cancel);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s.value()->Send(Data(0)).ok());
  ExpectInOrder(gate, 0, 1);
  // Even with the right secret: the key has its producer.
  auto d = second.ConnectRemote(Addr(receiver), kKey, &cancel);
  ASSERT_TRUE(d.ok());
  Status st = SendFails(d.value().get());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("refused"), std::string::npos) << st.ToString();
  EXPECT_TRUE(Eventually([&] { return receiver.refused_opens() >= 1; }));
  // A local producer of the same key is refused too.
  EXPECT_EQ(receiver.ConnectLocal(kKey, &cancel).status().code(), StatusCode::kAlreadyExists);
  std::thread p([&] {
    for (int i = 1; i < 20; ++i) ASSERT_TRUE(s.value()->Send(Data(i)).ok());
  });
  ExpectInOrder(gate, 1, 19);
  p.join();
}

TEST(DataPlaneAuthTest, OpenWaitsForItsAttemptsSecretThenExpires) {
  NetworkOptions ro;
  ro.open_timeout_ms = 1500;
  NetworkEnvironment receiver(ro), sender;
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  sender.SetAttemptSecret(kAttempt, kSecret);
  sender.SetAttemptSecret("job/1/", kSecret);
  std::atomic<bool> cancel{false};
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel(kKey));
  // The producer's OPEN arrives before this task manager got its deployment.
  auto s = sender.ConnectRemote(Addr(receiver), kKey, &cancel);
  ASSERT_TRUE(s.ok());
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    receiver.SetAttemptSecret(kAttempt, kSecret);
  });
  std::thread p([&] {
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(s.value()->Send(Data(i)).ok());
  });
  ExpectInOrder(gate, 0, 20);
  late.join();
  p.join();
  // An attempt whose deployment never comes: refused after open_timeout_ms, and the
  // connection (shared with the live channel) stays up.
  auto never = sender.ConnectRemote(Addr(receiver), "job/1/c/0/p/0", &cancel);
  ASSERT_TRUE(never.ok());
  Status st = never.value()->Send(Data(0));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("refused"), std::string::npos) << st.ToString();
  std::thread p2([&] {
    for (int i = 20; i < 30; ++i) ASSERT_TRUE(s.value()->Send(Data(i)).ok());
  });
  ExpectInOrder(gate, 20, 10);
  p2.join();
}

// ------------------------------------------------------------------ frames, credits, caps

TEST(DataPlaneLimitsTest, OversizedFrameClosesTheConnectionBeforeAllocating) {
  NetworkOptions ro;
  ro.max_frame_bytes = 1 << 20;
  NetworkEnvironment receiver(ro);
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  receiver.SetAttemptSecret(kAttempt, kSecret);
  auto ch = receiver.GetOrCreateChannel(kKey);
  InputGate gate;
  gate.AddChannel(ch);
  // A header claiming a huge body on an unopened channel.
  {
    int fd = RawConnect(receiver.port());
    FrameHeader h{};
    h.length = 0xFFFFFFFFu;
    h.channel = 5;
    h.kind = static_cast<uint8_t>(FrameKind::kData);
    SendRaw(fd, h);
    EXPECT_TRUE(ClosedByPeer(fd));
    ::close(fd);
  }
  // An OPEN claiming a huge key.
  {
    int fd = RawConnect(receiver.port());
    FrameHeader h{};
    h.length = 64u << 20;
    h.channel = 1;
    h.kind = static_cast<uint8_t>(FrameKind::kOpen);
    SendRaw(fd, h);
    EXPECT_TRUE(ClosedByPeer(fd));
    ::close(fd);
  }
  // A valid OPEN, then a frame over max_frame_bytes: closed at once (no 2 MiB read awaited).
  {
    int fd = RawConnect(receiver.port());
    SendOpen(fd, 1, kKey, kSecret);
    FrameHeader credit{};
    ASSERT_TRUE(ReadHeader(fd, &credit));
    EXPECT_EQ(credit.kind, static_cast<uint8_t>(FrameKind::kCredit));
    EXPECT_EQ(credit.arg, 8);
    FrameHeader h{};
    h.length = 2u << 20;
    h.channel = 1;
    h.kind = static_cast<uint8_t>(FrameKind::kData);
    SendRaw(fd, h);
    EXPECT_TRUE(ClosedByPeer(fd));
    ::close(fd);
  }
  int idx;
  NetBuffer buf;
  Status err;
  EXPECT_EQ(gate.Poll(&idx, &buf, std::chrono::seconds(5), &err), InputGate::Next::kError);
  EXPECT_NE(err.message().find("bytes (at most 1048576)"), std::string::npos) << err.ToString();
  EXPECT_GE(receiver.refused_connections(), 3u);
}

TEST(DataPlaneLimitsTest, SenderBeyondItsCreditsIsCutOff) {
  NetworkOptions ro;
  ro.buffers_per_channel = 2;
  NetworkEnvironment receiver(ro);
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  receiver.SetAttemptSecret(kAttempt, kSecret);
  InputGate gate;
  gate.AddChannel(receiver.GetOrCreateChannel(kKey));
  int fd = RawConnect(receiver.port());
  SendOpen(fd, 1, kKey, kSecret);
  FrameHeader credit{};
  ASSERT_TRUE(ReadHeader(fd, &credit));
  EXPECT_EQ(credit.arg, 2);
  FrameHeader h{};
  h.channel = 1;
  h.kind = static_cast<uint8_t>(FrameKind::kWatermark);
  for (int i = 0; i < 3; ++i) {  // one more than granted; nobody consumes
    h.arg = i;
    SendRaw(fd, h);
  }
  EXPECT_TRUE(ClosedByPeer(fd));
  ::close(fd);
  int idx;
  NetBuffer buf;
  Status err;
  int buffers = 0;
  while (gate.Poll(&idx, &buf, std::chrono::seconds(5), &err) == InputGate::Next::kBuffer)
    ++buffers;
  EXPECT_EQ(buffers, 2);
  EXPECT_NE(err.message().find("beyond its credits"), std::string::npos) << err.ToString();
}

TEST(DataPlaneLimitsTest, ConnectionsAreCappedPerPeerAndSilentOnesTimeOut) {
  NetworkOptions ro;
  ro.max_connections_per_peer = 2;
  ro.handshake_timeout_ms = 500;
  NetworkEnvironment receiver(ro);
  ASSERT_TRUE(receiver.Start("127.0.0.1", 0).ok());
  receiver.SetAttemptSecret(kAttempt, kSecret);
  int a = RawConnect(receiver.port());
  int b = RawConnect(receiver.port());
  SendOpen(a, 1, kKey, kSecret);  // a opens a channel: never timed out
  FrameHeader credit{};
  ASSERT_TRUE(ReadHeader(a, &credit));
  ASSERT_TRUE(Eventually([&] { return receiver.inbound_connections() == 2; }));
  int c = RawConnect(receiver.port());  // the third from 127.0.0.1: closed at accept
  EXPECT_TRUE(ClosedByPeer(c, 2000));
  // b never sends anything: closed after the handshake timeout (the sweep runs every second).
  EXPECT_TRUE(ClosedByPeer(b, 4000));
  // a is idle but has its channel: still open.
  EXPECT_FALSE(ClosedByPeer(a, 1500));
  EXPECT_GE(receiver.refused_connections(), 2u);
  for (int fd : {a, b, c}) ::close(fd);
}

}  // namespace
}  // namespace weir
