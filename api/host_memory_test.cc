#include "api/host_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace pcivmm::api {
namespace {

TEST(HostMemoryTest, RssIsTheSumOfItsParts) {
  auto rss = ProcessRssBytes();
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_GT(rss->total, 0u);
  EXPECT_GT(rss->file, 0u);  // this test binary's own pages
  EXPECT_EQ(rss->anon + rss->file + rss->shmem, rss->total);
}

TEST(HostMemoryTest, ResidentBytesCountsTouchedPagesOfASharedMapping) {
  const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t size = 64 * page;
  const int fd = ::memfd_create("resident-test", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  // A fresh shared mapping of the memfd, unmapped below; nothing is resident until touched.
  auto* p = static_cast<uint8_t*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_EQ(ResidentBytes(p, size), 0u);
  p[0] = 1;
  p[10 * page] = 1;
  EXPECT_EQ(ResidentBytes(p, size), 2 * page);
  ::munmap(p, size);
  ::close(fd);
}

}  // namespace
}  // namespace pcivmm::api
