// Network addresses of the servers: what a server binds and what it advertises (the address
// its peers dial), parsed from config and flags (docs/deployment.md, "Several hosts"). Pure
// functions, any thread.
#pragma once

#include <string>
#include <string_view>

#include "weir/status.h"

namespace weir {

// A host (name, IPv4 or bracketed IPv6 literal, brackets removed) and a port.
struct HostPort {
  std::string host;
  int port = -1;  // -1: no port given (only where a port is optional)
  // host:port, with brackets around an IPv6 literal.
  std::string ToString() const;
};

// Parses "host:port", "[v6]:port", or, with `port_optional`, "host" / "[v6]". Errors name
// `what` (e.g. "taskmanager.rpc_advertise") and the text: an empty host, a port that is not
// 0..65535, characters no host name or address has.
Result<HostPort> ParseHostPort(std::string_view text, bool port_optional, std::string_view what);

// 0.0.0.0, ::, "" and "*": listening on every interface, which nobody can dial.
bool IsWildcardHost(std::string_view host);

// The address peers should dial, for a server bound to `bind` (its port now `bound_port`):
//   `advertise` when set ("host" takes the bound port, "host:port" is used as is; a different
//   port is for NAT or a proxy in between), else `default_host` (taskmanager.host) with the
//   bound port, else the bind host with the bound port.
// Fails, naming `what`, when that would be a wildcard (0.0.0.0): nobody can dial it.
Result<std::string> AdvertisedAddress(const HostPort& bind, int bound_port,
                                      std::string_view advertise, std::string_view default_host,
                                      std::string_view what);

}  // namespace weir
