#include "weir/rpc_security.h"

#include <fstream>
#include <sstream>

namespace weir {
namespace {

Result<std::string> ReadPem(const std::string& key, const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(key + ": cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().find("-----BEGIN") == std::string::npos) {
    return Status::InvalidArgument(key + ": '" + path + "' is not a PEM file");
  }
  return ss.str();
}

// Constant time in the length of `want`, so a guess learns nothing from timing.
bool SameSecret(std::string_view got, std::string_view want) {
  unsigned char diff = got.size() == want.size() ? 0 : 1;
  for (size_t i = 0; i < want.size(); ++i) {
    diff |= static_cast<unsigned char>(want[i]) ^
            static_cast<unsigned char>(i < got.size() ? got[i] : 0);
  }
  return diff == 0;
}

}  // namespace

Result<RpcSecurity> RpcSecurity::Create(const SecurityOptions& o) {
  RpcSecurity s;
  if (o.tls.enabled()) {
    WEIR_ASSIGN_OR_RETURN(s.cert_, ReadPem("security.tls.cert", o.tls.cert));
    WEIR_ASSIGN_OR_RETURN(s.key_, ReadPem("security.tls.key", o.tls.key));
    WEIR_ASSIGN_OR_RETURN(s.ca_, ReadPem("security.tls.ca", o.tls.ca));
  }
  if (!o.token_file.empty()) {
    WEIR_ASSIGN_OR_RETURN(s.token_, ReadSecretFile(o.token_file));
  }
  return s;
}

std::shared_ptr<grpc::ServerCredentials> RpcSecurity::ServerCredentials(ClientCerts policy) const {
  if (!tls()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions o(policy == ClientCerts::kRequire
                                          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = ca_;
  o.pem_key_cert_pairs.push_back({key_, cert_});
  return grpc::SslServerCredentials(o);
}

std::shared_ptr<grpc::ChannelCredentials> RpcSecurity::MemberChannelCredentials() const {
  if (!tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ca_;
  o.pem_private_key = key_;
  o.pem_cert_chain = cert_;
  return grpc::SslCredentials(o);
}

grpc::Status RpcSecurity::CheckMember(const grpc::ServerContext& ctx, const char* method) const {
  if (!tls()) return grpc::Status::OK;
  auto auth = ctx.auth_context();
  if (auth && auth->IsPeerAuthenticated()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      std::string(method) +
                          ": only cluster members may call this (no client certificate signed "
                          "by the cluster's CA was presented)");
}

bool RpcSecurity::TokenMatches(std::string_view header) const {
  if (token_.empty()) return true;
  constexpr std::string_view kBearer = "Bearer ";
  if (header.substr(0, kBearer.size()) != kBearer) return false;
  return SameSecret(header.substr(kBearer.size()), token_);
}

grpc::Status RpcSecurity::CheckUser(const grpc::ServerContext& ctx, const char* method) const {
  if (token_.empty()) return grpc::Status::OK;
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        std::string(method) + ": a bearer token is required (security.token_file; "
                                              "weir --token-file)");
  }
  if (!TokenMatches(std::string_view(it->second.data(), it->second.size()))) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        std::string(method) + ": the bearer token is wrong");
  }
  return grpc::Status::OK;
}

Result<std::shared_ptr<grpc::ChannelCredentials>> UserChannelCredentials(const std::string& ca_file) {
  if (ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  WEIR_ASSIGN_OR_RETURN(o.pem_root_certs, ReadPem("CA file", ca_file));
  return grpc::SslCredentials(o);
}

void AddBearerToken(grpc::ClientContext* ctx, const std::string& token) {
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
}

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace weir
