#include "kvstore/server/service_context.h"

#include "absl/strings/str_cat.h"

namespace kvcache {

std::string TenantOf(const grpc::CallbackServerContext& /*context*/) { return kDefaultTenant; }

std::shared_ptr<ConnectionShare> ShareOf(ServiceContext& service,
                                         const grpc::CallbackServerContext& context) {
  if (service.shares == nullptr) return nullptr;
  return service.shares->For(context.peer());
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
