// The KvCache gRPC service (callback API). Unary calls are answered inline:
// they only touch the in-memory index. Put and Fetch run as reactors
// (put_reactor.h, fetch_reactor.h). Fetch is registered raw so that its
// replies can carry arena pages as zero-copy slices.
//
// Thread safety: gRPC calls the handlers from many threads at once; all
// shared state lives in the ServiceContext and is thread-safe.
#ifndef KVCACHE_KVSTORE_SERVER_KVCACHE_SERVICE_H_
#define KVCACHE_KVSTORE_SERVER_KVCACHE_SERVICE_H_

#include "grpcpp/grpcpp.h"
#include "kvcache/v1/kvcache.grpc.pb.h"
#include "kvstore/server/service_context.h"

namespace kvcache {

// Every method is registered raw and parses its own request (raw_message.h),
// so a malformed request is INVALID_ARGUMENT, never UNIMPLEMENTED or OK.
using RawKvCacheService = v1::KvCache::WithRawCallbackMethod_Hello<
    v1::KvCache::WithRawCallbackMethod_Lookup<v1::KvCache::WithRawCallbackMethod_Put<
        v1::KvCache::WithRawCallbackMethod_Fetch<v1::KvCache::WithRawCallbackMethod_Evict<
            v1::KvCache::WithRawCallbackMethod_List<v1::KvCache::WithRawCallbackMethod_Inspect<
                v1::KvCache::WithRawCallbackMethod_Stats<
                    v1::KvCache::WithRawCallbackMethod_Why<v1::KvCache::CallbackService>>>>>>>>>;

class KvCacheService final : public RawKvCacheService {
 public:
  // `context` is not owned and must outlive the service.
  explicit KvCacheService(ServiceContext& context) : context_(context) {}

  using Raw = grpc::ByteBuffer;
  grpc::ServerUnaryReactor* Hello(grpc::CallbackServerContext* ctx, const Raw* request,
                                  Raw* response) override;
  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx, const Raw* request,
                                   Raw* response) override;
  grpc::ServerReadReactor<Raw>* Put(grpc::CallbackServerContext* ctx, Raw* response) override;
  grpc::ServerWriteReactor<Raw>* Fetch(grpc::CallbackServerContext* ctx,
                                       const Raw* request) override;
  grpc::ServerUnaryReactor* Evict(grpc::CallbackServerContext* ctx, const Raw* request,
                                  Raw* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const Raw* request,
                                 Raw* response) override;
  grpc::ServerUnaryReactor* Inspect(grpc::CallbackServerContext* ctx, const Raw* request,
                                    Raw* response) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx, const Raw* request,
                                  Raw* response) override;
  grpc::ServerUnaryReactor* Why(grpc::CallbackServerContext* ctx, const Raw* request,
                                Raw* response) override;

  // The figures Stats returns, as of now (all but where /metrics is);
  // /metrics renders the same. Thread-safe.
  void DoStats(v1::StatsResponse& response);

 private:
  // Parses the request, runs do_call(request, response), serializes the
  // response, and finishes the call with the first error on the way.
  template <typename Request, typename Response, typename DoCall>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, const Raw* raw_request,
                                  Raw* raw_response, DoCall do_call);

  // The caller's identity if its role allows `needed`: UNAUTHENTICATED or
  // PERMISSION_DENIED otherwise.
  absl::StatusOr<Identity> Authorize(const grpc::CallbackServerContext& ctx, Role needed);
  // The tenant a request acts in: the caller's, or `asked` for an admin.
  static absl::StatusOr<std::string> ActingTenant(const Identity& who, const std::string& asked);

  absl::Status DoHello(v1::HelloResponse& response);
  absl::Status DoEvict(const std::string& tenant, const v1::EvictRequest& request,
                       v1::EvictResponse& response);
  absl::Status DoList(const std::string& tenant, const v1::ListRequest& request,
                      v1::ListResponse& response);
  absl::Status DoInspect(const std::string& tenant, const v1::InspectRequest& request,
                         v1::InspectResponse& response);

  ServiceContext& context_;
};

}  // namespace kvcache

#endif  // KVCACHE_KVSTORE_SERVER_KVCACHE_SERVICE_H_
