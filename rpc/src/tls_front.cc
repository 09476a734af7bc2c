#include "weir/tls_front.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "weir/logging.h"
#include "weir/net_address.h"
#include "weir/ssl_errors.h"
#include "weir/thread_name.h"

namespace weir {
namespace {

const ModuleLog Log("tls-front");

std::string SslErrors() { return weir::SslErrors("the peer closed the connection"); }

void SetTimeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// The certificate chain and key, from PEM text, into a server context for TLS 1.2 and 1.3.
Result<SSL_CTX*> MakeContext(const std::string& cert_pem, const std::string& key_pem) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Status::Internal("SSL_CTX_new: " + SslErrors());
  auto fail = [&](const std::string& what) -> Status {
    SSL_CTX_free(ctx);
    return Status::InvalidArgument(what + ": " + SslErrors());
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  std::unique_ptr<BIO, decltype(&BIO_free)> certs(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  X509* leaf = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr);
  if (!leaf) return fail("security.tls.cert holds no PEM certificate");
  const int used = SSL_CTX_use_certificate(ctx, leaf);
  X509_free(leaf);
  if (used != 1) return fail("security.tls.cert");
  while (X509* extra = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) {  // takes ownership on success
      X509_free(extra);
      return fail("security.tls.cert (its chain)");
    }
  }
  ERR_clear_error();  // the end of the chain reads as an error
  std::unique_ptr<BIO, decltype(&BIO_free)> key(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr);
  if (!pkey) return fail("security.tls.key holds no PEM private key");
  const int key_used = SSL_CTX_use_PrivateKey(ctx, pkey);
  EVP_PKEY_free(pkey);
  if (key_used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return fail("security.tls.key does not match security.tls.cert");
  }
  return ctx;
}

}  // namespace

class TlsFront::Impl {
 public:
  Impl(TlsFrontOptions options, SSL_CTX* ctx) : o_(std::move(options)), ctx_(ctx) {}
  ~Impl() {
    Stop();
    SSL_CTX_free(ctx_);
  }

  Status Bind() {
    WEIR_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(o_.address, false, "REST address"));
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    const std::string port = std::to_string(hp.port);
    const bool any = IsWildcardHost(hp.host);
    if (int rc = getaddrinfo(any ? nullptr : hp.host.c_str(), port.c_str(), &hints, &res);
        rc != 0 || !res) {
      return Status::InvalidArgument("cannot resolve " + o_.address + ": " + gai_strerror(rc));
    }
    listen_fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (listen_fd_ >= 0) setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool bound = listen_fd_ >= 0 && ::bind(listen_fd_, res->ai_addr, res->ai_addrlen) == 0 &&
                       ::listen(listen_fd_, 128) == 0;
    freeaddrinfo(res);
    if (!bound) {
      return Status::IoError("cannot serve HTTPS on " + o_.address + ": " + strerror(errno));
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
    NameThread(acceptor_, "tls-accept");
    return Status::Ok();
  }

