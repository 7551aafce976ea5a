// The KvCache gRPC service (callback API). Unary calls are answered inline:
// they only touch the in-memory index. Put and Fetch run as reactors
// (put_reactor.h, fetch_reactor.h). Fetch is registered raw so that its
// replies can carry arena pages as zero-copy slices.
//
// Thread safety: gRPC calls the handlers from many threads at once; all
// shared state lives in the ServiceContext and is thread-safe.
#ifndef KVCACHE_KVSTORE_KVCACHE_SERVICE_H_
#define KVCACHE_KVSTORE_KVCACHE_SERVICE_H_

#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/service_context.h"

namespace kvcache {

class KvCacheService final
    : public v1::KvCache::WithRawCallbackMethod_Fetch<v1::KvCache::CallbackService> {
 public:
  // `context` is not owned and must outlive the service.
  explicit KvCacheService(ServiceContext& context) : context_(context) {}

  grpc::ServerUnaryReactor* Hello(grpc::CallbackServerContext* ctx,
                                  const v1::HelloRequest* request,
                                  v1::HelloResponse* response) override;
  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx,
                                   const v1::LookupRequest* request,
                                   v1::LookupResponse* response) override;
  grpc::ServerReadReactor<v1::PutRequest>* Put(grpc::CallbackServerContext* ctx,
                                               v1::PutResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Fetch(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Evict(grpc::CallbackServerContext* ctx,
                                  const v1::EvictRequest* request,
                                  v1::EvictResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const v1::ListRequest* request,
                                 v1::ListResponse* response) override;
  grpc::ServerUnaryReactor* Inspect(grpc::CallbackServerContext* ctx,
                                    const v1::InspectRequest* request,
                                    v1::InspectResponse* response) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx,
                                  const v1::StatsRequest* request,
                                  v1::StatsResponse* response) override;

 private:
  absl::Status DoLookup(const std::string& tenant, const v1::LookupRequest& request,
                        v1::LookupResponse& response);
  absl::Status DoEvict(const std::string& tenant, const v1::EvictRequest& request,
                       v1::EvictResponse& response);
  absl::Status DoList(const std::string& tenant, const v1::ListRequest& request,
                      v1::ListResponse& response);
  absl::Status DoInspect(const std::string& tenant, const v1::InspectRequest& request,
                         v1::InspectResponse& response);
  void DoStats(v1::StatsResponse& response);

  ServiceContext& context_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_KVCACHE_SERVICE_H_
