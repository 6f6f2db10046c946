// A fresh directory under $TMPDIR (or /tmp), removed with everything in it: for tests, which
// may run from a read-only working directory.
#ifndef PCIVMM_VMM_BASE_TEMP_DIR_H_
#define PCIVMM_VMM_BASE_TEMP_DIR_H_

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace pcivmm::base {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "pcivmm") {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "_XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Empty when the directory could not be made.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pcivmm::base

#endif  // PCIVMM_VMM_BASE_TEMP_DIR_H_
