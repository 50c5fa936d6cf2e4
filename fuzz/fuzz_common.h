// Shared by the libFuzzer harnesses: the readers under test take paths, so each input is written
// to a file in /dev/shm (memory, no disk traffic) that lives for one call.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cnn::fuzz {

class ScratchFile {
 public:
  // suffix: the file's extension where the reader looks at it (".gz", ".png").
  explicit ScratchFile(const std::string& suffix = "")
      : path_(directory() + "/cnn-fuzz-" + std::to_string(::getpid()) + suffix) {}
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& write(const void* data, std::size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f) std::abort();  // the harness's own failure, not a finding
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    if (std::fclose(f) != 0) std::abort();
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  static std::string directory() {
    const char* d = std::getenv("CNN_FUZZ_TMPDIR");
    if (d && *d) return d;
    return ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  }
  std::string path_;
};

}  // namespace cnn::fuzz
