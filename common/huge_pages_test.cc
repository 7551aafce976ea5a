#include "common/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

// One field (in KiB) of /proc/self/smaps for the mapping that starts at
// `start`, or -1 if there is no such mapping or field.
int64_t SmapsField(const void* start, const std::string& field) {
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "%lx-", reinterpret_cast<unsigned long>(start));
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool in_mapping = false;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      in_mapping = true;
    } else if (in_mapping && line.rfind(field + ":", 0) == 0) {
      std::istringstream value(line.substr(field.size() + 1));
      int64_t kib = -1;
      value >> kib;
      return kib;
    } else if (in_mapping && line.find('-') < line.find(' ') && line.find(':') > line.find(' ')) {
      return -1;  // the next mapping's header: the field was missing
    }
  }
  return -1;
}

struct Memfd {
  explicit Memfd(uint64_t bytes) : fd(memfd_create("huge_pages_test", MFD_CLOEXEC)) {
    if (fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      close(fd);
      fd = -1;
    }
  }
  ~Memfd() {
    if (fd >= 0) close(fd);
  }
  int fd;
};

TEST(HugePagesTest, MapsSharedMemoryAtA2MiBBoundary) {
  constexpr uint64_t kBytes = 6 << 20;
  Memfd file(kBytes);
  ASSERT_GE(file.fd, 0);
  for (int i = 0; i < 4; ++i) {  // a few, so a lucky address proves nothing
    auto* writer = static_cast<uint8_t*>(MapSharedAligned(file.fd, kBytes, PROT_READ | PROT_WRITE));
    ASSERT_NE(writer, MAP_FAILED);
    auto* reader = static_cast<const uint8_t*>(MapSharedAligned(file.fd, kBytes, PROT_READ));
    ASSERT_NE(reader, MAP_FAILED);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(writer) % kHugePageBytes, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(reader) % kHugePageBytes, 0u);
    writer[kBytes - 1] = static_cast<uint8_t>(i + 1);
    EXPECT_EQ(reader[kBytes - 1], i + 1);
    // Exactly `bytes` were mapped: the alignment slack was given back.
    EXPECT_EQ(SmapsField(writer, "Size"), static_cast<int64_t>(kBytes >> 10));
    munmap(writer, kBytes);
    munmap(const_cast<uint8_t*>(reader), kBytes);
  }
}

TEST(HugePagesTest, WhatItReportsIsWhatTheKernelMapped) {
  // Three whole regions and a 4 KiB tail, which can only have small pages.
  constexpr uint64_t kBytes = 3 * kHugePageBytes + 4096;
  Memfd file(kBytes);
  ASSERT_GE(file.fd, 0);
  auto* base = static_cast<uint8_t*>(MapSharedAligned(file.fd, kBytes, PROT_READ | PROT_WRITE));
  ASSERT_NE(base, MAP_FAILED);
  const HugePopulation population = PopulateWithHugePages(base, kBytes);
  EXPECT_EQ(population.regions, 3u);
  std::printf("this kernel: %s\n", population.Describe().c_str());

  // Everything is faulted in, zeroed, and the huge regions are mapped whole.
  EXPECT_EQ(SmapsField(base, "Rss"), static_cast<int64_t>(kBytes >> 10));
  EXPECT_EQ(SmapsField(base, "ShmemPmdMapped"),
            static_cast<int64_t>(population.huge_regions * (kHugePageBytes >> 10)));
  for (uint64_t off = 0; off < kBytes; off += 4096) ASSERT_EQ(base[off], 0) << off;
  if (population.huge_regions < population.regions) {
    EXPECT_FALSE(population.refusal.empty());
  }

  // Another mapping of the file (a local client's) maps the same huge pages.
  for (uint64_t off = 0; off < kBytes; off += 4096) base[off] = static_cast<uint8_t>(off >> 12);
  auto* reader = static_cast<const uint8_t*>(MapSharedAligned(file.fd, kBytes, PROT_READ));
  ASSERT_NE(reader, MAP_FAILED);
  for (uint64_t off = 0; off < kBytes; off += 4096) {
    ASSERT_EQ(reader[off], static_cast<uint8_t>(off >> 12)) << off;
  }
  EXPECT_EQ(SmapsField(reader, "ShmemPmdMapped"),
            static_cast<int64_t>(population.huge_regions * (kHugePageBytes >> 10)));
  munmap(const_cast<uint8_t*>(reader), kBytes);
  munmap(base, kBytes);
}

TEST(HugePagesTest, DescribesAllSomeOrNone) {
  EXPECT_EQ((HugePopulation{4, 4, ""}).Describe(), "backed by 2 MiB pages (MADV_COLLAPSE)");
  EXPECT_EQ((HugePopulation{4, 0, "Invalid argument"}).Describe(),
            "backed by 4 KiB pages (MADV_COLLAPSE: Invalid argument; copies run up to 1.6x "
            "slower, see README)");
  EXPECT_EQ((HugePopulation{0, 0, ""}).Describe(),
            "backed by 4 KiB pages (MADV_COLLAPSE: region under 2 MiB; copies run up to 1.6x "
            "slower, see README)");
  EXPECT_EQ((HugePopulation{4, 3, "Resource temporarily unavailable"}).Describe(),
            "backed by 2 MiB pages for 3 of 4 regions, 4 KiB pages for the rest (MADV_COLLAPSE: "
            "Resource temporarily unavailable)");
}

}  // namespace
}  // namespace kvcache