  void Stop() {
    if (stopping_.exchange(true)) return;
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& c : conns_) {
        if (c.client >= 0) ::shutdown(c.client, SHUT_RDWR);
        if (int b = c.backend.load(); b >= 0) ::shutdown(b, SHUT_RDWR);
      }
    }
    for (auto& c : conns_) c.thread.join();
    conns_.clear();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
  }

  int port() const { return port_; }
  uint64_t refused() const { return refused_.load(); }

 private:
  struct Conn {
    int client;  // -1 once closed; under mu_ after the start
    std::string peer;
    std::atomic<int> backend{-1};
    std::atomic<bool> done{false};
    std::thread thread;
    Conn(int fd, std::string from) : client(fd), peer(std::move(from)) {}
  };

  void AcceptLoop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, 1000);
      if (stopping_) break;
      Reap();
      if (r <= 0) continue;
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN || errno == EMFILE ||
            errno == ENFILE) {
          continue;
        }
        break;  // the listener was shut down
      }
      char host[INET6_ADDRSTRLEN] = "?";
      const void* ip =
          peer.ss_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr);
      inet_ntop(peer.ss_family, ip, host, sizeof host);
      std::lock_guard<std::mutex> lock(mu_);
      if (conns_.size() >= o_.max_connections) {
        ::close(fd);
        Refused(std::string(host) + ": over the cap of " + std::to_string(o_.max_connections) +
                " connections");
        continue;
      }
      Conn& c = conns_.emplace_back(fd, host);
      c.thread = std::thread([this, &c] {
        Relay(c);
        c.done.store(true);
      });
      NameThread(c.thread, "tls-conn");
    }
  }

  // Joins and drops the connections that ended: the list stays within the cap.
  void Reap() {
    std::list<Conn> ended;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = conns_.begin(); it != conns_.end();) {
        auto next = std::next(it);
        if (it->done.load()) ended.splice(ended.end(), conns_, it);
        it = next;
      }
    }
    for (auto& c : ended) c.thread.join();
  }

  // Logged at powers of two, so a flood does not flood the log.
  void Refused(const std::string& why) {
    const uint64_t n = ++refused_;
    if ((n & (n - 1)) == 0) {
      Log()->warn("HTTPS connection on {} refused: {} ({} refused so far)", o_.address, why, n);
    }
  }

  void Relay(Conn& c) {
    SetTimeouts(c.client, o_.handshake_timeout_ms);
    SSL* ssl = SSL_new(ctx_);
    if (ssl) SSL_set_fd(ssl, c.client);
    ERR_clear_error();
    errno = 0;
    const int accepted = ssl ? SSL_accept(ssl) : -1;
    if (accepted != 1) {
      // A receive timeout reads as "want read" (the socket BIO retries on EAGAIN).
      const int err = ssl ? SSL_get_error(ssl, accepted) : SSL_ERROR_SSL;
      const bool timed_out =
          err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ||
          (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK));
      Refused(c.peer + ": " +
              (timed_out
                   ? "no TLS handshake within " + std::to_string(o_.handshake_timeout_ms) + " ms"
                   : "TLS handshake failed: " + SslErrors()));
      if (ssl) SSL_free(ssl);
      Close(c, -1);
      return;
    }
    SetTimeouts(c.client, o_.idle_timeout_ms);  // a stalled peer cannot hold a read or write
    const int backend = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(o_.backend_port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (backend < 0 || ::connect(backend, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      Refused(c.peer + ": the server behind (127.0.0.1:" + std::to_string(o_.backend_port) +
              ") is unreachable: " + strerror(errno));
      SSL_free(ssl);
      Close(c, backend);
      return;
    }
    c.backend.store(backend);
    if (stopping_) ::shutdown(backend, SHUT_RDWR);  // Stop may have missed it
    char buf[16384];
    bool client_open = true;
    while (!stopping_) {
      const bool pending = client_open && SSL_has_pending(ssl);
      pollfd p[2] = {{c.client, static_cast<short>(client_open ? POLLIN : 0), 0},
                     {backend, POLLIN, 0}};
      const int r = ::poll(p, 2, pending ? 0 : o_.idle_timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 || (r == 0 && !pending)) break;  // idle for too long
      if (client_open && (pending || (p[0].revents & (POLLIN | POLLHUP | POLLERR)))) {
        ERR_clear_error();
        const int n = SSL_read(ssl, buf, sizeof buf);
        if (n > 0) {
          if (!SendAll(backend, buf, static_cast<size_t>(n))) break;
        } else if (SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ) {
          // The client is done sending (or gone): the server behind still answers.
          client_open = false;
          ::shutdown(backend, SHUT_WR);
        }
      }
      if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = ::recv(backend, buf, sizeof buf, 0);
        if (n <= 0) break;  // the answer is complete
        ERR_clear_error();
        if (SSL_write(ssl, buf, static_cast<int>(n)) <= 0) break;
      }
    }
    SSL_shutdown(ssl);  // best effort: close_notify
    SSL_free(ssl);
    Close(c, backend);
  }

  // Under mu_, as Stop shuts the fds down under it: it never touches a closed (reused) number.
  void Close(Conn& c, int backend) {
    std::lock_guard<std::mutex> lock(mu_);
    c.backend.store(-1);
    if (backend >= 0) ::close(backend);
    ::close(c.client);
    c.client = -1;
  }

  const TlsFrontOptions o_;
  SSL_CTX* const ctx_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> refused_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::list<Conn> conns_;  // at most max_connections; under mu_
};

Result<std::unique_ptr<TlsFront>> TlsFront::Start(TlsFrontOptions options) {
  WEIR_ASSIGN_OR_RETURN(SSL_CTX * ctx, MakeContext(options.cert_pem, options.key_pem));
  auto impl = std::make_unique<Impl>(std::move(options), ctx);
  WEIR_RETURN_IF_ERROR(impl->Bind());
  return std::unique_ptr<TlsFront>(new TlsFront(std::move(impl)));
}

TlsFront::TlsFront(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsFront::~TlsFront() = default;
int TlsFront::port() const {
  return impl_->port();
}
void TlsFront::Stop() {
  impl_->Stop();
}
uint64_t TlsFront::refused() const {
  return impl_->refused();
}

}  // namespace weir
