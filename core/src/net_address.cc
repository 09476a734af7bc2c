#include "weir/net_address.h"

#include "weir/text_formats.h"

namespace weir {
namespace {

// Letters, digits, '.', '-', '_' (host names, IPv4), ':' and '%' inside brackets (IPv6).
bool ValidHostChars(std::string_view host, bool v6) {
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_' || c == '*' || (v6 && (c == ':' || c == '%'));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string HostPort::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + host + "]" : host;
  return port >= 0 ? h + ":" + std::to_string(port) : h;
}

Result<HostPort> ParseHostPort(std::string_view text, bool port_optional, std::string_view what) {
  const std::string w(what);
  const std::string t(text);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(
        w + ": '" + t + "' " + why +
        (port_optional ? " (expected host or host:port)" : " (expected host:port)"));
  };
  HostPort hp;
  std::string_view port_text;
  bool has_port = false;
  bool v6 = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("has no closing ']'");
    hp.host = std::string(text.substr(1, close - 1));
    v6 = true;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("has text after ']' that is not ':port'");
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      if (text.find(':') != colon) return bad("is an IPv6 address without brackets");
      hp.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      has_port = true;
    } else {
      hp.host = std::string(text);
    }
  }
  if (hp.host.empty()) return bad("has no host");
  if (!ValidHostChars(hp.host, v6)) return bad("is not a host name or address");
  if (has_port) {
    int64_t port = -1;
    if (port_text.empty() || !TryParseInt64(port_text, &port).ok() || port < 0 || port > 65535) {
      return bad("has a port that is not 0..65535");
    }
    hp.port = static_cast<int>(port);
  } else if (!port_optional) {
    return bad("has no port");
  }
  return hp;
}

bool IsWildcardHost(std::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "*";
}

Result<std::string> AdvertisedAddress(const HostPort& bind, int bound_port,
                                      std::string_view advertise, std::string_view default_host,
                                      std::string_view what) {
  HostPort out;
  if (!advertise.empty()) {
    WEIR_ASSIGN_OR_RETURN(out, ParseHostPort(advertise, /*port_optional=*/true, what));
    if (out.port == 0) {
      return Status::InvalidArgument(std::string(what) + ": '" + std::string(advertise) +
                                     "' advertises port 0, which nobody can dial");
    }
    if (out.port < 0) out.port = bound_port;
  } else if (!default_host.empty()) {
    out.host = std::string(default_host);
    out.port = bound_port;
  } else {
    out.host = bind.host;
    out.port = bound_port;
  }
  if (IsWildcardHost(out.host)) {
    return Status::InvalidArgument(
        std::string(what) + ": the server binds " + bind.ToString() +
        " (every interface), which peers cannot dial: set the address they should use (" +
        std::string(what) + ", or taskmanager.host / --host)");
  }
  return out.ToString();
}

}  // namespace weir
