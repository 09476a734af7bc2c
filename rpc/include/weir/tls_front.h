// TlsFront: HTTPS for an HTTP server that cannot do TLS itself (docs/security.md, "REST over
// HTTPS").
//
// Debian 12's civetweb, under the job manager's REST API and the task managers' /metrics, cannot
// load OpenSSL 3. So with security.tls set, such a server listens on 127.0.0.1 at an ephemeral
// port, and a TlsFront listens on the public address: per connection it completes a TLS
// handshake with the server's certificate (clients are not asked for one; they authenticate
// with the bearer token, which the server behind checks), then relays bytes both ways until
// either side closes. The server behind sees every client as 127.0.0.1.
//
// Bounded: at most `max_connections` at once (more are closed at accept and counted), a
// handshake must finish within `handshake_timeout_ms`, and a connection idle for
// `idle_timeout_ms` is closed. One thread accepts; each connection has its own thread, joined
// by the acceptor when it ends and by Stop. Start, Stop and the destructor are for the owner's
// thread; the counters are safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "weir/status.h"

namespace weir {

struct TlsFrontOptions {
  std::string address;   // host:port to serve HTTPS on; port 0 takes an ephemeral port
  int backend_port = 0;  // the plaintext server on 127.0.0.1
  std::string cert_pem;  // this server's certificate chain, PEM
  std::string key_pem;   // its private key, PEM
  size_t max_connections = 64;
  int handshake_timeout_ms = 10'000;
  int idle_timeout_ms = 60'000;
};

class TlsFront {
 public:
  // Loads the certificate and key, binds and starts accepting. Errors name what is wrong (a
  // key that does not match the certificate, an address that cannot be bound).
  static Result<std::unique_ptr<TlsFront>> Start(TlsFrontOptions options);
  ~TlsFront();
  TlsFront(const TlsFront&) = delete;
  TlsFront& operator=(const TlsFront&) = delete;

  int port() const;
  // Stops accepting, closes every connection and joins every thread. Idempotent.
  void Stop();

  // Connections closed before any byte was relayed: over the cap, a failed handshake (a
  // plaintext client, a client that does not trust the certificate), or the server behind
  // unreachable.
  uint64_t refused() const;

  class Impl;

 private:
  explicit TlsFront(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir
