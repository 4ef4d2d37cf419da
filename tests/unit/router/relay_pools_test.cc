#include "router/userspace/relay_pools.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

// The relay thread's free lists: what a connection gives back is what the next one gets, up to
// the number kept, and only empty pipes go back.
namespace svcbox::router::userspace {
namespace {

TEST(RelayPoolsTest, ABufferGivenBackIsTheNextOneTaken) {
  RelayPools pools(4096, 65536, 2);
  auto first = pools.takeBuffer();
  char* address = first.get();
  pools.giveBuffer(std::move(first));
  EXPECT_EQ(pools.freeBuffers(), 1u);
  EXPECT_EQ(pools.takeBuffer().get(), address);
}

TEST(RelayPoolsTest, KeepsNoMoreThanAskedSoABurstIsGivenBack) {
  RelayPools pools(4096, 65536, 2);
  std::vector<std::unique_ptr<char[]>> taken;
  std::vector<Pipe> pipes;
  for (int i = 0; i < 5; ++i) {
    taken.push_back(pools.takeBuffer());
    pipes.push_back(pools.takePipe());
  }
  for (auto& buffer : taken) pools.giveBuffer(std::move(buffer));
  for (auto& pipe : pipes) pools.giveEmptyPipe(std::move(pipe));
  EXPECT_EQ(pools.freeBuffers(), 2u);
  EXPECT_EQ(pools.freePipes(), 2u);
}

TEST(RelayPoolsTest, APipeIsMadeOnceAndReusedWithTheAskedSize) {
  RelayPools pools(4096, 256 * 1024, 4);
  for (int i = 0; i < 10; ++i) {
    Pipe pipe = pools.takePipe();
    ASSERT_TRUE(pipe.valid());
    EXPECT_TRUE(fcntl(pipe.readEnd(), F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(fcntl(pipe.writeEnd(), F_GETFD) & FD_CLOEXEC);
    // 256 KiB is within the default /proc/sys/fs/pipe-max-size (1 MiB).
    EXPECT_GE(fcntl(pipe.writeEnd(), F_GETPIPE_SZ), 256 * 1024);
    pools.giveEmptyPipe(std::move(pipe));
  }
  EXPECT_EQ(pools.pipesMade(), 1u);
}

TEST(RelayPoolsTest, APipeClosesBothEndsWhenDropped) {
  RelayPools pools(4096, 65536, 0);  // keeps nothing: a given pipe is closed at once
  int read_end = -1;
  {
    Pipe pipe = pools.takePipe();
    read_end = pipe.readEnd();
    pools.giveEmptyPipe(std::move(pipe));
  }
  EXPECT_EQ(fcntl(read_end, F_GETFD), -1);
}

}  // namespace
}  // namespace svcbox::router::userspace
