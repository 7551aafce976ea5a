// `kvbench nvme`: the NVMe tier's store (records with headers, the RocksDB
// index, verification on read) writing and reading 2 MiB blocks at a queue
// depth, next to fio (io_uring, O_DIRECT, same block size, queue depth and
// file system) in alternating rounds of one run.
#ifndef KVCACHE_TOOLS_KVBENCH_NVME_H_
#define KVCACHE_TOOLS_KVBENCH_NVME_H_

namespace kvcache {

// Returns the process exit status. `runs` rounds; figures are medians.
int RunNvmeBench(int runs, bool json);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_NVME_H_
