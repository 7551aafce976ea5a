#include "kvstore/server/service_context.h"

#include "absl/strings/str_cat.h"
#include "common/channel_security.h"

namespace kvcache {

absl::StatusOr<Identity> IdentityOf(const ServiceContext& service,
                                    const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  absl::string_view act_for;
  if (auto it = metadata.find(kActForTenantHeader); it != metadata.end()) {
    act_for = absl::string_view(it->second.data(), it->second.size());
  }
  if (service.auth == nullptr || !service.auth->enabled()) {
    return ActFor(Identity{kDefaultTenant, Role::kAdmin}, act_for);
  }
  absl::string_view authorization;
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  std::string cn;
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
      auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const grpc::string_ref& value : auth->FindPropertyValues("x509_common_name")) {
      cn.assign(value.data(), value.size());
    }
  }
  absl::StatusOr<Identity> caller = service.auth->OfCaller(authorization, cn);
  if (!caller.ok()) return caller.status();
  return ActFor(*std::move(caller), act_for);
}

std::shared_ptr<ConnectionShare> ShareOf(ServiceContext& service,
                                         const grpc::CallbackServerContext& context,
                                         const std::string& tenant) {
  if (service.shares == nullptr) return nullptr;
  return service.shares->For(context.peer(), tenant);
}

absl::Status ValidateNamespace(absl::string_view ns, const ServiceLimits& limits) {
  if (ns.empty()) return absl::InvalidArgumentError("namespace is empty");
  if (ns.size() > limits.max_namespace_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("namespace is ", ns.size(),
                                                   " bytes; at most ", limits.max_namespace_bytes));
  }
  return absl::OkStatus();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode uses gRPC's numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace kvcache
