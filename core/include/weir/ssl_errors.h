// OpenSSL's error queue as one line of text, for error messages (the data plane's TLS, the
// HTTPS front). Header-only: include it only from modules that link OpenSSL. Drains the calling
// thread's queue; any thread.
#pragma once

#include <openssl/err.h>

#include <string>

namespace weir {

// The queued errors, "; "-separated, or `if_none` when the queue is empty (a peer that closed
// the connection leaves nothing there).
inline std::string SslErrors(const char* if_none) {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string(if_none) : out;
}

}  // namespace weir
