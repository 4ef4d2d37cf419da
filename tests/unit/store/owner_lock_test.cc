#include "store/owner_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "store/registry.h"
#include "tests/unit/temp_dir.h"

namespace svcbox::store {
namespace {

// flock() locks belong to an open file, so a second acquire in this process is refused just as
// a second serve's would be.
class OwnerLockTest : public ::testing::Test {
 protected:
  void SetUp() override { (void)Registry::open(path()); }
  std::string path() const { return dir_.file("registry.db"); }
  testing::TempDir dir_;
};

TEST_F(OwnerLockTest, ASecondOwnerIsRefusedWithTheFirstOnesPid) {
  auto first = OwnerLock::acquire(path());
  ASSERT_TRUE(first) << first.error().message;
  auto second = OwnerLock::acquire(path());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, ErrorKind::kConflict);
  EXPECT_NE(second.error().message.find("(pid " + std::to_string(getpid()) + ")"),
            std::string::npos)
      << second.error().message;
}

TEST_F(OwnerLockTest, ASymlinkToTheRegistryIsTheSameRegistry) {
  auto first = OwnerLock::acquire(path());
  ASSERT_TRUE(first);
  std::filesystem::create_symlink(path(), dir_.file("link.db"));
  auto second = OwnerLock::acquire(dir_.file("link.db"));
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("(pid " + std::to_string(getpid()) + ")"),
            std::string::npos)
      << second.error().message;
}

TEST_F(OwnerLockTest, AHardLinkIsRefusedByTheFilesOwnLockWithTheHoldersPid) {
  auto first = OwnerLock::acquire(path());
  ASSERT_TRUE(first);
  std::filesystem::create_directory(dir_.file("other"));
  std::filesystem::create_hard_link(path(), dir_.file("other/hard.db"));
  auto second = OwnerLock::acquire(dir_.file("other/hard.db"));
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("(pid " + std::to_string(getpid()) + ")"),
            std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find("through another path"), std::string::npos);
}

TEST_F(OwnerLockTest, TheLockEndsWithItsOwnerAndThePathLockTellsWhoIsLive) {
  EXPECT_FALSE(liveOwnerOfPath(path()));
  {
    auto held = OwnerLock::acquire(path());
    ASSERT_TRUE(held);
    EXPECT_EQ(liveOwnerOfPath(path()), std::to_string(getpid()));
    // Still held when the file itself is gone: the path is what a new file would take.
    std::filesystem::remove(path());
    EXPECT_EQ(liveOwnerOfPath(path()), std::to_string(getpid()));
  }
  EXPECT_FALSE(liveOwnerOfPath(path()));
}

TEST_F(OwnerLockTest, ADeadOwnerLeavesNoLockBehind) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto held = OwnerLock::acquire(path());
    _exit(held ? 0 : 1);  // ends without running the destructor, as kill -9 would
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(OwnerLock::acquire(path()));
}

}  // namespace
}  // namespace svcbox::store
