#include "vmm/base/read_file.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "vmm/base/temp_dir.h"

namespace pcivmm::base {
namespace {

class ReadBoundedFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  TempDir temp_{"read_file_test"};
  const std::string& dir_ = temp_.path();
};

TEST_F(ReadBoundedFileTest, ReadsARegularFileUpToTheLimit) {
  const std::string path = Write("k", std::string("ab\0cd", 5));
  auto r = ReadBoundedFile(path, 5, "--kernel", "the guest RAM");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::string("ab\0cd", 5));
  auto empty = ReadBoundedFile(Write("e", ""), 0, "--initrd", "the guest RAM");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(ReadBoundedFileTest, AFileOverTheLimitNamesTheInputTheSizeAndTheLimit) {
  const std::string path = Write("big", std::string(4097, 'x'));
  auto r = ReadBoundedFile(path, 4096, "--config-file", "1 MiB for a config");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "--config-file " + path +
                                      ": 4097 bytes, over the limit of 4096 bytes (1 MiB for "
                                      "a config)");
}

TEST_F(ReadBoundedFileTest, DevicesDirectoriesAndPipesAreRefusedBeforeAnyRead) {
  auto zero = ReadBoundedFile("/dev/zero", 1 << 20, "--kernel", "the guest RAM");
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(zero.status().message(),
            "--kernel /dev/zero: a character device; expected a regular file");
  auto dir = ReadBoundedFile(dir_, 1 << 20, "--initrd", "the guest RAM");
  EXPECT_NE(dir.status().message().find("a directory"), std::string::npos);
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto pipe = ReadBoundedFile(fifo, 1 << 20, "--guest-image", "the guest RAM");
  EXPECT_NE(pipe.status().message().find("a pipe"), std::string::npos);
}

TEST_F(ReadBoundedFileTest, AMissingFileIsNotFound) {
  auto r = ReadBoundedFile(dir_ + "/nope", 1, "--kernel", "the guest RAM");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "--kernel " + dir_ + "/nope: no such file");
}

}  // namespace
}  // namespace pcivmm::base
