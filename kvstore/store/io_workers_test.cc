#include "kvstore/store/io_workers.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

TEST(IoWorkersTest, RunsEveryItemOffTheCallersThreadAndDrainsOnDestruction) {
  std::atomic<int> ran{0}, on_caller{0};
  const std::thread::id caller = std::this_thread::get_id();
  {
    IoWorkers workers(3);
    for (int i = 0; i < 100; ++i) {
      workers.Run([&] {
        if (std::this_thread::get_id() == caller) ++on_caller;
        ++ran;
      });
    }
  }  // joins after running what was queued
  EXPECT_EQ(ran.load(), 100);
  EXPECT_EQ(on_caller.load(), 0);
}

}  // namespace
}  // namespace kvcache
