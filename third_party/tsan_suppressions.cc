// ThreadSanitizer suppressions, compiled into every binary that links gRPC
// or RocksDB. Debian's gRPC (with upb), Abseil and RocksDB are not built with
// TSan, so TSan cannot see the locks and atomics inside them and reports
// their internal hand-offs (epoll, completion queues, RocksDB's background
// threads and cache registries) as races. Only reports with a frame in those libraries are
// suppressed; our own locking (common/mutex.h) stays fully checked.
extern "C" const char* __tsan_default_suppressions() {
  return "race:libgrpc.so\n"
         "race:libgrpc++.so\n"
         "race:libgrpc++_reflection.so\n"
         "race:libgpr.so\n"
         "race:libabsl_\n"
         "race:libprotobuf.so\n"
         "race:libupb.so\n"
         "race:librocksdb.so\n"
         // gRPC's C++ call ops are inline templates, so they sit in our
         // binaries, but the memory they free was written by gRPC core on
         // its own (uninstrumented) threads.
         "race:grpc::internal::CallOp\n";
}
