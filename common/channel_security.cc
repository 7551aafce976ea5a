#include "common/channel_security.h"

#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/tls_files.h"
#include "grpcpp/support/client_interceptor.h"

namespace kvcache {
namespace {

// Adds the bearer token and the tenant acted for to every call's initial
// metadata.
class MetadataInterceptor final : public grpc::experimental::Interceptor {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  explicit MetadataInterceptor(const Headers* headers) : headers_(headers) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      for (const auto& [name, value] : *headers_) {
        methods->GetSendInitialMetadata()->insert({name, value});
      }
    }
    methods->Proceed();
  }

 private:
  const Headers* headers_;  // owned by the factory, which the channel keeps
};

class MetadataInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit MetadataInterceptorFactory(MetadataInterceptor::Headers headers)
      : headers_(std::move(headers)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new MetadataInterceptor(&headers_);
  }

 private:
  const MetadataInterceptor::Headers headers_;
};

}  // namespace

bool IsLoopback(const std::string& address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:") || absl::StartsWith(address, "unix:") ||
         absl::StartsWith(address, "ipv4:127.");
}

absl::StatusOr<std::string> FirstLineOf(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  std::string trimmed(absl::StripAsciiWhitespace(line));
  if (trimmed.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is empty"));
  return trimmed;
}

absl::StatusOr<std::string> EtcdLoginFromFlags(const std::string& user,
                                               const std::string& password_file) {
  if (user.empty()) {
    if (password_file.empty()) return std::string();
    return absl::InvalidArgumentError("--etcd_password_file needs --etcd_user");
  }
  if (password_file.empty()) {
    return absl::InvalidArgumentError("--etcd_user needs --etcd_password_file");
  }
  return FirstLineOf(password_file, "--etcd_password_file");
}

absl::StatusOr<std::string> TokenFromFlags(const std::string& token,
                                           const std::string& token_file) {
  if (!token.empty() || token_file.empty()) return token;
  return FirstLineOf(token_file, "--token_file");
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const std::string& address, const ChannelSecurity& security) {
  if (security.tls()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadPemFile(security.tls_ca, "--tls_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    if (!security.tls_cert.empty() || !security.tls_key.empty()) {
      if (absl::Status s = CheckTlsFiles(security.tls_cert, security.tls_key, "--tls_"); !s.ok()) {
        return s;
      }
      ssl.pem_cert_chain = *ReadPemFile(security.tls_cert, "--tls_cert");
      ssl.pem_private_key = *ReadPemFile(security.tls_key, "--tls_key");
    }
    return grpc::SslCredentials(ssl);
  }
  if (!security.tls_cert.empty() || !security.tls_key.empty()) {
    return absl::InvalidArgumentError("a client certificate needs TLS (--tls_ca)");
  }
  if ((!security.token.empty() || !security.password.empty()) && !IsLoopback(address)) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to send a ", security.token.empty() ? "password" : "token", " to ",
                     address, " in the clear: add --tls_ca for TLS"));
  }
  return grpc::InsecureChannelCredentials();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address,
                                                           const ChannelSecurity& security,
                                                           grpc::ChannelArguments args) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentials(address, security);
  if (!credentials.ok()) return credentials.status();
  if (security.tls() && !security.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(security.tls_server_name);
  }
  MetadataInterceptor::Headers headers;
  if (!security.token.empty()) headers.push_back({"authorization", "Bearer " + security.token});
  if (!security.act_for_tenant.empty()) {
    headers.push_back({kActForTenantHeader, security.act_for_tenant});
  }
  if (headers.empty()) return grpc::CreateCustomChannel(address, *credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MetadataInterceptorFactory>(std::move(headers)));
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, *credentials, args,
                                                                 std::move(interceptors));
}

}  // namespace kvcache
