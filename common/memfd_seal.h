// Sealing a memfd that the daemon shares read-only with local workers (the
// host arena, the block directory).
#ifndef KVCACHE_COMMON_MEMFD_SEAL_H_
#define KVCACHE_COMMON_MEMFD_SEAL_H_

namespace kvcache {

// After this, nobody can create a writable mapping of the memfd, write(2) to
// it or change its size; mappings made before stay writable. So a process
// that receives the fd can only read it. False if the kernel refused
// (F_SEAL_FUTURE_WRITE needs Linux 5.1; the fd needs MFD_ALLOW_SEALING).
bool SealAgainstOtherWriters(int fd);

}  // namespace kvcache

#endif  // KVCACHE_COMMON_MEMFD_SEAL_H_
