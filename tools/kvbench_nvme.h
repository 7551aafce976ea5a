// `kvbench nvme`: the NVMe tier's store (records with headers, the RocksDB
// index, verification on read) writing and reading 2 MiB blocks at a queue
// depth, next to fio (io_uring, O_DIRECT, same block size, queue depth and
// file system) in alternating rounds of one run.
#ifndef KVCACHE_TOOLS_KVBENCH_NVME_H_
#define KVCACHE_TOOLS_KVBENCH_NVME_H_

#include <string>

namespace kvcache {

// Returns the process exit status. `runs` rounds; figures are medians.
// `kvstored` is the daemon binary, started for the restart measurement.
int RunNvmeBench(const std::string& kvstored, int runs, bool json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_NVME_H_
