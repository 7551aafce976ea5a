// Same-host requests run on the client's CPU (common/cpu_pin.h): after a
// client pinned to one CPU puts and fetches, the daemon thread that served
// it is on that CPU alone; with --local_follow_cpu=false no daemon thread
// is pinned. Read from /proc, as an operator would check it.
#include <sched.h>

#include <fstream>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/daemon_test.h"
#include "tests/test_blocks.h"

namespace kvcache {
namespace {

// Cpus_allowed_list of each of the daemon's threads ("0-1", "1", ...).
std::vector<std::string> ThreadCpuLists(pid_t pid) {
  std::vector<std::string> lists;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Cpus_allowed_list:", 0) == 0) {
        lists.push_back(line.substr(line.find_first_not_of(" \t", 18)));
      }
    }
  }
  return lists;
}

class E2eLocalCpuTest : public DaemonTest {
 protected:
  // Runs a put and a lease fetch from a thread pinned to the last CPU this
  // test may use; returns that CPU, or -1 with fewer than two CPUs.
  int PutAndFetchFromOneCpu() {
    cpu_set_t allowed;
    EXPECT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
    if (CPU_COUNT(&allowed) < 2) return -1;
    int cpu = 0;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &allowed)) cpu = c;
    }
    std::thread([&] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
      ClientOptions options = TestClientOptions(daemon_->address());
      options.use_direct_reads = false;  // every fetch a request
      auto client = Client::Create(options);
      ASSERT_TRUE(client.ok());
      const std::vector<BlockKey> chain = TestChain(5, 2);
      auto put = (*client)->Put(ns_, BlockKey(), TestPayloads(chain, 100000));
      ASSERT_TRUE(put.ok()) << put.status();
      size_t got = 0;
      const std::vector<std::string> out = FetchAll(**client, ns_, chain, 100000, &got);
      ASSERT_EQ(got, 2u);
      EXPECT_EQ(out[1], PayloadFor(chain[1], 100000));
      EXPECT_EQ((*client)->counters().local_path_blocks, 4u);
      // The daemon's thread stays with the connection, so look while it
      // is open.
      lists_ = ThreadCpuLists(daemon_->pid());
    }).join();
    return cpu;
  }

  const std::string ns_ = TestSchema().NamespaceName();
  std::vector<std::string> lists_;
};

TEST_F(E2eLocalCpuTest, TheDaemonServesOnTheClientsCpu) {
  StartDaemon({"--host_capacity=16MiB", "--page_size=64KiB"});
  const int cpu = PutAndFetchFromOneCpu();
  if (cpu < 0) GTEST_SKIP() << "one CPU: nothing to follow";
  int on_it = 0;
  for (const std::string& list : lists_) on_it += list == std::to_string(cpu);
  EXPECT_EQ(on_it, 1) << "daemon threads' CPUs: " << testing::PrintToString(lists_);
}

TEST_F(E2eLocalCpuTest, OffLeavesTheSchedulerToPlaceIt) {
  StartDaemon({"--host_capacity=16MiB", "--page_size=64KiB", "--local_follow_cpu=false"});
  const int cpu = PutAndFetchFromOneCpu();
  if (cpu < 0) GTEST_SKIP() << "one CPU: nothing to follow";
  for (const std::string& list : lists_) EXPECT_NE(list, std::to_string(cpu)) << list;
}

}  // namespace
}  // namespace kvcache
