// TlsFront (HTTPS in front of civetweb): relays both ways through TLS, refuses what is not a
// handshake, caps connections, closes idle ones, and joins everything on Stop. Certificates
// from deploy/gen-certs.sh.
#include "weir/tls_front.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace weir {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Certs {
  static const Certs& Get() {
    static Certs c;
    return c;
  }
  fs::path dir;
  bool ok = false;

 private:
  Certs() {
    ::signal(SIGPIPE, SIG_IGN);  // as the servers do (weir/signals.h)
    dir = fs::temp_directory_path() / ("weir-front-certs-" + std::to_string(::getpid()));
    const std::string script = std::string(WEIR_SOURCE_DIR) + "/deploy/gen-certs.sh";
    ok = std::system(("bash " + script + " " + dir.string() + " 2>/dev/null").c_str()) == 0 &&
         std::system(
             ("bash " + script + " " + (dir / "other").string() + " 2>/dev/null").c_str()) == 0;
  }
  ~Certs() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// A plaintext server on 127.0.0.1: per connection, reads up to the end of the headers, then
// answers `reply` and closes (as civetweb without keep-alive does).
class Backend {
 public:
  explicit Backend(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string got;
        char buf[4096];
        while (got.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          got.append(buf, static_cast<size_t>(n));
        }
        requests_.push_back(got);
        ::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~Backend() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::vector<std::string> requests_;
  std::thread thread_;
};

TlsFrontOptions Options(int backend_port) {
  const Certs& c = Certs::Get();
  TlsFrontOptions o;
  o.address = "127.0.0.1:0";
  o.backend_port = backend_port;
  o.cert_pem = ReadFile(c.dir / "jobmanager.pem");
  o.key_pem = ReadFile(c.dir / "jobmanager.key");
  return o;
}

// A TLS client verifying the server against `ca`: sends `request`, reads until the server
// closes. Empty with *failed set when the handshake fails.
std::string Fetch(int port, const fs::path& ca, const std::string& request, bool* failed) {
  *failed = true;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  int fd = Connect(port);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set1_host(ssl, "localhost");
  std::string out;
  if (SSL_connect(ssl) == 1) {
    *failed = false;
    SSL_write(ssl, request.data(), static_cast<int>(request.size()));
    char buf[8192];
    for (;;) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  return out;
}

TEST(TlsFrontTest, RelaysARequestAndALargeAnswerThroughTls) {
  ASSERT_TRUE(Certs::Get().ok) << "deploy/gen-certs.sh failed";
  std::string reply = "HTTP/1.1 200 OK\r\n\r\n";
  for (int i = 0; reply.size() < 300000; ++i) reply += std::to_string(i) + ",";
  Backend backend(reply);
  auto front = TlsFront::Start(Options(backend.port()));
  ASSERT_TRUE(front.ok()) << front.status().ToString();
  bool failed = false;
  const std::string request = "GET /jobs HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Fetch((*front)->port(), Certs::Get().dir / "ca.pem", request, &failed), reply);
    EXPECT_FALSE(failed);
  }
  ASSERT_EQ(backend.requests().size(), 3u);
  EXPECT_EQ(backend.requests()[0], request);
  EXPECT_EQ((*front)->refused(), 0u);
}

TEST(TlsFrontTest, PlaintextAndClientsOfAnotherCaGetNothing) {
  ASSERT_TRUE(Certs::Get().ok);
  Backend backend("HTTP/1.1 200 OK\r\n\r\nsecret");
  auto front = TlsFront::Start(Options(backend.port()));
  ASSERT_TRUE(front.ok());
  // Plain HTTP: the handshake fails, the connection closes, nothing reaches the server behind.
  int fd = Connect((*front)->port());
  const std::string plain = "GET /jobs HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(fd, plain.data(), plain.size(), MSG_NOSIGNAL);
  char buf[512];
  ssize_t n;
  std::string got;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_EQ(got.find("secret"), std::string::npos);
  EXPECT_EQ(got.find("HTTP/1.1 200"), std::string::npos);
  // A client trusting another CA refuses the certificate.
  bool failed = false;
  EXPECT_EQ(Fetch((*front)->port(), Certs::Get().dir / "other" / "ca.pem", plain, &failed), "");
  EXPECT_TRUE(failed);
  EXPECT_TRUE(backend.requests().empty());
  for (int i = 0; i < 100 && (*front)->refused() < 2; ++i) {  // the front may count it later
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ((*front)->refused(), 2u);
}

TEST(TlsFrontTest, ConnectionsAreCappedAndSilentOnesTimeOut) {
  ASSERT_TRUE(Certs::Get().ok);
  Backend backend("HTTP/1.1 204 No Content\r\n\r\n");
  TlsFrontOptions o = Options(backend.port());
  o.max_connections = 2;
  o.handshake_timeout_ms = 300;
  auto front = TlsFront::Start(o);
  ASSERT_TRUE(front.ok());
  // Two silent peers take both places; a third is closed at once.
  int a = Connect((*front)->port()), b = Connect((*front)->port());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int c = Connect((*front)->port());
  char byte;
  EXPECT_EQ(::recv(c, &byte, 1, 0), 0) << "over the cap: closed";
  // The silent ones are closed when their handshake time is up.
  EXPECT_LE(::recv(a, &byte, 1, 0), 0);
  EXPECT_LE(::recv(b, &byte, 1, 0), 0);
  for (int fd : {a, b, c}) ::close(fd);
  EXPECT_EQ((*front)->refused(), 3u);
  // Their places are free again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // the acceptor reaps each second
  bool failed = true;
  EXPECT_EQ(Fetch((*front)->port(), Certs::Get().dir / "ca.pem", "GET / HTTP/1.1\r\n\r\n", &failed),
            "HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_FALSE(failed);
}

TEST(TlsFrontTest, StopClosesOpenConnectionsAndJoins) {
  ASSERT_TRUE(Certs::Get().ok);
  Backend backend("HTTP/1.1 204 No Content\r\n\r\n");
  auto front = TlsFront::Start(Options(backend.port()));
  ASSERT_TRUE(front.ok());
  int fd = Connect((*front)->port());  // mid-handshake when Stop comes
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto t0 = std::chrono::steady_clock::now();
  (*front)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  char byte;
  EXPECT_LE(::recv(fd, &byte, 1, 0), 0);
  ::close(fd);
  EXPECT_LT(Connect((*front)->port()), 0) << "no longer listening";
}

TEST(TlsFrontTest, ACertificateAndKeyThatDoNotMatchAreAnError) {
  ASSERT_TRUE(Certs::Get().ok);
  TlsFrontOptions o = Options(1);
  o.key_pem = ReadFile(Certs::Get().dir / "other" / "jobmanager.key");
  auto front = TlsFront::Start(o);
  ASSERT_FALSE(front.ok());
  EXPECT_NE(front.status().message().find("security.tls.key does not match security.tls.cert"),
            std::string::npos)
      << front.status().ToString();
  o = Options(1);
  o.cert_pem = "not a certificate";
  front = TlsFront::Start(o);
  ASSERT_FALSE(front.ok());
  EXPECT_NE(front.status().message().find("security.tls.cert holds no PEM certificate"),
            std::string::npos);
  o = Options(1);
  o.address = "127.0.0.1:99999";
  front = TlsFront::Start(o);
  ASSERT_FALSE(front.ok());
  EXPECT_NE(front.status().message().find("99999"), std::string::npos);
}

}  // namespace
}  // namespace weir
