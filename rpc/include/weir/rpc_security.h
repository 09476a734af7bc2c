// RpcSecurity: credentials and checks for Weir's gRPC endpoints (docs/security.md).
//
// With security.tls set, every gRPC server speaks TLS with its certificate. Cluster members (the
// job manager calling task managers, task managers calling the job manager) present their own
// certificate too and verify the peer's against the CA: mutual TLS. The CLI verifies the job
// manager's certificate and sends a bearer token (security.token_file) instead of a client
// certificate. Services check each call: member calls need a verified client certificate, user
// calls need the token (compared in constant time). Without TLS and token everything is open,
// which the job manager allows on loopback only (unless --insecure).
//
// Immutable after construction: any thread may use it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "weir/security.h"
#include "weir/status.h"

namespace weir {

class RpcSecurity {
 public:
  // Reads the PEM files and the token named by `options` (errors name the file).
  static Result<RpcSecurity> Create(const SecurityOptions& options);
  // No TLS, no token: the development default.
  RpcSecurity() = default;

  bool tls() const { return !cert_.empty(); }
  // This process's certificate chain and key (PEM), for servers that do their own TLS.
  const std::string& cert_pem() const { return cert_; }
  const std::string& key_pem() const { return key_; }
  bool has_token() const { return !token_.empty(); }

  enum class ClientCerts { kRequire, kVerifyIfPresent };
  // A server's credentials: TLS with this process's certificate when configured (client
  // certificates required or only verified when presented), else insecure.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials(ClientCerts policy) const;
  // A member's channel to another member: TLS presenting this process's certificate.
  std::shared_ptr<grpc::ChannelCredentials> MemberChannelCredentials() const;

  // A call from a cluster member: with TLS, the peer must have presented a certificate the CA
  // signed. PERMISSION_DENIED otherwise, naming the method.
  grpc::Status CheckMember(const grpc::ServerContext& ctx, const char* method) const;
  // A call from a user (CLI, REST): with a token configured, the call must carry it as
  // "authorization: Bearer <token>". UNAUTHENTICATED otherwise.
  grpc::Status CheckUser(const grpc::ServerContext& ctx, const char* method) const;
  // The same check for a header value (REST): true iff no token is configured or it matches.
  bool TokenMatches(std::string_view authorization_header) const;

 private:
  std::string cert_, key_, ca_;  // PEM contents
  std::string token_;
};

// A user's (the CLI's) channel credentials: TLS verifying the server against `ca_file` when
// given, else insecure.
Result<std::shared_ptr<grpc::ChannelCredentials>> UserChannelCredentials(const std::string& ca_file);
// Sends `token` (when not empty) as "authorization: Bearer <token>" with the call.
void AddBearerToken(grpc::ClientContext* ctx, const std::string& token);

// Whether a host:port names a loopback address (127.0.0.0/8, ::1, localhost).
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace weir
